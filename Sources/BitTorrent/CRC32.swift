/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) — the zlib/PNG
/// checksum: snapshot files can be checked with common tools, and the shard
/// function (``TrackerShard``) is one that proxies and site code (HAProxy's
/// `crc32`, PHP's `crc32`) compute too.
public struct CRC32: Sendable {
  /// Slicing-by-8 tables, 8 × 256 entries: table k maps a byte to its
  /// remainder k bytes further on, so eight input bytes take eight lookups
  /// and one dependent step instead of eight (the commit journal checksums
  /// every committed delta's entry on the tracker's core).
  private static let tables: [UInt32] = {
    var tables = [UInt32](repeating: 0, count: 8 * 256)
    for index in 0..<256 {
      var value = UInt32(index)
      for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
      tables[index] = value
    }
    for slice in 1..<8 {
      for index in 0..<256 {
        let previous = tables[(slice - 1) * 256 + index]
        tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xff)]
      }
    }
    return tables
  }()

  private var state: UInt32 = 0xFFFF_FFFF

  /// Starts an empty checksum.
  public init() {}

  /// Feeds bytes.
  public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    var crc = state
    Self.tables.withUnsafeBufferPointer { table in
      var index = 0
      let count = bytes.count
      while count - index >= 8 {
        let low =
          crc
          ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8
            | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24)
        let high =
          UInt32(bytes[index + 4]) | UInt32(bytes[index + 5]) << 8
          | UInt32(bytes[index + 6]) << 16 | UInt32(bytes[index + 7]) << 24
        crc =
          table[7 * 256 + Int(low & 0xff)] ^ table[6 * 256 + Int(low >> 8 & 0xff)]
          ^ table[5 * 256 + Int(low >> 16 & 0xff)] ^ table[4 * 256 + Int(low >> 24)]
          ^ table[3 * 256 + Int(high & 0xff)] ^ table[2 * 256 + Int(high >> 8 & 0xff)]
          ^ table[256 + Int(high >> 16 & 0xff)] ^ table[Int(high >> 24)]
        index += 8
      }
      while index < count {
        crc = table[Int((crc ^ UInt32(bytes[index])) & 0xff)] ^ (crc >> 8)
        index += 1
      }
    }
    state = crc
  }

  /// Feeds bytes.
  public mutating func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { update($0) }
  }

  /// The checksum of everything fed so far.
  public var value: UInt32 { state ^ 0xFFFF_FFFF }
}
