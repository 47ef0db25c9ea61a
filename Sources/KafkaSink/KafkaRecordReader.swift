import CRdKafka
import DeltaWire

/// One record as it is on the topic: bytes, not yet decoded.
public struct KafkaRawRecord: Sendable, Hashable {
  /// The partition it was read from.
  public var partition: Int32
  /// Its offset in that partition.
  public var offset: Int64
  /// Its key (empty when it has none).
  public var key: [UInt8]
  /// Its value (empty for a null value).
  public var value: [UInt8]
  /// Its headers, in order.
  public var headers: [KafkaRecordHeader]

  /// Creates a record.
  public init(
    partition: Int32, offset: Int64, key: [UInt8], value: [UInt8], headers: [KafkaRecordHeader]
  ) {
    self.partition = partition
    self.offset = offset
    self.key = key
    self.value = value
    self.headers = headers
  }
}

/// Reads the records of one topic from the beginning of every partition,
/// `read_committed` unless `isolation.level` is overridden.
///
/// It joins no consumer group and commits no offsets: it `assign`s every
/// partition itself, so any number of readers can run side by side without
/// disturbing the operators' consumer groups. ``KafkaDeltaReader`` decodes
/// what it reads; tests read raw records with it.
///
/// Blocking: the initialiser and `poll` block the calling thread (up to their
/// timeouts) in librdkafka calls. Use it from one dedicated thread, never from
/// the cooperative pool of a server. It is not thread-safe.
///
/// "The end" (`reachedEndAtStart`) is the high watermark of every partition
/// when the reader opened. A transaction still open then holds the
/// read_committed position below it until that transaction ends.
public final class KafkaRecordReader {
  /// The topic being read.
  public let topic: String
  /// Its partitions, in order.
  public let partitions: [Int32]
  /// The high watermark of each partition when the reader opened.
  public let endOffsetsAtStart: [Int32: Int64]
  /// The last error librdkafka reported that it retries by itself (e.g. a
  /// broker connection refused); nil when none happened yet.
  public private(set) var lastTransientError: String?

  private let client: OpaquePointer
  /// Per partition: the offset after the last record consumed, or where EOF was reported.
  private var positions: [Int32: Int64] = [:]
  private var closed = false

