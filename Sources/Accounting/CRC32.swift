/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) — the zlib/PNG
/// checksum, so snapshot files can be checked with common tools.
struct CRC32 {
  private static let table: [UInt32] = (0..<256).map { index in
    var value = UInt32(index)
    for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
    return value
  }

  private var state: UInt32 = 0xFFFF_FFFF

  /// Starts an empty checksum.
  init() {}

  /// Feeds bytes.
  mutating func update(_ bytes: UnsafeRawBufferPointer) {
    var crc = state
    Self.table.withUnsafeBufferPointer { table in
      for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
    }
    state = crc
  }

  /// Feeds bytes.
  mutating func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { update($0) }
  }

  /// The checksum of everything fed so far.
  var value: UInt32 { state ^ 0xFFFF_FFFF }
}
