import Accounting
import CRdKafka
import DeltaModel
import DeltaWire
import Dispatch
import Foundation

/// One record as a consumer saw it.
struct RawRecord: Sendable {
  var partition: Int32
  var offset: Int64
  var key: [UInt8]
  var value: [UInt8]
  var headers: [KafkaRecordHeader]
}

/// One record as a consumer saw it, decoded with DeltaWire.
struct ConsumedRecord: Sendable {
  var partition: Int32
  var offset: Int64
  var key: [UInt8]
  var deltas: [Delta]
}

/// A librdkafka consumer without a consumer group: it `assign`s every
/// partition of one topic from the beginning (read_committed by default) and
/// reads on its own Dispatch queue.
final class TestConsumer: @unchecked Sendable {
  // @unchecked: `client` is only used on `queue` (and in deinit).
  private let client: OpaquePointer
  private let queue = DispatchQueue(label: "privtrak.test-consumer")
  let topic: String
  let partitions: [Int32]

  init(topic: String, bootstrap: String = TestKafka.bootstrap, readCommitted: Bool = true)
    async throws
  {
    self.topic = topic
    let partitionCount = try await TestKafka.partitionCount(of: topic, bootstrap: bootstrap)
    guard partitionCount > 0 else {
      throw TestKafkaError("consumer: topic \(topic) does not exist")
    }
    partitions = (0..<Int32(partitionCount)).map { $0 }
    client = try TestKafka.makeClient(
      type: RD_KAFKA_CONSUMER,
      properties: [
        "bootstrap.servers": bootstrap,
        "group.id": "privtrak-tests-unused",  // required by librdkafka; never joined (assign only)
        "isolation.level": readCommitted ? "read_committed" : "read_uncommitted",
        "fetch.wait.max.ms": "10",
        "enable.partition.eof": "true",
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
      ])
    rd_kafka_poll_set_consumer(client)
    let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for partition in partitions {
      rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = Int64(
        RD_KAFKA_OFFSET_BEGINNING)
    }
    let code = rd_kafka_assign(client, list)
    guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
      throw TestKafkaError("assign: \(String(cString: rd_kafka_err2str(code)))")
    }
  }

  deinit {
    rd_kafka_consumer_close(client)
    rd_kafka_destroy(client)
  }

  /// Reads until `done(records)` holds and every partition is at its end
  /// (for read_committed: the last stable offset), or `timeout` passes.
  /// Records read earlier by this consumer are not returned again.
  func readRaw(
    timeout: Duration = .seconds(30), until done: @escaping @Sendable ([RawRecord]) -> Bool
  ) async throws -> [RawRecord] {
    let client = UncheckedClient(pointer: client)
    let partitions = partitions
    return try await withCheckedThrowingContinuation { continuation in
      queue.async {
        continuation.resume(
          with: Result { try Self.read(client.pointer, partitions, timeout, done) })
      }
    }
  }

  /// Like `readRaw`, with values as UTF-8 text.
  func readRawValues(
    timeout: Duration = .seconds(30), until done: @escaping @Sendable ([String]) -> Bool
  ) async throws -> [String] {
    let text: @Sendable ([RawRecord]) -> [String] = {
      $0.map { String(decoding: $0.value, as: UTF8.self) }
    }
    return text(try await readRaw(timeout: timeout) { done(text($0)) })
  }

  /// Like `readRaw`, decoding each record with DeltaWire (by its `privtrak-type` header).
  func read(
    timeout: Duration = .seconds(30), until done: @escaping @Sendable ([ConsumedRecord]) -> Bool
  ) async throws -> [ConsumedRecord] {
    let decode: @Sendable ([RawRecord]) throws -> [ConsumedRecord] = { raw in
      try raw.map { record in
        ConsumedRecord(
          partition: record.partition, offset: record.offset, key: record.key,
          deltas: try KafkaRecordLayout.decode(value: record.value, headers: record.headers))
      }
    }
    return try decode(
      try await readRaw(timeout: timeout) { raw in (try? done(decode(raw))) ?? true })
  }

  /// Reads until at least `count` distinct origins were seen and the partitions are drained.
  func read(distinctOrigins count: Int, timeout: Duration = .seconds(30)) async throws
    -> [ConsumedRecord]
  {
    try await read(timeout: timeout) { records in
      Set(records.flatMap { $0.deltas.map(\.origin) }).count >= count
    }
  }

  private static func read(
    _ client: OpaquePointer, _ partitions: [Int32], _ timeout: Duration,
    _ done: ([RawRecord]) -> Bool
  ) throws -> [RawRecord] {
    let deadline = ContinuousClock.now + timeout
    var records: [RawRecord] = []
    var atEnd = Set<Int32>()
    while ContinuousClock.now < deadline {
      if atEnd.count == partitions.count && done(records) { return records }
      guard let message = rd_kafka_consumer_poll(client, 50) else { continue }
      defer { rd_kafka_message_destroy(message) }
      let partition = message.pointee.partition
      if message.pointee.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
        atEnd.insert(partition)
        continue
      }
      guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }  // transient fetch errors
      atEnd.remove(partition)
      records.append(
        RawRecord(
          partition: partition, offset: message.pointee.offset,
          key: bytes(message.pointee.key, message.pointee.key_len),
          value: bytes(message.pointee.payload, message.pointee.len), headers: headers(of: message))
      )
    }
    throw TestKafkaError(
      "consumer: condition not met within \(timeout) (\(records.count) records, "
        + "\(atEnd.count)/\(partitions.count) partitions at end)")
  }

  private static func bytes(_ pointer: UnsafeMutableRawPointer?, _ count: Int) -> [UInt8] {
    guard let pointer, count > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: pointer, count: count))
  }

  private static func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>)
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

/// Carries the consumer handle onto its queue.
private struct UncheckedClient: @unchecked Sendable {
  let pointer: OpaquePointer
}
