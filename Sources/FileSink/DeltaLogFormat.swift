/// The file format FileSink writes and FileDeltaReader reads (version 1):
///
///     header  "PTDL" | u32 version = 1                  8 bytes
///     record  u32 length | u32 crc32c(payload) | payload   8 + length bytes
///     record  ...
///
/// Integers are little-endian. `payload` is one `privtrak.v1.DeltaBatch`
/// (`producer_instance` set, `sealed_at_ms` 0), never empty: length is
/// 1...`maxRecordBytes`. The checksum is CRC-32C (Castagnoli). Records are
/// only ever appended; a partial last record (a torn write) is cut off when a
/// FileSink opens the file.
public enum DeltaLogFormat {
  /// The four bytes every delta log starts with.
  public static let magic: [UInt8] = Array("PTDL".utf8)
  /// The format version this code writes and reads.
  public static let version: UInt32 = 1
  /// Size of the file header.
  public static let fileHeaderSize = 8
  /// Size of the length + checksum in front of each payload.
  public static let recordHeaderSize = 8
  /// Default largest payload accepted (a bound on corrupt length fields; a
  /// batch of 100 000 deltas is about 8 MB).
  public static let defaultMaxRecordBytes = 64 << 20

  /// The file header bytes.
  static var fileHeader: [UInt8] { magic + littleEndian(version) }

  /// A complete record (length, checksum, payload) for `payload`.
  static func record(payload: [UInt8]) -> [UInt8] {
    var record: [UInt8] = []
    record.reserveCapacity(recordHeaderSize + payload.count)
    record += littleEndian(UInt32(payload.count))
    record += littleEndian(CRC32C.checksum(payload))
    record += payload
    return record
  }

  static func littleEndian(_ value: UInt32) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value >> UInt32(8 * $0)) }
  }

  static func readLittleEndian(_ bytes: ArraySlice<UInt8>, at index: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 | UInt32(bytes[index + $1]) << UInt32(8 * $1) }
  }
}
