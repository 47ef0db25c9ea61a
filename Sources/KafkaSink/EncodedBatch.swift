import DeltaModel
import DeltaWire

/// A batch's Kafka records (DeltaWire layout) packed into one byte buffer, so
/// the producer thread hands librdkafka pointers without per-record
/// allocations. Encoding happens on the publishing task, in parallel with
/// other publishers; the producer thread only copies bytes into librdkafka.
struct EncodedBatch: Sendable {
  /// One record: byte ranges in `storage`, and its headers in `headers`.
  struct Record: Sendable {
    var key: Range<Int>
    var value: Range<Int>
    var headers: Range<Int>
  }

  /// One header: the offset of its NUL-terminated name, and its value bytes, in `storage`.
  struct Header: Sendable {
    var nameOffset: Int
    var value: Range<Int>
  }

  /// Keys, values, header names (NUL-terminated) and header values.
  private(set) var storage: [UInt8] = []
  private(set) var records: [Record] = []
  /// Headers; consecutive records with equal headers share entries.
  private(set) var headers: [Header] = []
  /// Deltas in the batch.
  let deltaCount: Int
  /// Logical record bytes: every record's key, value, header names and values.
  private(set) var byteCount = 0

  /// Encodes `batch` in `framing`.
  init(_ batch: DeltaBatch, framing: RecordFraming) {
    deltaCount = batch.deltas.count
    let kafkaRecords = KafkaRecordLayout.records(for: batch, framing: framing)
    storage.reserveCapacity(batch.estimatedSize + 64)
    records.reserveCapacity(kafkaRecords.count)
    var previousHeaders: [KafkaRecordHeader]? = nil
    var previousRange = 0..<0
    for record in kafkaRecords {
      let key = append(record.key)
      let value = append(record.value)
      var headerRange = previousRange
      if previousHeaders != record.headers {
        let start = headers.count
        for header in record.headers {
          let nameOffset = storage.count
          storage.append(contentsOf: header.name.utf8)
          storage.append(0)
          headers.append(Header(nameOffset: nameOffset, value: append(header.value)))
        }
        headerRange = start..<headers.count
        previousHeaders = record.headers
        previousRange = headerRange
      }
      records.append(Record(key: key, value: value, headers: headerRange))
      byteCount += record.key.count + record.value.count
      for header in record.headers { byteCount += header.name.utf8.count + header.value.count }
    }
  }

  private mutating func append(_ bytes: [UInt8]) -> Range<Int> {
    let start = storage.count
    storage.append(contentsOf: bytes)
    return start..<storage.count
  }
}
