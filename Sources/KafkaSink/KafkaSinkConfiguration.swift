import DeltaWire

/// Everything `KafkaSink` needs to know. Each field names the setting
/// (`kafka.*`) that errors quote when the value is rejected.
public struct KafkaSinkConfiguration: Sendable {
  /// How batches are made durable.
  public enum DeliveryMode: String, Sendable, Hashable, CaseIterable {
    /// One Kafka transaction per batch: read_committed consumers see a
    /// whole batch or nothing. Needs `transactionalID`. The default.
    case exactlyOnce = "exactly-once"
    /// Idempotent producer without transactions: a batch is durable once
    /// every record is acknowledged; after a failure a batch (or part of
    /// it) may be written twice, with the same `DeltaOrigin`s.
    case atLeastOnce = "at-least-once"
  }

  /// Record-batch compression on the wire.
  public enum Compression: String, Sendable, Hashable, CaseIterable {
    /// No compression.
    case none
    /// gzip.
    case gzip
    /// Snappy.
    case snappy
    /// LZ4.
    case lz4
    /// Zstandard, the default: the best ratio for protobuf deltas at a low CPU cost.
    case zstd
  }

  /// `kafka.bootstrap`: comma-separated `host:port` list of brokers to
  /// contact first. No default.
  public var bootstrap: String
  /// `kafka.topic`: the topic deltas go to. It must exist unless
  /// `allowTopicAutoCreation` is set. No default.
  public var topic: String
  /// `kafka.transactional_id`: the producer's `transactional.id`. Must be
  /// stable per tracker instance (a restarted instance takes over and closes
  /// its predecessor's open transaction) and unique across instances (a
  /// second producer with the same id fences the first). Unused in
  /// `atLeastOnce` mode. No default.
  public var transactionalID: String
  /// `kafka.delivery`: transactions per batch or idempotent at-least-once.
  /// Default `exactlyOnce`.
  public var deliveryMode: DeliveryMode
  /// `kafka.compression`: record-batch compression codec. Default `zstd`.
  public var compression: Compression
  /// `kafka.linger_ms`: milliseconds librdkafka waits to fill a record batch
  /// before sending it (`linger.ms`). Commits flush immediately regardless.
  /// Default 5.
  public var lingerMilliseconds: Int
  /// `kafka.batch_size_bytes`: upper bound in bytes of one librdkafka record
  /// batch per partition (`batch.size`). Default 1_000_000.
  public var batchSizeBytes: Int
  /// `kafka.max_in_flight_deltas`: deltas admitted but not yet durable;
  /// beyond it `publish` suspends. A single batch larger than the bound is
  /// admitted alone when nothing else is in flight. Default 100_000.
  public var maxInFlightDeltas: Int
  /// `kafka.max_in_flight_bytes`: encoded record bytes (keys, values,
  /// headers) admitted but not yet durable; beyond it `publish` suspends.
  /// Default 64 MiB.
  public var maxInFlightBytes: Int
  /// `kafka.max_waiting_publishers`: publishers that may be suspended
  /// waiting for room; one more fails at once with
  /// `KafkaSinkError.saturated` (the caller keeps its batch). Default 1024.
  public var maxWaitingPublishers: Int
  /// `kafka.transaction_timeout_ms`: milliseconds the broker lets a
  /// transaction stay open (`transaction.timeout.ms`). Default 60_000.
  public var transactionTimeoutMilliseconds: Int
  /// `kafka.message_timeout_ms`: milliseconds librdkafka keeps trying to
  /// deliver a record (`message.timeout.ms`); when it passes, the
  /// transaction is aborted and the whole batch retried. Must not exceed
  /// `transactionTimeoutMilliseconds` in `exactlyOnce` mode. Default 30_000.
  public var messageTimeoutMilliseconds: Int
  /// `kafka.startup_timeout_ms`: milliseconds `start` may take to reach the
  /// cluster, check the topic and initialise transactions. Default 10_000.
  public var startupTimeoutMilliseconds: Int
  /// `kafka.operation_timeout_ms`: milliseconds one blocking librdkafka call
  /// (commit, abort) may take before the sink re-checks its state and calls
  /// it again. Default 5_000.
  public var operationTimeoutMilliseconds: Int
  /// `kafka.producer_reset_timeout_ms`: milliseconds a batch may keep
  /// failing (or a commit or abort keep timing out) before the sink
  /// replaces its librdkafka producer with a new one under the same
  /// transactional id, whose `init_transactions` aborts the stuck
  /// transaction on the broker side; non-fencing fatal errors replace it at
  /// once. 0 disables replacement (fatal errors are then terminal). A
  /// replacement would fence a newer live instance with the same
  /// transactional id, which the ids' uniqueness rules out. Default 60_000.
  public var producerResetTimeoutMilliseconds: Int
  /// `kafka.retry_backoff_ms`: first pause in milliseconds before a failed
  /// batch is retried; doubles per attempt up to
  /// `maxRetryBackoffMilliseconds`. Default 100.
  public var retryBackoffMilliseconds: Int
  /// `kafka.max_retry_backoff_ms`: longest pause in milliseconds between
  /// attempts of one batch. Default 5_000.
  public var maxRetryBackoffMilliseconds: Int
  /// `kafka.shutdown_timeout_ms`: milliseconds `close` keeps retrying
  /// batches already admitted; after it they fail with
  /// `KafkaSinkError.closed` and their callers keep them (snapshot).
  /// Default 30_000.
  public var shutdownTimeoutMilliseconds: Int
  /// `kafka.framing`: one record per delta (keyed by user) or one per batch.
  /// Default `.perDelta`.
  public var framing: RecordFraming
  /// `kafka.delta_headers`: per-delta records carry the `privtrak-type` and
  /// `privtrak-schema` headers too (per-batch records always do). Off by
  /// default: a record without them is a `privtrak.v1.Delta`, and the two
  /// headers cost librdkafka more per record than the rest of the record.
  public var deltaHeaders: Bool
  /// `kafka.allow_topic_auto_creation`: let the broker create `topic` on
  /// first use (`allow.auto.create.topics`). When false, a missing topic is
  /// a start-up error. Default false.
  public var allowTopicAutoCreation: Bool
  /// `kafka.client_id`: the client id brokers log and quote in quotas
  /// (`client.id`). Default "privtrak".
  public var clientID: String
  /// `kafka.properties.<name>`: extra librdkafka properties applied last,
  /// e.g. `security.protocol`, `sasl.mechanisms`, `sasl.username`,
  /// `ssl.ca.location`. Properties the sink manages itself
  /// (`bootstrap.servers`, `transactional.id`, `enable.idempotence`, ...)
  /// are rejected. Default empty.
  public var properties: [String: String]

