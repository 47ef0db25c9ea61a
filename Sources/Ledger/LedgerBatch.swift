import DeltaModel
import DeltaWire
import KafkaSink
import NIOCore

/// The records of one PostgreSQL transaction, as the column arrays
/// `privtrak.apply_deltas` takes (schemas/ledger/CONTRACT.md): one entry per
/// delta (a per-batch record holds many), one per rejected record, and per
/// partition the offset after its last record.
public struct LedgerBatch: Sendable {
  /// Deltas decoded.
  public private(set) var deltaCount = 0
  /// Records that did not decode.
  public private(set) var rejectedCount = 0
  /// Records taken (decoded or not).
  public private(set) var recordCount = 0
  /// Per partition: the offset after its last record in the batch.
  public private(set) var nextOffsets: [Int32: Int64] = [:]
  /// The newest `reported_at_ms` among the deltas (lag in seconds).
  public private(set) var newestReportedAtMilliseconds: Int64?
  /// Per partition: the newest `reported_at_ms` among its deltas.
  public private(set) var newestReportedAtByPartition: [Int32: Int64] = [:]

  /// Records taken per partition (``removing(partitions:)``).
  var recordsPerPartition: [Int32: Int] = [:]
  var partition: [Int32] = []
  var offset: [Int64] = []
  var userID: [ByteBuffer] = []
  var infoHash: [ByteBuffer] = []
  var uploaded: [Int64] = []
  var downloaded: [Int64] = []
  var event: [Int16] = []
  var reportedAt: [Int64] = []
  var seeding: [Bool] = []
  var interval: [Int64] = []
  var reset: [Bool] = []
  var instance: [Int64] = []
  var sequence: [Int64] = []
  var clientIP: [ByteBuffer] = []
  var peerID: [ByteBuffer] = []
  var uploadFactor: [Int32] = []
  var downloadFactor: [Int32] = []

  var rejectedPartition: [Int32] = []
  var rejectedOffset: [Int64] = []
  var rejectedKey: [ByteBuffer] = []
  var rejectedValue: [ByteBuffer] = []
  var rejectedReason: [String] = []

  /// An empty batch.
  public init() {}

  /// Whether nothing was taken.
  public var isEmpty: Bool { recordCount == 0 }

  /// Takes one Kafka record: its deltas, or, when it does not decode (another
  /// schema, garbage, a wrong-length id), the record itself as rejected.
  /// - Returns: the decoding error of a rejected record, nil otherwise.
  @discardableResult
  public mutating func append(_ record: KafkaRawRecord) -> DeltaWireError? {
    recordCount += 1
    recordsPerPartition[record.partition, default: 0] += 1
    nextOffsets[record.partition] = max(nextOffsets[record.partition] ?? 0, record.offset + 1)
    do {
      let deltas = try KafkaRecordLayout.decode(
        key: record.key, value: record.value, headers: record.headers)
      for delta in deltas { append(delta, partition: record.partition, offset: record.offset) }
      return nil
    } catch {
      rejectedCount += 1
      rejectedPartition.append(record.partition)
      rejectedOffset.append(record.offset)
      rejectedKey.append(ByteBuffer(bytes: record.key))
      rejectedValue.append(ByteBuffer(bytes: record.value))
      rejectedReason.append("\(error)")
      return error
    }
  }

  /// Takes one delta of the record at `partition`/`offset`.
  public mutating func append(_ delta: Delta, partition: Int32, offset: Int64) {
    deltaCount += 1
    self.partition.append(partition)
    self.offset.append(offset)
    userID.append(ByteBuffer(bytes: delta.userID.bytes))
    infoHash.append(ByteBuffer(bytes: delta.infoHash.bytes))
    uploaded.append(delta.uploaded)
    downloaded.append(delta.downloaded)
    event.append(Int16(delta.event.rawValue))
    reportedAt.append(delta.reportedAtMilliseconds)
    seeding.append(delta.seeding)
    interval.append(Int64(delta.intervalSeconds))
    reset.append(delta.reset)
    // fixed64 / uint64 in bigint columns: the same 64 bits, read signed.
    instance.append(Int64(bitPattern: delta.origin.instance))
    sequence.append(Int64(bitPattern: delta.origin.sequence))
    clientIP.append(ByteBuffer(bytes: delta.clientIP?.bytes ?? []))
    peerID.append(ByteBuffer(bytes: delta.peerID?.raw.bytes ?? []))
    uploadFactor.append(Int32(clamping: delta.factors.uploadPercent))
    downloadFactor.append(Int32(clamping: delta.factors.downloadPercent))
    newestReportedAtMilliseconds = max(
      newestReportedAtMilliseconds ?? .min, delta.reportedAtMilliseconds)
    newestReportedAtByPartition[partition] = max(
      newestReportedAtByPartition[partition] ?? .min, delta.reportedAtMilliseconds)
  }

  /// The batch without the records of `partitions` (deltas, rejected
  /// records and offsets), as if they had never been taken.
  public func removing(partitions dropped: Set<Int32>) -> LedgerBatch {
    guard !dropped.isEmpty else { return self }
    var kept = LedgerBatch()
    kept.recordsPerPartition = recordsPerPartition.filter { !dropped.contains($0.key) }
    kept.recordCount = kept.recordsPerPartition.values.reduce(0, +)
    kept.nextOffsets = nextOffsets.filter { !dropped.contains($0.key) }
    for index in partition.indices where !dropped.contains(partition[index]) {
      kept.deltaCount += 1
      kept.partition.append(partition[index])
      kept.offset.append(offset[index])
      kept.userID.append(userID[index])
      kept.infoHash.append(infoHash[index])
      kept.uploaded.append(uploaded[index])
      kept.downloaded.append(downloaded[index])
      kept.event.append(event[index])
      kept.reportedAt.append(reportedAt[index])
      kept.seeding.append(seeding[index])
      kept.interval.append(interval[index])
      kept.reset.append(reset[index])
      kept.instance.append(instance[index])
      kept.sequence.append(sequence[index])
      kept.clientIP.append(clientIP[index])
      kept.peerID.append(peerID[index])
      kept.uploadFactor.append(uploadFactor[index])
      kept.downloadFactor.append(downloadFactor[index])
      kept.newestReportedAtMilliseconds = max(
        kept.newestReportedAtMilliseconds ?? .min, reportedAt[index])
      kept.newestReportedAtByPartition[partition[index]] = max(
        kept.newestReportedAtByPartition[partition[index]] ?? .min, reportedAt[index])
    }
    for index in rejectedPartition.indices where !dropped.contains(rejectedPartition[index]) {
      kept.rejectedCount += 1
      kept.rejectedPartition.append(rejectedPartition[index])
      kept.rejectedOffset.append(rejectedOffset[index])
      kept.rejectedKey.append(rejectedKey[index])
      kept.rejectedValue.append(rejectedValue[index])
      kept.rejectedReason.append(rejectedReason[index])
    }
    return kept
  }
}
