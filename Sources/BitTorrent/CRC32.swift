/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) — the zlib/PNG
/// checksum: snapshot files can be checked with common tools, and the shard
/// function (``TrackerShard``) is one that proxies and site code (HAProxy's
/// `crc32`, PHP's `crc32`) compute too.
public struct CRC32: Sendable {
  private static let engine = SlicingBy8CRC(reflectedPolynomial: 0xEDB8_8320)

  private var state: UInt32 = 0xFFFF_FFFF

  /// Starts an empty checksum.
  public init() {}

  /// Feeds bytes.
  public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    state = Self.engine.update(state, with: bytes)
  }

  /// Feeds bytes.
  public mutating func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { update($0) }
  }

  /// The checksum of everything fed so far.
  public var value: UInt32 { state ^ 0xFFFF_FFFF }
}
