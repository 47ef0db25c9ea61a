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
  /// Headers, shared by every record of the batch.
  private(set) var headers: [Header] = []
  /// Deltas in the batch.
  let deltaCount: Int
  /// Logical record bytes: every record's key, value, header names and values.
  private(set) var byteCount = 0

  /// Encodes `batch` in `framing` (per-delta records with headers when
  /// `deltaHeaders`). Per-delta records are written straight into `storage`
  /// (no array per record); every record of a batch carries the same
  /// headers, stored once.
  init(_ batch: DeltaBatch, framing: RecordFraming, deltaHeaders: Bool = false) {
    deltaCount = batch.deltas.count
    guard !batch.deltas.isEmpty else { return }
    storage.reserveCapacity(batch.estimatedSize + 64)
    let recordHeaders = KafkaRecordLayout.headers(for: framing, withDeltaHeaders: deltaHeaders)
    for header in recordHeaders {
      let nameOffset = storage.count
      storage.append(contentsOf: header.name.utf8)
      storage.append(0)
      headers.append(Header(nameOffset: nameOffset, value: append(header.value)))
    }
    let headerRange = 0..<headers.count
    let headerBytes = recordHeaders.reduce(0) { $0 + $1.name.utf8.count + $1.value.count }
    switch framing {
    case .perDelta:
      records.reserveCapacity(batch.deltas.count)
      for delta in batch.deltas {
        let keyStart = storage.count
        KafkaRecordLayout.appendKey(for: delta, to: &storage)
        let valueStart = storage.count
        DeltaCodec.append(delta, to: &storage)
        records.append(
          Record(
            key: keyStart..<valueStart, value: valueStart..<storage.count, headers: headerRange))
        byteCount += storage.count - keyStart + headerBytes
      }
    case .perBatch:
      for record in KafkaRecordLayout.records(for: batch, framing: .perBatch) {
        let key = append(record.key)
        let value = append(record.value)
        records.append(Record(key: key, value: value, headers: headerRange))
        byteCount += record.key.count + record.value.count + headerBytes
      }
    }
  }

  private mutating func append(_ bytes: [UInt8]) -> Range<Int> {
    let start = storage.count
    storage.append(contentsOf: bytes)
    return start..<storage.count
  }
}
