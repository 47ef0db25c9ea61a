import CRdKafka
import Logging
import Synchronization

/// Owns the librdkafka producer. Every method except `requestShutdown` runs
/// on the producer thread, and so do the delivery-report and error callbacks
/// (librdkafka serves them inside poll, flush and commit, which only that
/// thread calls).
final class ProducerEngine: @unchecked Sendable {
  // @unchecked: mutable state is confined to the producer thread;
  // `shutdownDeadline` is atomic; the rest is immutable and Sendable.
  // Stored properties are internal for ProducerEngine+Publishing.swift.

  let configuration: KafkaSinkConfiguration
  let logger: Logger
  let metrics: KafkaSinkMetrics
  let status: SinkStatus
  /// Told once when the producer becomes unusable, from the producer thread.
  let onTerminal: @Sendable (KafkaSinkError) -> Void

  /// The monotonic time (ns) after which retries stop: `.max` until `close`.
  let shutdownDeadline = Atomic<Int64>(.max)

  var client: OpaquePointer?
  var topic: OpaquePointer?
  var values: UnsafeMutablePointer<rd_kafka_vu_t>
  var valueCapacity: Int

  /// Errors seen through the error callback, for start-up diagnostics.
  var lastClientError: String?
  var authenticationError: String?
  var terminalReported = false
  /// Per error code: when it was last logged, and how many repeats were not.
  var clientErrorLog: [Int32: (loggedAt: Int64, suppressed: Int)] = [:]

  /// Delivery tracking of the current attempt (tags carry the generation).
  var deliveryGeneration: UInt = 0
  var pendingDeliveries = 0
  var failedDeliveries = 0
  var lastDeliveryError: String?

  /// Set when the librdkafka producer must be replaced before the next
  /// attempt (a non-fencing fatal error, or a commit/abort stuck too long).
  var replacementReason: String?
  /// When the producer was last created (monotonic ns).
  var clientCreatedAt: Int64 = 0

  init(
    configuration: KafkaSinkConfiguration, logger: Logger, metrics: KafkaSinkMetrics,
    status: SinkStatus,
    onTerminal: @escaping @Sendable (KafkaSinkError) -> Void
  ) {
    self.configuration = configuration
    self.logger = logger
    self.metrics = metrics
    self.status = status
    self.onTerminal = onTerminal
    valueCapacity = 8
    values = .allocate(capacity: valueCapacity)
  }

  deinit {
    values.deallocate()
  }

  // MARK: Start-up

  /// Creates the producer, checks that the cluster answers and the topic
  /// exists, and initialises transactions, all within the start-up timeout.
  func start() throws(KafkaSinkError) {
    let deadline =
      monotonicNanoseconds() + Int64(configuration.startupTimeoutMilliseconds) * 1_000_000
    try createClient()
    try checkTopic(until: deadline)
    if configuration.deliveryMode == .exactlyOnce {
      try initialiseTransactions(until: deadline)
    }
    status.transition(to: .ready)
    metrics.ready.record(1)
    logger.info(
      "Kafka sink ready",
      metadata: [
        "kafka.bootstrap": "\(configuration.bootstrap)", "kafka.topic": "\(configuration.topic)",
        "kafka.delivery": "\(configuration.deliveryMode.rawValue)",
        "kafka.transactional_id":
          "\(configuration.deliveryMode == .exactlyOnce ? configuration.transactionalID : "-")",
        "librdkafka": "\(LibrdkafkaVersion.runtime)",
      ])
  }

