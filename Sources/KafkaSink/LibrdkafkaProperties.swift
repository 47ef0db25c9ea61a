/// One librdkafka configuration property and the privtrak setting it comes from.
struct LibrdkafkaProperty: Sendable, Equatable {
  /// librdkafka's name, e.g. `linger.ms`.
  var name: String
  /// Its value as librdkafka parses it.
  var value: String
  /// The `kafka.*` setting errors should name.
  var setting: String
}

extension KafkaSinkConfiguration {
  /// librdkafka properties that have a dedicated field; setting them through
  /// `properties` would bypass the sink's checks or break its guarantees.
  static let managedProperties: [String: String] = [
    "bootstrap.servers": KafkaSetting.bootstrap,
    "metadata.broker.list": KafkaSetting.bootstrap,
    "transactional.id": KafkaSetting.transactionalID,
    "enable.idempotence": "kafka.delivery",
    "acks": "kafka.delivery",
    "request.required.acks": "kafka.delivery",
    "compression.codec": "kafka.compression",
    "compression.type": "kafka.compression",
    "linger.ms": "kafka.linger_ms",
    "queue.buffering.max.ms": "kafka.linger_ms",
    "batch.size": "kafka.batch_size_bytes",
    "message.timeout.ms": "kafka.message_timeout_ms",
    "delivery.timeout.ms": "kafka.message_timeout_ms",
    "transaction.timeout.ms": "kafka.transaction_timeout_ms",
    "allow.auto.create.topics": "kafka.allow_topic_auto_creation",
    "client.id": "kafka.client_id",
    "delivery.report.only.error": "kafka.delivery",
  ]

  /// Checks the values librdkafka would not (or would only reject cryptically).
  func validate() throws(KafkaSinkError) {
    func require(_ condition: Bool, _ setting: String, _ message: String) throws(KafkaSinkError) {
      if !condition { throw .invalidSetting(setting: setting, message: message) }
    }
    try require(
      !bootstrap.trimmingSpaces.isEmpty, KafkaSetting.bootstrap, "must list at least one host:port")
    try require(
      !topic.isEmpty && topic.utf8.count <= 249, KafkaSetting.topic, "must be 1 to 249 characters")
    try require(
      topic.unicodeScalars.allSatisfy {
        $0.isASCII
          && ($0.properties.isAlphabetic || ("0"..."9").contains($0)
            || "._-".unicodeScalars.contains($0))
      },
      KafkaSetting.topic, "\"\(topic)\" may only contain ASCII letters, digits, '.', '_' and '-'")
    if deliveryMode == .exactlyOnce {
      try require(
        !transactionalID.isEmpty, KafkaSetting.transactionalID,
        "must be set (stable per instance) for exactly-once delivery")
      try require(
        messageTimeoutMilliseconds <= transactionTimeoutMilliseconds, "kafka.message_timeout_ms",
        "\(messageTimeoutMilliseconds) must not exceed kafka.transaction_timeout_ms (\(transactionTimeoutMilliseconds))"
      )
    }
    try require(lingerMilliseconds >= 0, "kafka.linger_ms", "must be >= 0")
    try require(batchSizeBytes > 0, "kafka.batch_size_bytes", "must be > 0")
    try require(maxInFlightDeltas > 0, "kafka.max_in_flight_deltas", "must be > 0")
    try require(maxInFlightBytes > 0, "kafka.max_in_flight_bytes", "must be > 0")
    try require(maxWaitingPublishers >= 0, "kafka.max_waiting_publishers", "must be >= 0")
    try require(transactionTimeoutMilliseconds > 0, "kafka.transaction_timeout_ms", "must be > 0")
    try require(messageTimeoutMilliseconds > 0, "kafka.message_timeout_ms", "must be > 0")
    try require(startupTimeoutMilliseconds > 0, "kafka.startup_timeout_ms", "must be > 0")
    try require(operationTimeoutMilliseconds > 0, "kafka.operation_timeout_ms", "must be > 0")
    try require(
      producerResetTimeoutMilliseconds >= 0, "kafka.producer_reset_timeout_ms", "must be >= 0")
    try require(retryBackoffMilliseconds > 0, "kafka.retry_backoff_ms", "must be > 0")
    try require(
      maxRetryBackoffMilliseconds >= retryBackoffMilliseconds, "kafka.max_retry_backoff_ms",
      "must be >= kafka.retry_backoff_ms")
    try require(shutdownTimeoutMilliseconds >= 0, "kafka.shutdown_timeout_ms", "must be >= 0")
    for name in properties.keys.sorted() {
      if let owner = Self.managedProperties[name] {
        throw .invalidSetting(
          setting: KafkaSetting.property(name),
          message: "is managed by the sink; set \(owner) instead")
      }
    }
  }

  /// The librdkafka producer properties, in the order they are applied
  /// (passthrough properties last).
  var librdkafkaProperties: [LibrdkafkaProperty] {
    var result: [LibrdkafkaProperty] = [
      .init(name: "bootstrap.servers", value: bootstrap, setting: KafkaSetting.bootstrap),
      .init(name: "client.id", value: clientID, setting: "kafka.client_id"),
      .init(name: "compression.codec", value: compression.rawValue, setting: "kafka.compression"),
      .init(name: "linger.ms", value: String(lingerMilliseconds), setting: "kafka.linger_ms"),
      .init(name: "batch.size", value: String(batchSizeBytes), setting: "kafka.batch_size_bytes"),
      .init(
        name: "message.timeout.ms", value: String(messageTimeoutMilliseconds),
        setting: "kafka.message_timeout_ms"),
      .init(
        name: "allow.auto.create.topics", value: allowTopicAutoCreation ? "true" : "false",
        setting: "kafka.allow_topic_auto_creation"),
      // Idempotence in both modes: no duplicates from librdkafka's own
      // retries, per-partition order kept (acks=all is implied).
      .init(name: "enable.idempotence", value: "true", setting: "kafka.delivery"),
    ]
    if deliveryMode == .exactlyOnce {
      result.append(
        .init(
          name: "transactional.id", value: transactionalID, setting: KafkaSetting.transactionalID))
      result.append(
        .init(
          name: "transaction.timeout.ms", value: String(transactionTimeoutMilliseconds),
          setting: "kafka.transaction_timeout_ms"))
      // A committed transaction proves every message in it was delivered
      // (a failed one makes the commit fail), so reports of successes only
      // cost a callback per record on the producer thread; failures are
      // still reported, for the failure reason and the metric.
      result.append(
        .init(name: "delivery.report.only.error", value: "true", setting: "kafka.delivery"))
    }
    for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
      result.append(.init(name: name, value: value, setting: KafkaSetting.property(name)))
    }
    return result
  }
}

extension String {
  fileprivate var trimmingSpaces: Substring {
    var text = self[...]
    while text.first?.isWhitespace == true { text.removeFirst() }
    while text.last?.isWhitespace == true { text.removeLast() }
    return text
  }
}