  /// Connects, looks the topic up and assigns its partitions (all of them,
  /// or `onlyPartitions`), each from `startOffsets[partition]` or else from
  /// the beginning.
  /// - Parameters:
  ///   - bootstrap: `host:port[,host:port]`.
  ///   - topic: the topic to read; it must exist.
  ///   - timeoutMilliseconds: bound of each metadata and watermark request.
  ///   - properties: extra librdkafka properties (applied last).
  ///   - onlyPartitions: the partitions to read (a static assignment); nil
  ///     reads every partition. One the topic lacks is an error.
  ///   - startOffsets: where to start per partition (the next offset to read).
  /// - Throws: `KafkaDeltaReaderError`.
  public init(
    bootstrap: String, topic: String, timeoutMilliseconds: Int32 = 10_000,
    properties: [String: String] = [:], onlyPartitions: [Int32]? = nil,
    startOffsets: [Int32: Int64] = [:]
  ) throws(KafkaDeltaReaderError) {
    self.topic = topic
    var settings: [String: String] = [
      "bootstrap.servers": bootstrap,
      // Required by librdkafka even though the reader never joins the group (assign only).
      "group.id": "privtrak-tail-unused",
      "isolation.level": "read_committed",
      "enable.auto.commit": "false",
      "enable.auto.offset.store": "false",
      "enable.partition.eof": "true",
      "fetch.wait.max.ms": "50",
      "allow.auto.create.topics": "false",
      "log_level": "4",
    ]
    settings.merge(properties) { _, extra in extra }
    let client = try Self.makeConsumer(settings)
    do {
      let all = try Self.partitions(of: topic, client: client, timeout: timeoutMilliseconds)
      let partitions = onlyPartitions.map { Array(Set($0)).sorted() } ?? all
      if let missing = partitions.first(where: { !all.contains($0) }) {
        throw KafkaDeltaReaderError.metadata(
          message: "\(topic) has no partition \(missing) (it has \(all.count))")
      }
      var ends: [Int32: Int64] = [:]
      for partition in partitions {
        var low: Int64 = 0
        var high: Int64 = 0
        let code = rd_kafka_query_watermark_offsets(
          client, topic, partition, &low, &high, timeoutMilliseconds)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
          throw KafkaDeltaReaderError.metadata(
            message:
              "watermarks of \(topic)/\(partition): \(String(cString: rd_kafka_err2str(code)))"
          )
        }
        ends[partition] = high
        // An empty (or fully deleted) partition is at its end before anything is read.
        if high <= low { positions[partition] = high }
        if let start = startOffsets[partition] {
          positions[partition] = max(positions[partition] ?? 0, start)
        }
      }
      try Self.assign(
        client: client, topic: topic, partitions: partitions, startOffsets: startOffsets)
      self.partitions = partitions
      self.endOffsetsAtStart = ends
      self.client = client
    } catch let error as KafkaDeltaReaderError {
      rd_kafka_destroy(client)
      throw error
    } catch {
      rd_kafka_destroy(client)
      throw .client(message: "\(error)")
    }
  }

  deinit {
    close()
  }

  /// True once every partition was read up to its high watermark at start.
  public var reachedEndAtStart: Bool {
    partitions.allSatisfy { partition in
      (positions[partition] ?? 0) >= (endOffsetsAtStart[partition] ?? 0)
    }
  }

  /// Partitions whose end was reported after the last record read from them
  /// (for read_committed: the last stable offset at the time).
  public private(set) var partitionsAtEnd: Set<Int32> = []

  /// The records available now, in the order librdkafka delivers them (per
  /// partition: offset order). Waits up to `timeoutMilliseconds` for the
  /// first one, then takes at most `maxRecords` without waiting. An empty
  /// result means nothing arrived in time.
  /// - Throws: `KafkaDeltaReaderError.consumer` for fatal errors.
  public func poll(timeoutMilliseconds: Int32 = 100, maxRecords: Int = 1000)
    throws(KafkaDeltaReaderError) -> [KafkaRawRecord]
  {
    precondition(!closed, "poll after close")
    var records: [KafkaRawRecord] = []
    var wait = timeoutMilliseconds
    while records.count < maxRecords, let message = rd_kafka_consumer_poll(client, wait) {
      wait = 0
      defer { rd_kafka_message_destroy(message) }
      if let record = try consume(message) { records.append(record) }
    }
    return records
  }

  /// Records not read yet: per partition, the high watermark librdkafka
  /// last learned (from fetch responses; no request is sent) minus the
  /// reader's position, summed. Transaction markers count until the end is
  /// reported past them.
  public func lag() -> Int64 {
    partitions.reduce(0) { $0 + (lag(of: $1) ?? 0) }
  }

  /// Records of `partition` not read yet (as in ``lag()``); nil before
  /// librdkafka learned the partition's high watermark.
  public func lag(of partition: Int32) -> Int64? {
    precondition(!closed, "lag after close")
    return Self.lag(
      client: client, topic: topic, partition: partition, position: positions[partition])
  }

  /// The high watermark librdkafka last learned for `partition` minus
  /// `position` (or the low watermark when there is none), at least 0.
  static func lag(client: OpaquePointer, topic: String, partition: Int32, position: Int64?)
    -> Int64?
  {
    var low: Int64 = 0
    var high: Int64 = 0
    guard
      rd_kafka_get_watermark_offsets(client, topic, partition, &low, &high)
        == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0
    else { return nil }
    return max(0, high - max(low, position ?? low))
  }

  /// Leaves the partitions and frees the client; `poll` must not be called afterwards.
  public func close() {
    guard !closed else { return }
    closed = true
    rd_kafka_consumer_close(client)
    rd_kafka_destroy(client)
  }

  private func consume(_ message: UnsafeMutablePointer<rd_kafka_message_t>)
    throws(KafkaDeltaReaderError) -> KafkaRawRecord?
  {
    switch try Self.classify(message) {
    case .record(let record):
      positions[record.partition] = max(positions[record.partition] ?? 0, record.offset + 1)
      partitionsAtEnd.remove(record.partition)
      return record
    case .endOfPartition(let partition, let offset):
      positions[partition] = max(positions[partition] ?? 0, offset)
      partitionsAtEnd.insert(partition)
      return nil
    case .transient(let text):
      lastTransientError = text
      return nil
    }
  }

  /// What one message polled from a consumer is.
  enum PolledMessage {
    /// A record.
    case record(KafkaRawRecord)
    /// The end of a partition: `offset` is the fetch position there (past
    /// trailing transaction markers, which are never delivered as records).
    case endOfPartition(partition: Int32, offset: Int64)
    /// An error librdkafka retries by itself (broker down, leader moved, ...).
    case transient(String)
  }

  /// Classifies a polled message; throws for errors a consumer cannot continue after.
  static func classify(_ message: UnsafeMutablePointer<rd_kafka_message_t>)
    throws(KafkaDeltaReaderError) -> PolledMessage
  {
    let partition = message.pointee.partition
    let offset = message.pointee.offset
    switch message.pointee.err {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return .record(
        KafkaRawRecord(
          partition: partition, offset: offset,
          key: bytes(message.pointee.key, message.pointee.key_len),
          value: bytes(message.pointee.payload, message.pointee.len),
          headers: headers(of: message)))
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
      return .endOfPartition(partition: partition, offset: offset)
    case RD_KAFKA_RESP_ERR__FATAL, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
      RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      throw .consumer(message: errorText(message))
    default:
      return .transient(errorText(message))
    }
  }

  static func makeConsumer(
    _ settings: [String: String], configure: (OpaquePointer) -> Void = { _ in }
  ) throws(KafkaDeltaReaderError) -> OpaquePointer {
    let client: OpaquePointer
    do throws(LibrdkafkaClientError) {
      client = try LibrdkafkaClient.create(
        RD_KAFKA_CONSUMER, settings: settings, configure: configure)
    } catch {
      throw .client(message: error.message)
    }
    // Fetched records and events go to the consumer queue read by rd_kafka_consumer_poll.
    rd_kafka_poll_set_consumer(client)
    return client
  }

  /// The topic's partitions from an all-topics metadata request (which never auto-creates).
  static func partitions(of topic: String, client: OpaquePointer, timeout: Int32)
    throws(KafkaDeltaReaderError) -> [Int32]
  {
    var metadata: UnsafePointer<rd_kafka_metadata>?
    let code = rd_kafka_metadata(client, 1, nil, &metadata, timeout)
    guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
      throw .metadata(message: String(cString: rd_kafka_err2str(code)))
    }
    defer { rd_kafka_metadata_destroy(metadata) }
    let topics = UnsafeBufferPointer(
      start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
    guard let entry = topics.first(where: { String(cString: $0.topic) == topic }),
      entry.err == RD_KAFKA_RESP_ERR_NO_ERROR, entry.partition_cnt > 0
    else { throw .unknownTopic(topic: topic) }
    return UnsafeBufferPointer(start: entry.partitions, count: Int(entry.partition_cnt))
      .map(\.id).sorted()
  }

  private static func assign(
    client: OpaquePointer, topic: String, partitions: [Int32], startOffsets: [Int32: Int64]
  ) throws(KafkaDeltaReaderError) {
    let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for partition in partitions {
      rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset =
        startOffsets[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING)
    }
    let code = rd_kafka_assign(client, list)
    guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
      throw .client(message: "assign: \(String(cString: rd_kafka_err2str(code)))")
    }
  }

  static func errorText(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> String {
    "\(String(cString: rd_kafka_err2name(message.pointee.err))): "
      + String(cString: rd_kafka_message_errstr(message))
  }

  static func bytes(_ pointer: UnsafeMutableRawPointer?, _ count: Int) -> [UInt8] {
    guard let pointer, count > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: pointer, count: count))
  }

  static func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>)
    -> [KafkaRecordHeader]
  {
    var list: OpaquePointer?
    guard rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else {
      return []
    }
    var result: [KafkaRecordHeader] = []
    var index = 0
    var name: UnsafePointer<CChar>?
    var value: UnsafeRawPointer?
    var size = 0
    while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
      let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
      result.append(KafkaRecordHeader(name: name.map { String(cString: $0) } ?? "", value: bytes))
      index += 1
    }
    return result
  }
}