  func createClient() throws(KafkaSinkError) {
    var errorText = [CChar](repeating: 0, count: 512)
    guard let conf = rd_kafka_conf_new() else { throw .fatal(detail: "rd_kafka_conf_new failed") }
    for property in configuration.librdkafkaProperties {
      guard
        rd_kafka_conf_set(conf, property.name, property.value, &errorText, errorText.count)
          == RD_KAFKA_CONF_OK
      else {
        rd_kafka_conf_destroy(conf)
        let shown = Self.isSecret(property.name) ? "<redacted>" : property.value
        throw .invalidSetting(
          setting: property.setting,
          message: "\(property.name)=\(shown): \(String(nulTerminated: errorText))")
      }
    }
    rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(self).toOpaque())
    rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
    rd_kafka_conf_set_error_cb(conf, errorCallback)
    rd_kafka_conf_set_log_cb(conf, logCallback)
    guard let created = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errorText, errorText.count) else {
      rd_kafka_conf_destroy(conf)  // only freed by rd_kafka_new on success
      throw .invalidSetting(
        setting: KafkaSetting.properties, message: String(nulTerminated: errorText))
    }
    client = created
    topic = rd_kafka_topic_new(created, configuration.topic, nil)
    clientCreatedAt = monotonicNanoseconds()
  }

  private func checkTopic(until deadline: Int64) throws(KafkaSinkError) {
    guard let client, let topic else { return }
    var lastProblem = "no answer"
    while true {
      let remaining = Self.milliseconds(until: deadline)
      if remaining <= 0 { break }
      var metadata: UnsafePointer<rd_kafka_metadata>?
      let result = rd_kafka_metadata(client, 0, topic, &metadata, Int32(clamping: remaining))
      rd_kafka_poll(client, 0)  // collect transport and authentication errors
      if let authenticationError {
        throw .authenticationFailed(setting: KafkaSetting.properties, detail: authenticationError)
      }
      if result == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata {
        defer { rd_kafka_metadata_destroy(metadata) }
        let topics = UnsafeBufferPointer(
          start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
        if let entry = topics.first(where: { String(cString: $0.topic) == configuration.topic }) {
          switch entry.err {
          case RD_KAFKA_RESP_ERR_NO_ERROR where entry.partition_cnt > 0:
            logger.debug(
              "Kafka topic found",
              metadata: [
                "kafka.topic": "\(configuration.topic)", "partitions": "\(entry.partition_cnt)",
              ])
            return
          case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART where !configuration.allowTopicAutoCreation:
            throw .unknownTopic(setting: KafkaSetting.topic, topic: configuration.topic)
          case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
            throw .authorizationFailed(
              setting: KafkaSetting.topic,
              detail: "no permission to describe or write \(configuration.topic)")
          default:
            lastProblem = "topic metadata: \(Self.describe(entry.err))"
          }
        } else {
          lastProblem = "topic missing from the metadata reply"
        }
      } else {
        lastProblem = lastClientError ?? Self.describe(result)
      }
      rd_kafka_poll(client, Int32(clamping: min(100, Self.milliseconds(until: deadline))))
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

  private func initialiseTransactions(until deadline: Int64) throws(KafkaSinkError) {
    guard let client else { return }
    var lastProblem = "timed out"
    while true {
      let remaining = Self.milliseconds(until: deadline)
      if remaining <= 0 { break }
      guard let error = rd_kafka_init_transactions(client, Int32(clamping: remaining)) else {
        return
      }
      defer { rd_kafka_error_destroy(error) }
      let code = rd_kafka_error_code(error)
      lastProblem = Self.describe(error)
      if code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED {
        throw .authorizationFailed(setting: KafkaSetting.transactionalID, detail: lastProblem)
      }
      if rd_kafka_error_is_fatal(error) != 0 {
        throw .startupFailed(
          setting: KafkaSetting.transactionalID, detail: "init_transactions: \(fatalReason())")
      }
      if rd_kafka_error_is_retriable(error) == 0 {
        throw .startupFailed(
          setting: KafkaSetting.transactionalID, detail: "init_transactions: \(lastProblem)")
      }
      rd_kafka_poll(client, Int32(clamping: min(100, Self.milliseconds(until: deadline))))
    }
    throw .startupFailed(
      setting: KafkaSetting.transactionalID,
      detail:
        "transactions not initialised within \(configuration.startupTimeoutMilliseconds) ms (\(lastProblem)); "
        + "a previous producer with this transactional.id may still be committing")
  }

  // MARK: Callbacks (producer thread)

  func deliveryReported(error: rd_kafka_resp_err_t, tag: UInt) {
    if error != RD_KAFKA_RESP_ERR_NO_ERROR {
      metrics.deliveryFailures.increment()
      lastDeliveryError = Self.describe(error)
    }
    guard tag >> 32 == deliveryGeneration & 0xffff_ffff, pendingDeliveries > 0 else { return }
    pendingDeliveries -= 1
    if error != RD_KAFKA_RESP_ERR_NO_ERROR { failedDeliveries += 1 }
  }

  func clientErrorReported(code: rd_kafka_resp_err_t, reason: String) {
    metrics.clientErrors(String(cString: rd_kafka_err2name(code))).increment()
    switch code {
    case RD_KAFKA_RESP_ERR__FATAL:
      let error = fatalProducerError(fallback: reason)
      switch error {
      case .fenced:
        enterTerminal(error)
      case .fatal(let detail) where configuration.producerResetTimeoutMilliseconds > 0:
        // Not fenced: a new producer instance (same transactional id) recovers.
        replacementReason = "fatal error: \(detail)"
        logger.error(
          "Kafka producer raised a fatal error; it will be replaced",
          metadata: ["reason": "\(detail)"])
      default:
        enterTerminal(error)
      }
    case RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      authenticationError = reason
      logger.error("Kafka authentication failed", metadata: ["reason": "\(reason)"])
    default:
      lastClientError = reason
      // Outages repeat the same error many times a second: log each
      // kind at most every 10 s, with the count of repeats left out.
      let now = monotonicNanoseconds()
      if var entry = clientErrorLog[code.rawValue], now - entry.loggedAt < 10_000_000_000 {
        entry.suppressed += 1
        clientErrorLog[code.rawValue] = entry
        return
      }
      let repeats = clientErrorLog[code.rawValue]?.suppressed ?? 0
      clientErrorLog[code.rawValue] = (now, 0)
      logger.warning(
        "Kafka client error",
        metadata: [
          "error": "\(Self.describe(code))", "reason": "\(reason)",
          "repeats_not_logged": "\(repeats)",
        ])
    }
  }

  // MARK: Idle, shutdown

  /// Serves callbacks while no batch is in progress, and samples
  /// librdkafka's own queue (records produced and not yet acknowledged).
  func poll() {
    guard let client else { return }
    rd_kafka_poll(client, 0)
    metrics.librdkafkaQueuedMessages.record(Int(rd_kafka_outq_len(client)))
  }

  /// Retries stop once `milliseconds` have passed; any thread may call it.
  func requestShutdown(within milliseconds: Int) {
    shutdownDeadline.store(
      monotonicNanoseconds() + Int64(milliseconds) * 1_000_000, ordering: .relaxed)
  }

  /// Flushes what is left (nothing, in transactional mode) and destroys the producer.
  func shutdown() {
    guard let client else { return }
    if status.terminalError == nil {
      let remaining = Self.milliseconds(until: shutdownDeadline.load(ordering: .relaxed))
      rd_kafka_flush(
        client, Int32(clamping: min(remaining, configuration.shutdownTimeoutMilliseconds)))
    }
    destroyClient()
  }

  /// Drops queued and in-flight records (their attempt is given up) and destroys the producer.
  func destroyClient(purging: Bool = false) {
    guard let client else { return }
    if purging {
      rd_kafka_purge(client, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
      rd_kafka_poll(client, 0)  // deliver the purge reports while the engine still tracks them
    }
    if let topic { rd_kafka_topic_destroy(topic) }
    topic = nil
    rd_kafka_destroy(client)
    self.client = nil
  }

  // MARK: Helpers

  var shutdownExpired: Bool {
    monotonicNanoseconds() >= shutdownDeadline.load(ordering: .relaxed)
  }

  func startDeliveryTracking(records: Int) {
    deliveryGeneration &+= 1
    pendingDeliveries = records
    failedDeliveries = 0
    lastDeliveryError = nil
  }

  /// The per-record opaque: attempt generation (high 32 bits) and record index + 1.
  func deliveryTag(index: Int) -> UInt {
    (deliveryGeneration & 0xffff_ffff) << 32 | UInt(index + 1) & 0xffff_ffff
  }

  var deliveryErrorSuffix: String {
    lastDeliveryError.map { " (delivery: \($0))" } ?? ""
  }

  func ensureValueCapacity(_ needed: Int) {
    guard needed > valueCapacity else { return }
    values.deallocate()
    valueCapacity = needed
    values = .allocate(capacity: needed)
  }

  /// Sleeps on the producer thread while serving callbacks, waking early at the shutdown deadline.
  func pause(milliseconds: Int) {
    guard let client else { return }
    let until = monotonicNanoseconds() + Int64(milliseconds) * 1_000_000
    while !shutdownExpired {
      let remaining = Self.milliseconds(until: until)
      if remaining <= 0 { return }
      rd_kafka_poll(client, Int32(clamping: min(remaining, 100)))
    }
  }

  func backoffMilliseconds(attempt: Int) -> Int {
    let doublings = min(attempt - 1, 20)
    return min(
      configuration.retryBackoffMilliseconds << doublings, configuration.maxRetryBackoffMilliseconds
    )
  }

  /// How bad an error object is.
  enum ErrorSeverity {
    /// Another producer took over: stop for good.
    case fenced(KafkaSinkError)
    /// This producer instance is unusable; a new one may work.
    case fatal(String)
    /// Retry, or abort and retry, as the error's flags say.
    case recoverable
  }

  func severity(of error: OpaquePointer) -> ErrorSeverity {
    let code = rd_kafka_error_code(error)
    guard
      rd_kafka_error_is_fatal(error) != 0 || code == RD_KAFKA_RESP_ERR__FATAL
        || Self.isFencing(code)
    else {
      return .recoverable
    }
    let classified = fatalProducerError(fallback: Self.describe(error), code: code)
    switch classified {
    case .fenced: return .fenced(classified)
    case .fatal(let detail): return .fatal(detail)
    default: return .fatal(classified.description)
    }
  }

  /// Classifies the producer's fatal error (fenced or other).
  func fatalProducerError(fallback: String, code: rd_kafka_resp_err_t = RD_KAFKA_RESP_ERR_NO_ERROR)
    -> KafkaSinkError
  {
    var text = [CChar](repeating: 0, count: 512)
    var original = code
    var reason = fallback
    if let client {
      let fatalCode = rd_kafka_fatal_error(client, &text, text.count)
      if fatalCode != RD_KAFKA_RESP_ERR_NO_ERROR {
        original = fatalCode
        reason = "\(Self.describe(fatalCode)): \(String(nulTerminated: text))"
      }
    }
    if Self.isFencing(original) {
      return .fenced(transactionalID: configuration.transactionalID, detail: reason)
    }
    return .fatal(detail: reason)
  }

  private func fatalReason() -> String {
    fatalProducerError(fallback: "unknown").description
  }

  /// Moves to fenced/failed once: logs, metrics, and tells the sink.
  func enterTerminal(_ error: KafkaSinkError) {
    guard !terminalReported else { return }
    terminalReported = true
    switch error {
    case .fenced(let transactionalID, let detail):
      status.transition(to: .fenced(reason: detail), error: error)
      metrics.fenced.record(1)
      logger.critical(
        "Kafka producer fenced: another instance with the same transactional.id took over; this instance stops publishing and reports not ready (batches stay with the caller)",
        metadata: ["kafka.transactional_id": "\(transactionalID)", "reason": "\(detail)"])
    default:
      status.transition(to: .failed(reason: error.description), error: error)
      logger.critical(
        "Kafka producer failed fatally; this instance stops publishing and reports not ready",
        metadata: ["reason": "\(error)"])
    }
    metrics.ready.record(0)
    onTerminal(error)
  }

  static func isFencing(_ code: rd_kafka_resp_err_t) -> Bool {
    code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED
      || code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH
  }

  private static func isSecret(_ name: String) -> Bool {
    ["password", "secret", "key", "token", "jaas"].contains { name.contains($0) }
  }

  static func describe(_ code: rd_kafka_resp_err_t) -> String {
    "\(String(cString: rd_kafka_err2name(code))): \(String(cString: rd_kafka_err2str(code)))"
  }

  static func describe(_ error: OpaquePointer) -> String {
    "\(String(cString: rd_kafka_error_name(error))): \(String(cString: rd_kafka_error_string(error)))"
  }

  static func milliseconds(until deadline: Int64) -> Int {
    let nanoseconds = deadline - monotonicNanoseconds()
    return nanoseconds <= 0 ? 0 : Int(min(nanoseconds / 1_000_000, Int64(Int32.max)))
  }
}

extension String {
  /// The text of a NUL-terminated C buffer.
  init(nulTerminated buffer: [CChar]) {
    self = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }
}
