import DeltaModel
import SwiftProtobuf

/// Binary encoding of deltas and batches in the `privtrak.v1` wire schema
/// (`schemas/privtrak/v1/delta.proto`).
public enum DeltaCodec {
  /// The protobuf encoding of one `privtrak.v1.Delta`.
  public static func encode(_ delta: Delta) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(DeltaProtobufWriter.encodedSize(of: delta))
    DeltaProtobufWriter.append(delta, to: &bytes)
    return bytes
  }

  /// Appends the protobuf encoding of one `privtrak.v1.Delta` to `buffer`
  /// (what `encode(_:)` returns, without an array of its own).
  public static func append(_ delta: Delta, to buffer: inout [UInt8]) {
    DeltaProtobufWriter.append(delta, to: &buffer)
  }

  /// The protobuf encoding of one `privtrak.v1.DeltaBatch`, with metadata
  /// derived from the deltas (common producer instance) and the optional seal time.
  public static func encode(_ batch: DeltaBatch, sealedAtMilliseconds: Int64? = nil) -> [UInt8] {
    encode(
      batch,
      metadata: DeltaBatchMetadata(deriving: batch, sealedAtMilliseconds: sealedAtMilliseconds))
  }

  /// The protobuf encoding of one `privtrak.v1.DeltaBatch` with explicit metadata.
  public static func encode(_ batch: DeltaBatch, metadata: DeltaBatchMetadata) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(batch.estimatedSize)
    DeltaProtobufWriter.append(batch, metadata: metadata, to: &bytes)
    return bytes
  }

  /// Decodes one `privtrak.v1.Delta`.
  /// - Throws: `DeltaWireError` when the bytes are not a valid delta.
  public static func decodeDelta<Bytes: SwiftProtobufContiguousBytes>(_ bytes: Bytes)
    throws(DeltaWireError) -> Delta
  {
    let message: Privtrak_V1_Delta
    do {
      message = try Privtrak_V1_Delta(serializedBytes: bytes)
    } catch {
      throw .malformed(message: Privtrak_V1_Delta.protoMessageName, reason: "\(error)")
    }
    return try Delta(wire: message)
  }

  /// Decodes one `privtrak.v1.DeltaBatch`, dropping its metadata.
  /// - Throws: `DeltaWireError` when the bytes are not a valid batch.
  public static func decodeBatch<Bytes: SwiftProtobufContiguousBytes>(_ bytes: Bytes)
    throws(DeltaWireError) -> DeltaBatch
  {
    try decodeBatchWithMetadata(bytes).batch
  }

  /// Decodes one `privtrak.v1.DeltaBatch` and its metadata.
  /// - Throws: `DeltaWireError` when the bytes are not a valid batch.
  public static func decodeBatchWithMetadata<Bytes: SwiftProtobufContiguousBytes>(
    _ bytes: Bytes
  ) throws(DeltaWireError) -> (batch: DeltaBatch, metadata: DeltaBatchMetadata) {
    let message: Privtrak_V1_DeltaBatch
    do {
      message = try Privtrak_V1_DeltaBatch(serializedBytes: bytes)
    } catch {
      throw .malformed(message: Privtrak_V1_DeltaBatch.protoMessageName, reason: "\(error)")
    }
    return (try DeltaBatch(wire: message), DeltaBatchMetadata(wire: message))
  }
}
