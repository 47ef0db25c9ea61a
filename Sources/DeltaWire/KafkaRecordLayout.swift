import BitTorrent
import DeltaModel

/// How deltas map onto Kafka records.
public enum RecordFraming: String, Sendable, Hashable, CaseIterable {
  /// One record per delta, keyed by user id: per-user order within a
  /// partition, and users spread over all partitions. The default.
  case perDelta = "per-delta"
  /// One record per batch (a `privtrak.v1.DeltaBatch`), keyed by the
  /// producer instance: fewer, larger records; every batch of one tracker
  /// process lands in one partition in order, which keeps per-user order too.
  case perBatch = "per-batch"
}

/// One Kafka record header.
public struct KafkaRecordHeader: Sendable, Hashable {
  /// Header name.
  public var name: String
  /// Header value bytes.
  public var value: [UInt8]

  /// Creates a header.
  public init(name: String, value: [UInt8]) {
    self.name = name
    self.value = value
  }
}

/// A Kafka record ready to produce: key, value, headers.
public struct KafkaRecord: Sendable, Hashable {
  /// Partitioning key.
  public var key: [UInt8]
  /// Payload: a `privtrak.v1.Delta` or `privtrak.v1.DeltaBatch`.
  public var value: [UInt8]
  /// `privtrak-type` and `privtrak-schema`.
  public var headers: [KafkaRecordHeader]

  /// Creates a record.
  public init(key: [UInt8], value: [UInt8], headers: [KafkaRecordHeader]) {
    self.key = key
    self.value = value
    self.headers = headers
  }
}

/// The Kafka record layout of the `privtrak.v1` schema (see schemas/README.md):
///
/// | framing | key | value | `privtrak-type` |
/// |---|---|---|---|
/// | per-delta | user_id (16 bytes) | `Delta` | none, or `privtrak.v1.Delta` |
/// | per-batch | producer instance (8 bytes, big-endian) | `DeltaBatch` | `privtrak.v1.DeltaBatch` |
///
/// A record with headers carries both `privtrak-type` and `privtrak-schema`
/// = `1`. Per-delta records carry none unless asked (`withDeltaHeaders`):
/// two headers cost librdkafka more per record than the rest of the record
/// (BENCHMARKS.md), and a record without them is by definition a
/// `privtrak.v1.Delta` keyed by its user id.
public enum KafkaRecordLayout {
  /// Header naming the protobuf message in the value.
  public static let typeHeaderName = "privtrak-type"
  /// Header naming the schema major version.
  public static let schemaHeaderName = "privtrak-schema"
  /// The schema major version these helpers write and read.
  public static let schemaVersion = "1"
  /// `privtrak-type` of a per-delta record.
  public static let deltaTypeName = Privtrak_V1_Delta.protoMessageName
  /// `privtrak-type` of a per-batch record.
  public static let batchTypeName = Privtrak_V1_DeltaBatch.protoMessageName

  private static let deltaHeaders = headers(typeName: deltaTypeName)
  private static let batchHeaders = headers(typeName: batchTypeName)

  /// The headers every record of `framing` carries: per-batch records
  /// always both; per-delta records both when `withDeltaHeaders`, else none.
  public static func headers(for framing: RecordFraming, withDeltaHeaders: Bool = false)
    -> [KafkaRecordHeader]
  {
    switch framing {
    case .perDelta: withDeltaHeaders ? deltaHeaders : []
    case .perBatch: batchHeaders
    }
  }

  /// Appends the key of `delta`'s per-delta record (its 16-byte user id)
  /// to `buffer`: `record(for:).key` without an array of its own.
  public static func appendKey(for delta: Delta, to buffer: inout [UInt8]) {
    delta.userID.append(to: &buffer)
  }

  /// The per-delta record of one delta, with the headers when `withDeltaHeaders`.
  public static func record(for delta: Delta, withDeltaHeaders: Bool = false) -> KafkaRecord {
    KafkaRecord(
      key: delta.userID.bytes, value: DeltaCodec.encode(delta),
      headers: withDeltaHeaders ? deltaHeaders : [])
  }

  /// The records of a batch in the given framing: one per delta in order
  /// (with headers when `withDeltaHeaders`), or a single batch record. An
  /// empty batch has no records.
  public static func records(
    for batch: DeltaBatch, framing: RecordFraming, sealedAtMilliseconds: Int64? = nil,
    withDeltaHeaders: Bool = false
  ) -> [KafkaRecord] {
    guard !batch.deltas.isEmpty else { return [] }
    switch framing {
    case .perDelta:
      return batch.deltas.map { record(for: $0, withDeltaHeaders: withDeltaHeaders) }
    case .perBatch:
      let metadata = DeltaBatchMetadata(deriving: batch, sealedAtMilliseconds: sealedAtMilliseconds)
      return [
        KafkaRecord(
          key: batchKey(for: batch),
          value: DeltaCodec.encode(batch, metadata: metadata),
          headers: batchHeaders
        )
      ]
    }
  }

  /// The key of a per-batch record: the first delta's instance as 8
  /// big-endian bytes (every delta of a batch comes from one instance), so
  /// one tracker process's batches stay in one partition, in order.
  public static func batchKey(for batch: DeltaBatch) -> [UInt8] {
    let instance = batch.deltas.first?.origin.instance ?? 0
    return (0..<8).map { UInt8(truncatingIfNeeded: instance >> UInt64(56 - 8 * $0)) }
  }

  /// The deltas of a record of either framing: chosen by its
  /// `privtrak-type` header, or, for a record with neither privtrak header,
  /// a per-delta record's `Delta` (whose user id must equal `key` when the
  /// key is given).
  /// - Throws: `DeltaWireError` for a lone or unknown header, another schema
  ///   version or type, an invalid value, or a headerless record keyed by
  ///   another user (`keyMismatch`).
  public static func decode(
    key: [UInt8]? = nil, value: [UInt8], headers: [KafkaRecordHeader]
  ) throws(DeltaWireError) -> [Delta] {
    let schema = headers.last(where: { $0.name == schemaHeaderName })
    let type = headers.last(where: { $0.name == typeHeaderName })
    if schema == nil, type == nil {
      let delta = try DeltaCodec.decodeDelta(value)
      if let key, UserID(key) != delta.userID { throw .keyMismatch }
      return [delta]
    }
    guard let schema else { throw .missingHeader(name: schemaHeaderName) }
    let version = String(decoding: schema.value, as: UTF8.self)
    guard version == schemaVersion else { throw .unsupportedSchema(version: version) }
    guard let type else { throw .missingHeader(name: typeHeaderName) }
    switch String(decoding: type.value, as: UTF8.self) {
    case deltaTypeName: return [try DeltaCodec.decodeDelta(value)]
    case batchTypeName: return try DeltaCodec.decodeBatch(value).deltas
    case let other: throw .unsupportedType(name: other)
    }
  }

  private static func headers(typeName: String) -> [KafkaRecordHeader] {
    [
      KafkaRecordHeader(name: typeHeaderName, value: Array(typeName.utf8)),
      KafkaRecordHeader(name: schemaHeaderName, value: Array(schemaVersion.utf8)),
    ]
  }
}
