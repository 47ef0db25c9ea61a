import CRdKafka

/// One librdkafka producer instance (`rd_kafka_t` and its topic handle):
/// created by `init`, destroyed by `deinit`, so a replaced or shut-down
/// producer cannot be used again. Its owner (`ProducerEngine`, confined to
/// the producer thread) is the only one holding it; not `Sendable`, so it
/// stays there. Its callbacks go to `events`, served inside `poll`,
/// `flush` and the transactional calls, hence on the same thread.
final class LibrdkafkaProducer {
  private let client: OpaquePointer
  private let topic: OpaquePointer
  /// The callbacks' opaque (unretained by librdkafka): held here so it
  /// outlives the `rd_kafka_t`.
  private let events: ProducerEvents
  private let transactionalID: String
  /// When this instance was created (monotonic ns).
  let createdAt: Int64
  /// `rd_kafka_produceva` arguments, reused across records.
  private var values: UnsafeMutablePointer<rd_kafka_vu_t>
  private var valueCapacity: Int

  /// Creates a producer with the configuration's librdkafka properties,
  /// reporting its callbacks to `events`.
  /// - Throws: `.invalidSetting` for a property librdkafka rejects.
  init(configuration: KafkaSinkConfiguration, events: ProducerEvents) throws(KafkaSinkError) {
    var errorText = [CChar](repeating: 0, count: 512)
    guard let conf = rd_kafka_conf_new() else { throw .fatal(detail: "rd_kafka_conf_new failed") }
    for property in configuration.librdkafkaProperties {
      guard
        rd_kafka_conf_set(conf, property.name, property.value, &errorText, errorText.count)
          == RD_KAFKA_CONF_OK
      else {
        rd_kafka_conf_destroy(conf)
        let shown = LibrdkafkaClient.isSecret(property.name) ? "<redacted>" : property.value
        throw .invalidSetting(
          setting: property.setting,
          message: "\(property.name)=\(shown): \(String(nulTerminated: errorText))")
      }
    }
    rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(events).toOpaque())
    rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
    rd_kafka_conf_set_error_cb(conf, errorCallback)
    rd_kafka_conf_set_log_cb(conf, logCallback)
    guard let created = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errorText, errorText.count) else {
      rd_kafka_conf_destroy(conf)  // only freed by rd_kafka_new on success
      throw .invalidSetting(
        setting: KafkaSetting.properties, message: String(nulTerminated: errorText))
    }
    guard let topic = rd_kafka_topic_new(created, configuration.topic, nil) else {
      let reason = describe(rd_kafka_last_error())
      rd_kafka_destroy(created)
      throw .invalidSetting(setting: KafkaSetting.topic, message: "rd_kafka_topic_new: \(reason)")
    }
    client = created
    self.topic = topic
    self.events = events
    transactionalID = configuration.transactionalID
    createdAt = monotonicNanoseconds()
    valueCapacity = 8
    values = .allocate(capacity: valueCapacity)
  }

  deinit {
    rd_kafka_topic_destroy(topic)
    rd_kafka_destroy(client)
    values.deallocate()
  }

  // MARK: Serving callbacks

  /// Serves callbacks for up to `milliseconds`.
  func poll(milliseconds: Int) {
    rd_kafka_poll(client, Int32(clamping: milliseconds))
  }

  /// Waits up to `milliseconds` for queued and in-flight records to be acknowledged.
  func flush(milliseconds: Int) {
    rd_kafka_flush(client, Int32(clamping: milliseconds))
  }

  /// Drops queued records (and, with `inFlight`, those sent and not yet
  /// acknowledged); their delivery reports say so.
  func purge(inFlight: Bool) {
    let flags = RD_KAFKA_PURGE_F_QUEUE | (inFlight ? RD_KAFKA_PURGE_F_INFLIGHT : 0)
    rd_kafka_purge(client, flags)
  }

  /// Records produced and not yet acknowledged (librdkafka's own queue).
  var queuedMessages: Int { Int(rd_kafka_outq_len(client)) }

  // MARK: Metadata

  /// The topic's entry in a metadata reply: its error, and its partition count.
  struct TopicMetadata {
    var error: rd_kafka_resp_err_t
    var partitions: Int
  }

  /// Asks the cluster for the topic's metadata, waiting up to `milliseconds`.
  /// - Returns: the entry, nil when the reply lacks the topic, or the request's error.
  func topicMetadata(named name: String, milliseconds: Int)
    -> Result<TopicMetadata?, LibrdkafkaResponseError>
  {
    var metadata: UnsafePointer<rd_kafka_metadata>?
    let result = rd_kafka_metadata(client, 0, topic, &metadata, Int32(clamping: milliseconds))
    guard result == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
      return .failure(LibrdkafkaResponseError(code: result))
    }
    defer { rd_kafka_metadata_destroy(metadata) }
    let topics = UnsafeBufferPointer(
      start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
    return .success(
      topics.first(where: { String(cString: $0.topic) == name }).map {
        TopicMetadata(error: $0.err, partitions: Int($0.partition_cnt))
      })
  }

  // MARK: Transactions

  /// `rd_kafka_init_transactions`: nil once initialised.
  func initTransactions(milliseconds: Int) -> LibrdkafkaError? {
    rd_kafka_init_transactions(client, Int32(clamping: milliseconds)).map(
      LibrdkafkaError.init(consuming:))
  }

  /// `rd_kafka_begin_transaction`: nil once begun.
  func beginTransaction() -> LibrdkafkaError? {
    rd_kafka_begin_transaction(client).map(LibrdkafkaError.init(consuming:))
  }

  /// `rd_kafka_commit_transaction`: nil once committed.
  func commitTransaction(milliseconds: Int) -> LibrdkafkaError? {
    rd_kafka_commit_transaction(client, Int32(clamping: milliseconds)).map(
      LibrdkafkaError.init(consuming:))
  }

  /// `rd_kafka_abort_transaction`: nil once aborted.
  func abortTransaction(milliseconds: Int) -> LibrdkafkaError? {
    rd_kafka_abort_transaction(client, Int32(clamping: milliseconds)).map(
      LibrdkafkaError.init(consuming:))
  }

  // MARK: Producing

  /// Hands every record of `batch` to librdkafka (copied), the record at
  /// index i with the delivery opaque `tag(i)`. While librdkafka's queue is
  /// full it serves callbacks and tries again.
  /// - Returns: nil when all were accepted, else the index of the first
  ///   record refused and why.
  func produce(_ batch: EncodedBatch, tag: (Int) -> UInt) -> (index: Int, error: LibrdkafkaError)? {
    let maxHeaders = batch.records.lazy.map(\.headers.count).max() ?? 0
    ensureValueCapacity(5 + maxHeaders)
    let (client, topic, values) = (client, topic, values)
    return batch.storage.withUnsafeBytes { raw -> (index: Int, error: LibrdkafkaError)? in
      guard let base = raw.baseAddress else { return nil }
      let mutableBase = UnsafeMutableRawPointer(mutating: base)
      for (index, record) in batch.records.enumerated() {
        values[0].vtype = RD_KAFKA_VTYPE_RKT
        values[0].u.rkt = topic
        values[1].vtype = RD_KAFKA_VTYPE_KEY
        values[1].u.mem.ptr = record.key.isEmpty ? nil : mutableBase + record.key.lowerBound
        values[1].u.mem.size = record.key.count
        values[2].vtype = RD_KAFKA_VTYPE_VALUE
        values[2].u.mem.ptr = record.value.isEmpty ? nil : mutableBase + record.value.lowerBound
        values[2].u.mem.size = record.value.count
        values[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        values[3].u.i = RD_KAFKA_MSG_F_COPY
        values[4].vtype = RD_KAFKA_VTYPE_OPAQUE
        values[4].u.ptr = UnsafeMutableRawPointer(bitPattern: tag(index))
        var count = 5
        for header in batch.headers[record.headers] {
          values[count].vtype = RD_KAFKA_VTYPE_HEADER
          values[count].u.header.name = (base + header.nameOffset).assumingMemoryBound(
            to: CChar.self)
          values[count].u.header.val = UnsafeRawPointer(base + header.value.lowerBound)
          values[count].u.header.size = header.value.count
          count += 1
        }
        while let refused = rd_kafka_produceva(client, values, count) {
          let error = LibrdkafkaError(consuming: refused)
          guard error.code == RD_KAFKA_RESP_ERR__QUEUE_FULL else { return (index, error) }
          rd_kafka_poll(client, 10)  // let librdkafka drain its queue, then try again
        }
      }
      return nil
    }
  }

  private func ensureValueCapacity(_ needed: Int) {
    guard needed > valueCapacity else { return }
    values.deallocate()
    valueCapacity = needed
    values = .allocate(capacity: needed)
  }

  // MARK: Fatal errors

  /// How bad `error`, raised by this producer, is.
  func severity(of error: LibrdkafkaError) -> ErrorSeverity {
    guard
      error.isFatal || error.code == RD_KAFKA_RESP_ERR__FATAL
        || LibrdkafkaError.isFencing(error.code)
    else {
      return .recoverable
    }
    let classified = Self.fatalError(
      of: client, transactionalID: transactionalID, fallback: error.description, code: error.code)
    switch classified {
    case .fenced: return .fenced(classified)
    case .fatal(let detail): return .fatal(detail)
    default: return .fatal(classified.description)
    }
  }

  /// This producer's fatal error, classified (fenced or other).
  func fatalError(fallback: String) -> KafkaSinkError {
    Self.fatalError(of: client, transactionalID: transactionalID, fallback: fallback)
  }

  /// The fatal error `client` raised (`fallback`/`code` when it raised
  /// none), classified: fenced when another producer took over, else fatal.
  /// Static for the error callback, which is handed the bare `rd_kafka_t`.
  static func fatalError(
    of client: OpaquePointer, transactionalID: String, fallback: String,
    code: rd_kafka_resp_err_t = RD_KAFKA_RESP_ERR_NO_ERROR
  ) -> KafkaSinkError {
    var text = [CChar](repeating: 0, count: 512)
    var original = code
    var reason = fallback
    let fatalCode = rd_kafka_fatal_error(client, &text, text.count)
    if fatalCode != RD_KAFKA_RESP_ERR_NO_ERROR {
      original = fatalCode
      reason = "\(describe(fatalCode)): \(String(nulTerminated: text))"
    }
    if LibrdkafkaError.isFencing(original) {
      return .fenced(transactionalID: transactionalID, detail: reason)
    }
    return .fatal(detail: reason)
  }

}

/// A bare librdkafka response code as an error (metadata requests).
struct LibrdkafkaResponseError: Error, Sendable, CustomStringConvertible {
  let code: rd_kafka_resp_err_t
  var description: String { describe(code) }
}
