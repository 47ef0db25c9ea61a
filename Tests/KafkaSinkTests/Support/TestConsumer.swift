import DeltaModel
import DeltaWire
import Dispatch
import KafkaSink

/// One record as a consumer saw it, decoded with DeltaWire.
struct ConsumedRecord: Sendable {
  var partition: Int32
  var offset: Int64
  var key: [UInt8]
  var deltas: [Delta]
}

/// The tests' consumer: the shipped ``KafkaRecordReader`` (no consumer
/// group, every partition assigned from the beginning, read_committed by
/// default) driven from its own Dispatch queue, so the blocking librdkafka
/// calls never run on the cooperative pool.
final class TestConsumer: Sendable {
  // The reader is not thread-safe; every use is a job on `queue`, one at a time.
  private let reader: QueueConfined<KafkaRecordReader>
  let topic: String

  init(topic: String, bootstrap: String = TestKafka.bootstrap, readCommitted: Bool = true)
    async throws
  {
    self.topic = topic
    let queue = DispatchQueue(label: "privtrak.test-consumer")
    let made = try await withCheckedThrowingContinuation {
      (continuation: CheckedContinuation<QueueConfined<KafkaRecordReader>, any Error>) in
      queue.async {
        continuation.resume(
          with: Result {
            let reader = try KafkaRecordReader(
              bootstrap: bootstrap, topic: topic,
              properties: [
                "isolation.level": readCommitted ? "read_committed" : "read_uncommitted",
                "fetch.wait.max.ms": "10",
              ])
            return QueueConfined(reader, queue: queue)
          })
      }
    }
    reader = made
  }

  /// Reads until `done(records)` holds and every partition is at its end
  /// (for read_committed: the last stable offset), or `timeout` passes.
  /// Records read earlier by this consumer are not returned again.
  func readRaw(
    timeout: Duration = .seconds(30), until done: @escaping @Sendable ([KafkaRawRecord]) -> Bool
  ) async throws -> [KafkaRawRecord] {
    try await reader.run { reader in
      let deadline = ContinuousClock.now + timeout
      var records: [KafkaRawRecord] = []
      while ContinuousClock.now < deadline {
        if reader.partitionsAtEnd.count == reader.partitions.count && done(records) {
          return records
        }
        records += try reader.poll(timeoutMilliseconds: 50)
      }
      throw TestKafkaError(
        "consumer: condition not met within \(timeout) (\(records.count) records, "
          + "\(reader.partitionsAtEnd.count)/\(reader.partitions.count) partitions at end)")
    }
  }

  /// Like `readRaw`, with values as UTF-8 text.
  func readRawValues(
    timeout: Duration = .seconds(30), until done: @escaping @Sendable ([String]) -> Bool
  ) async throws -> [String] {
    let text: @Sendable ([KafkaRawRecord]) -> [String] = {
      $0.map { String(decoding: $0.value, as: UTF8.self) }
    }
    return text(try await readRaw(timeout: timeout) { done(text($0)) })
  }

  /// Like `readRaw`, decoding each record with DeltaWire (by its `privtrak-type` header).
  func read(
    timeout: Duration = .seconds(30), until done: @escaping @Sendable ([ConsumedRecord]) -> Bool
  ) async throws -> [ConsumedRecord] {
    let decode: @Sendable ([KafkaRawRecord]) throws -> [ConsumedRecord] = { raw in
      try raw.map { record in
        ConsumedRecord(
          partition: record.partition, offset: record.offset, key: record.key,
          deltas: try KafkaRecordLayout.decode(
            key: record.key, value: record.value, headers: record.headers))
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
}

/// A non-Sendable value reachable only through jobs on one serial queue.
private final class QueueConfined<Value>: @unchecked Sendable {
  // @unchecked: `value` is touched only inside `queue.async` jobs (run and
  // deinit below), and a serial queue runs one job at a time.
  private let value: Value
  private let queue: DispatchQueue

  init(_ value: Value, queue: DispatchQueue) {
    self.value = value
    self.queue = queue
  }

  func run<T: Sendable>(_ body: @escaping @Sendable (Value) throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      queue.async { continuation.resume(with: Result { try body(self.value) }) }
    }
  }
}