  /// A configuration with the defaults documented on each field.
  public init(
    bootstrap: String,
    topic: String,
    transactionalID: String,
    deliveryMode: DeliveryMode = .exactlyOnce,
    compression: Compression = .zstd,
    lingerMilliseconds: Int = 5,
    batchSizeBytes: Int = 1_000_000,
    maxInFlightDeltas: Int = 100_000,
    maxInFlightBytes: Int = 64 << 20,
    maxWaitingPublishers: Int = 1024,
    transactionTimeoutMilliseconds: Int = 60_000,
    messageTimeoutMilliseconds: Int = 30_000,
    startupTimeoutMilliseconds: Int = 10_000,
    operationTimeoutMilliseconds: Int = 5_000,
    producerResetTimeoutMilliseconds: Int = 60_000,
    retryBackoffMilliseconds: Int = 100,
    maxRetryBackoffMilliseconds: Int = 5_000,
    shutdownTimeoutMilliseconds: Int = 30_000,
    framing: RecordFraming = .perDelta,
    deltaHeaders: Bool = false,
    allowTopicAutoCreation: Bool = false,
    clientID: String = "privtrak",
    properties: [String: String] = [:]
  ) {
    self.bootstrap = bootstrap
    self.topic = topic
    self.transactionalID = transactionalID
    self.deliveryMode = deliveryMode
    self.compression = compression
    self.lingerMilliseconds = lingerMilliseconds
    self.batchSizeBytes = batchSizeBytes
    self.maxInFlightDeltas = maxInFlightDeltas
    self.maxInFlightBytes = maxInFlightBytes
    self.maxWaitingPublishers = maxWaitingPublishers
    self.transactionTimeoutMilliseconds = transactionTimeoutMilliseconds
    self.messageTimeoutMilliseconds = messageTimeoutMilliseconds
    self.startupTimeoutMilliseconds = startupTimeoutMilliseconds
    self.operationTimeoutMilliseconds = operationTimeoutMilliseconds
    self.producerResetTimeoutMilliseconds = producerResetTimeoutMilliseconds
    self.retryBackoffMilliseconds = retryBackoffMilliseconds
    self.maxRetryBackoffMilliseconds = maxRetryBackoffMilliseconds
    self.shutdownTimeoutMilliseconds = shutdownTimeoutMilliseconds
    self.framing = framing
    self.deltaHeaders = deltaHeaders
    self.allowTopicAutoCreation = allowTopicAutoCreation
    self.clientID = clientID
    self.properties = properties
  }
}

/// The setting names errors and logs quote.
public enum KafkaSetting {
  /// `kafka.bootstrap`
  public static let bootstrap = "kafka.bootstrap"
  /// `kafka.topic`
  public static let topic = "kafka.topic"
  /// `kafka.transactional_id`
  public static let transactionalID = "kafka.transactional_id"
  /// `kafka.properties` (security and other passthrough properties)
  public static let properties = "kafka.properties"
  /// `kafka.properties.<name>` for one passthrough property.
  public static func property(_ name: String) -> String { "\(properties).\(name)" }
}
