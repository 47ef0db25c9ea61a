import BitTorrent
import DeltaModel

/// Writes `privtrak.v1.Delta` and `privtrak.v1.DeltaBatch` straight from the
/// model into a caller's buffer, byte for byte what swift-protobuf writes for
/// the same message (fields in number order, proto3 defaults left out,
/// optional fields written when present).
///
/// Why not swift-protobuf here: the tracker encodes one `Delta` per announce
/// on its hot path, and building a generated message costs a storage object
/// and a `Data` per id before serializing into a fresh array; this writes the
/// same bytes with no allocation (BENCHMARKS.md, performance round 2).
/// Decoding stays with swift-protobuf. `DeltaProtobufWriterTests` holds the
/// two to the same bytes over many generated deltas.
enum DeltaProtobufWriter {
  // Field keys: field number << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited).
  private static let userIDKey: UInt8 = 1 << 3 | 2
  private static let infoHashKey: UInt8 = 2 << 3 | 2
  private static let uploadedKey: UInt8 = 3 << 3
  private static let downloadedKey: UInt8 = 4 << 3
  private static let eventKey: UInt8 = 5 << 3
  private static let reportedAtKey: UInt8 = 6 << 3
  private static let seedingKey: UInt8 = 7 << 3
  private static let intervalKey: UInt8 = 8 << 3
  private static let resetKey: UInt8 = 9 << 3
  private static let instanceKey: UInt8 = 10 << 3 | 1
  private static let sequenceKey: UInt8 = 11 << 3
  private static let clientIPKey: UInt8 = 12 << 3 | 2
  private static let peerIDKey: UInt8 = 13 << 3 | 2
  private static let uploadFactorKey: UInt8 = 14 << 3
  private static let downloadFactorKey: UInt8 = 15 << 3
  private static let batchDeltasKey: UInt8 = 1 << 3 | 2
  private static let batchProducerKey: UInt8 = 2 << 3 | 1
  private static let batchSealedAtKey: UInt8 = 3 << 3

  /// The encoded size of `delta` as a `Delta` message.
  static func encodedSize(of delta: Delta) -> Int {
    var size = 2 + 16 + 2 + 20  // user_id and info_hash: key, length, bytes
    if delta.uploaded != 0 { size += 1 + varintSize(zigZag(delta.uploaded)) }
    if delta.downloaded != 0 { size += 1 + varintSize(zigZag(delta.downloaded)) }
    if delta.event != .none { size += 2 }
    if delta.reportedAtMilliseconds != 0 {
      size += 1 + varintSize(UInt64(bitPattern: delta.reportedAtMilliseconds))
    }
    if delta.seeding { size += 2 }
    if delta.intervalSeconds != 0 { size += 1 + varintSize(UInt64(delta.intervalSeconds)) }
    if delta.reset { size += 2 }
    if delta.origin.instance != 0 { size += 9 }
    if delta.origin.sequence != 0 { size += 1 + varintSize(delta.origin.sequence) }
    if let clientIP = delta.clientIP { size += clientIP.isIPv6 ? 18 : 6 }
    if delta.peerID != nil { size += 22 }
    if delta.factors.uploadPercent != 100 {
      size += 1 + varintSize(UInt64(delta.factors.uploadPercent))
    }
    if delta.factors.downloadPercent != 100 {
      size += 1 + varintSize(UInt64(delta.factors.downloadPercent))
    }
    return size
  }

  /// Appends `delta` as a `Delta` message.
  static func append(_ delta: Delta, to buffer: inout [UInt8]) {
    buffer.append(userIDKey)
    buffer.append(16)
    delta.userID.append(to: &buffer)
    buffer.append(infoHashKey)
    buffer.append(20)
    delta.infoHash.raw.append(to: &buffer)
    if delta.uploaded != 0 {
      buffer.append(uploadedKey)
      appendVarint(zigZag(delta.uploaded), to: &buffer)
    }
    if delta.downloaded != 0 {
      buffer.append(downloadedKey)
      appendVarint(zigZag(delta.downloaded), to: &buffer)
    }
    if delta.event != .none {
      buffer.append(eventKey)
      buffer.append(UInt8(Privtrak_V1_Delta.Event(delta.event).rawValue))
    }
    if delta.reportedAtMilliseconds != 0 {
      buffer.append(reportedAtKey)
      appendVarint(UInt64(bitPattern: delta.reportedAtMilliseconds), to: &buffer)
    }
    if delta.seeding {
      buffer.append(seedingKey)
      buffer.append(1)
    }
    if delta.intervalSeconds != 0 {
      buffer.append(intervalKey)
      appendVarint(UInt64(delta.intervalSeconds), to: &buffer)
    }
    if delta.reset {
      buffer.append(resetKey)
      buffer.append(1)
    }
    if delta.origin.instance != 0 {
      buffer.append(instanceKey)
      appendLittleEndian(delta.origin.instance, to: &buffer)
    }
    if delta.origin.sequence != 0 {
      buffer.append(sequenceKey)
      appendVarint(delta.origin.sequence, to: &buffer)
    }
    if let clientIP = delta.clientIP {
      buffer.append(clientIPKey)
      buffer.append(clientIP.isIPv6 ? 16 : 4)
      clientIP.append(to: &buffer)
    }
    if let peerID = delta.peerID {
      buffer.append(peerIDKey)
      buffer.append(20)
      peerID.raw.append(to: &buffer)
    }
    if delta.factors.uploadPercent != 100 {
      buffer.append(uploadFactorKey)
      appendVarint(UInt64(delta.factors.uploadPercent), to: &buffer)
    }
    if delta.factors.downloadPercent != 100 {
      buffer.append(downloadFactorKey)
      appendVarint(UInt64(delta.factors.downloadPercent), to: &buffer)
    }
  }

  /// Appends `batch` as a `DeltaBatch` message with `metadata`.
  static func append(_ batch: DeltaBatch, metadata: DeltaBatchMetadata, to buffer: inout [UInt8]) {
    for delta in batch.deltas {
      buffer.append(batchDeltasKey)
      appendVarint(UInt64(encodedSize(of: delta)), to: &buffer)
      append(delta, to: &buffer)
    }
    if let producer = metadata.producerInstance, producer != 0 {
      buffer.append(batchProducerKey)
      appendLittleEndian(producer, to: &buffer)
    }
    if let sealedAt = metadata.sealedAtMilliseconds, sealedAt != 0 {
      buffer.append(batchSealedAtKey)
      appendVarint(UInt64(bitPattern: sealedAt), to: &buffer)
    }
  }

  private static func zigZag(_ value: Int64) -> UInt64 {
    UInt64(bitPattern: (value << 1) ^ (value >> 63))
  }

  private static func varintSize(_ value: UInt64) -> Int {
    // 7 bits per byte; 0 still takes one byte.
    (64 - (value | 1).leadingZeroBitCount + 6) / 7
  }

  private static func appendVarint(_ value: UInt64, to buffer: inout [UInt8]) {
    var value = value
    while value >= 0x80 {
      buffer.append(UInt8(truncatingIfNeeded: value) | 0x80)
      value >>= 7
    }
    buffer.append(UInt8(value))
  }

  private static func appendLittleEndian(_ value: UInt64, to buffer: inout [UInt8]) {
    for shift in stride(from: 0, through: 56, by: 8) {
      buffer.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
    }
  }
}
