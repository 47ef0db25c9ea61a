/// A reflected 32-bit CRC computed eight bytes per step ("slicing-by-8"):
/// table k maps a byte to its remainder k bytes further on, so eight input
/// bytes take eight independent lookups and one dependent step. The engine
/// behind ``CRC32`` (zlib's polynomial) and the delta log's CRC-32C; each
/// keeps its own initial value and final xor.
package struct SlicingBy8CRC: Sendable {
  /// 8 tables of 256 entries, flattened: entry `k * 256 + i`.
  private let tables: [UInt32]

  /// The tables for `reflectedPolynomial` (e.g. 0xEDB88320 for CRC-32).
  package init(reflectedPolynomial: UInt32) {
    var tables = [UInt32](repeating: 0, count: 8 * 256)
    for index in 0..<256 {
      var crc = UInt32(index)
      for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ reflectedPolynomial : crc >> 1 }
      tables[index] = crc
    }
    for slice in 1..<8 {
      for index in 0..<256 {
        let previous = tables[(slice - 1) * 256 + index]
        tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xff)]
      }
    }
    self.tables = tables
  }

  /// The register after feeding `bytes` to a register holding `crc` (no
  /// initial value or final xor applied here).
  package func update(_ crc: UInt32, with bytes: UnsafeRawBufferPointer) -> UInt32 {
    tables.withUnsafeBufferPointer { table in
      var crc = crc
      var index = 0
      let count = bytes.count
      while count - index >= 8 {
        let low =
          crc
          ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8
            | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24)
        crc =
          table[7 * 256 + Int(low & 0xff)] ^ table[6 * 256 + Int(low >> 8 & 0xff)]
          ^ table[5 * 256 + Int(low >> 16 & 0xff)] ^ table[4 * 256 + Int(low >> 24)]
          ^ table[3 * 256 + Int(bytes[index + 4])] ^ table[2 * 256 + Int(bytes[index + 5])]
          ^ table[256 + Int(bytes[index + 6])] ^ table[Int(bytes[index + 7])]
        index += 8
      }
      while index < count {
        crc = table[Int((crc ^ UInt32(bytes[index])) & 0xff)] ^ (crc >> 8)
        index += 1
      }
      return crc
    }
  }
}
