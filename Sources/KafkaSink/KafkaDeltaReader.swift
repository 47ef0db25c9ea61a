import CRdKafka
import DeltaModel
import DeltaWire

/// One consumed record, decoded.
public struct KafkaDeltaRecord: Sendable, Hashable {
  /// The partition it was read from.
  public var partition: Int32
  /// Its offset in that partition.
  public var offset: Int64
  /// Its deltas: one for a per-delta record, the whole batch for a per-batch record.
  public var deltas: [Delta]

  /// Creates a record.
  public init(partition: Int32, offset: Int64, deltas: [Delta]) {
    self.partition = partition
    self.offset = offset
    self.deltas = deltas
  }
}

/// Why a `KafkaDeltaReader` could not open or read.
public enum KafkaDeltaReaderError: Error, Sendable, Equatable, CustomStringConvertible {
  /// librdkafka refused the configuration or could not create the client.
  case client(message: String)
  /// The cluster did not answer a metadata or watermark request.
  case metadata(message: String)
  /// The topic does not exist (the reader never creates it).
  case unknownTopic(topic: String)
  /// A record's value or headers are not a `privtrak.v1` record; never skipped.
  case undecodableRecord(partition: Int32, offset: Int64, error: DeltaWireError)
  /// librdkafka reported an error the consumer cannot continue after.
  case consumer(message: String)

  /// A one-line explanation.
  public var description: String {
    switch self {
    case .client(let message): "kafka consumer: \(message)"
    case .metadata(let message): "kafka metadata: \(message)"
    case .unknownTopic(let topic): "kafka: topic '\(topic)' does not exist"
    case .undecodableRecord(let partition, let offset, let error):
      "kafka: undecodable record at partition \(partition) offset \(offset): \(error)"
    case .consumer(let message): "kafka consumer: \(message)"
    }
  }
}

/// Reads the deltas of one topic from the beginning of every partition, as a
/// `read_committed` consumer (only committed transactions are returned):
/// a ``KafkaRecordReader`` whose records are decoded with DeltaWire.
///
/// Blocking and not thread-safe, like the record reader: meant for a CLI
/// such as `privtrak tail`, used from one dedicated thread.
public final class KafkaDeltaReader {
  private let records: KafkaRecordReader

  /// The topic being read.
  public var topic: String { records.topic }
  /// Its partitions, in order.
  public var partitions: [Int32] { records.partitions }
  /// The high watermark of each partition when the reader opened.
  public var endOffsetsAtStart: [Int32: Int64] { records.endOffsetsAtStart }
  /// The last error librdkafka reported that it retries by itself (e.g. a
  /// broker connection refused); nil when none happened yet.
  public var lastTransientError: String? { records.lastTransientError }
  /// True once every partition was read up to its high watermark at start.
  public var reachedEndAtStart: Bool { records.reachedEndAtStart }

  /// Connects, looks the topic up and assigns all its partitions from the beginning.
  /// - Parameters:
  ///   - bootstrap: `host:port[,host:port]`.
  ///   - topic: the topic to read; it must exist.
  ///   - timeoutMilliseconds: bound of each metadata and watermark request.
  ///   - properties: extra librdkafka properties (applied last).
  /// - Throws: `KafkaDeltaReaderError`.
  public init(
    bootstrap: String, topic: String, timeoutMilliseconds: Int32 = 10_000,
    properties: [String: String] = [:]
  ) throws(KafkaDeltaReaderError) {
    records = try KafkaRecordReader(
      bootstrap: bootstrap, topic: topic, timeoutMilliseconds: timeoutMilliseconds,
      properties: properties)
  }

  /// The records available now, decoded, in the order librdkafka delivers
  /// them (per partition: offset order). Waits up to `timeoutMilliseconds`
  /// for the first one, then takes at most `maxRecords` without waiting. An
  /// empty result means nothing arrived in time.
  /// - Throws: `KafkaDeltaReaderError.undecodableRecord` for a record that
  ///   is not `privtrak.v1` (records before it in the same call are lost to
  ///   the caller, so it should stop), `.consumer` for fatal errors.
  public func poll(timeoutMilliseconds: Int32 = 100, maxRecords: Int = 1000)
    throws(KafkaDeltaReaderError) -> [KafkaDeltaRecord]
  {
    var decoded: [KafkaDeltaRecord] = []
    for record in try records.poll(timeoutMilliseconds: timeoutMilliseconds, maxRecords: maxRecords)
    {
      do {
        let deltas = try KafkaRecordLayout.decode(
          key: record.key, value: record.value, headers: record.headers)
        decoded.append(
          KafkaDeltaRecord(partition: record.partition, offset: record.offset, deltas: deltas))
      } catch {
        throw .undecodableRecord(partition: record.partition, offset: record.offset, error: error)
      }
    }
    return decoded
  }

  /// Leaves the partitions and frees the client; `poll` must not be called afterwards.
  public func close() { records.close() }
}
