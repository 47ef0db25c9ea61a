import CRdKafka

/// The start-up checks on a new producer, all before one deadline: the
/// cluster answers, the topic exists and is writable, and (exactly once)
/// transactions are initialised. Each failure names the setting to fix.
struct ProducerStartup {
  let context: SinkContext
  let producer: LibrdkafkaProducer
  /// Where the errors the checks provoke are collected.
  let events: ProducerEvents
  /// Monotonic ns.
  let deadline: Int64

  private var configuration: KafkaSinkConfiguration { context.configuration }

  func run() throws(KafkaSinkError) {
    try checkTopic()
    if configuration.deliveryMode == .exactlyOnce {
      try initialiseTransactions()
    }
  }

  private func checkTopic() throws(KafkaSinkError) {
    var lastProblem = "no answer"
    while true {
      let remaining = milliseconds(until: deadline)
      if remaining <= 0 { break }
      let reply = producer.topicMetadata(named: configuration.topic, milliseconds: remaining)
      producer.poll(milliseconds: 0)  // collect transport and authentication errors
      if let authenticationError = events.authenticationError {
        throw .authenticationFailed(setting: KafkaSetting.properties, detail: authenticationError)
      }
      switch reply {
      case .success(let entry?):
        switch entry.error {
        case RD_KAFKA_RESP_ERR_NO_ERROR where entry.partitions > 0:
          context.logger.debug(
            "Kafka topic found",
            metadata: [
              "kafka.topic": "\(configuration.topic)", "partitions": "\(entry.partitions)",
            ])
          return
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART where !configuration.allowTopicAutoCreation:
          throw .unknownTopic(setting: KafkaSetting.topic, topic: configuration.topic)
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
          throw .authorizationFailed(
            setting: KafkaSetting.topic,
            detail: "no permission to describe or write \(configuration.topic)")
        default:
          lastProblem = "topic metadata: \(describe(entry.error))"
        }
      case .success(nil):
        lastProblem = "topic missing from the metadata reply"
      case .failure(let error):
        lastProblem = events.lastClientError ?? error.description
      }
      producer.poll(milliseconds: min(100, milliseconds(until: deadline)))
    }
    if lastProblem.hasPrefix("topic") {
      throw .startupFailed(
        setting: KafkaSetting.topic,
        detail:
          "topic \(configuration.topic) not usable within \(configuration.startupTimeoutMilliseconds) ms: \(lastProblem)"
      )
    }
    throw .bootstrapUnreachable(
      setting: KafkaSetting.bootstrap, bootstrap: configuration.bootstrap,
      detail: "no metadata within \(configuration.startupTimeoutMilliseconds) ms: \(lastProblem)")
  }

  private func initialiseTransactions() throws(KafkaSinkError) {
    var lastProblem = "timed out"
    while true {
      let remaining = milliseconds(until: deadline)
      if remaining <= 0 { break }
      guard let error = producer.initTransactions(milliseconds: remaining) else { return }
      lastProblem = error.description
      if error.code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED {
        throw .authorizationFailed(setting: KafkaSetting.transactionalID, detail: lastProblem)
      }
      if error.isFatal {
        throw .startupFailed(
          setting: KafkaSetting.transactionalID,
          detail: "init_transactions: \(producer.fatalError(fallback: "unknown").description)")
      }
      if !error.isRetriable {
        throw .startupFailed(
          setting: KafkaSetting.transactionalID, detail: "init_transactions: \(lastProblem)")
      }
      producer.poll(milliseconds: min(100, milliseconds(until: deadline)))
    }
    throw .startupFailed(
      setting: KafkaSetting.transactionalID,
      detail:
        "transactions not initialised within \(configuration.startupTimeoutMilliseconds) ms (\(lastProblem)); "
        + "a previous producer with this transactional.id may still be committing")
  }
}
