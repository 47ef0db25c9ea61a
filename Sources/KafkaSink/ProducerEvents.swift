import CRdKafka
import Logging

/// Where librdkafka's callbacks report: delivery reports of the current
/// attempt, client errors (kept for start-up diagnostics, logged rate-limited)
/// and fatal errors (passed on to `health`). The producer's configuration
/// carries it as the opaque pointer (see LibrdkafkaCallbacks.swift).
///
/// Not `Sendable`: delivery reports and errors are served inside poll, flush
/// and the transactional calls, which only the producer thread makes. The
/// one exception is `logger`, read by the log callback on librdkafka's own
/// threads; it is immutable and `Sendable`.
final class ProducerEvents {
  /// Read from librdkafka's threads by the log callback.
  let logger: Logger
  private let metrics: KafkaSinkMetrics
  private let transactionalID: String
  private let health: ProducerHealth

  /// Delivery tracking of the current attempt.
  private(set) var deliveries = DeliveryTracker()
  /// The last transport-level error, for start-up diagnostics.
  private(set) var lastClientError: String?
  /// Set when the cluster refused the credentials.
  private(set) var authenticationError: String?
  private var errorLog = ErrorLogThrottle()

  init(context: SinkContext, health: ProducerHealth) {
    logger = context.logger
    metrics = context.metrics
    transactionalID = context.configuration.transactionalID
    self.health = health
  }

  // MARK: The current attempt

  /// Starts tracking the delivery reports of a new attempt of `records` records.
  func startAttempt(records: Int) {
    deliveries.start(records: records)
  }

  /// `count` records of the current attempt were never handed to librdkafka.
  func notProduced(_ count: Int) {
    deliveries.notProduced(count)
  }

  // MARK: Callbacks

  /// A record's delivery report.
  func deliveryReported(error: rd_kafka_resp_err_t, tag: UInt) {
    if error != RD_KAFKA_RESP_ERR_NO_ERROR { metrics.deliveryFailures.increment() }
    deliveries.reported(error: error, tag: tag)
  }

  /// A client-level error of `client`.
  func clientErrorReported(client: OpaquePointer, code: rd_kafka_resp_err_t, reason: String) {
    metrics.clientErrors(String(cString: rd_kafka_err2name(code))).increment()
    switch code {
    case RD_KAFKA_RESP_ERR__FATAL:
      health.fatalErrorRaised(
        LibrdkafkaProducer.fatalError(
          of: client, transactionalID: transactionalID, fallback: reason))
    case RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      authenticationError = reason
      logger.error("Kafka authentication failed", metadata: ["reason": "\(reason)"])
    default:
      lastClientError = reason
      guard let repeats = errorLog.admit(code: code.rawValue) else { return }
      logger.warning(
        "Kafka client error",
        metadata: [
          "error": "\(describe(code))", "reason": "\(reason)",
          "repeats_not_logged": "\(repeats)",
        ])
    }
  }
}
