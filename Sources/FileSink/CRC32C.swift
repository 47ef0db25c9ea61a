/// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, initial value and
/// final xor 0xFFFFFFFF), the record checksum of the delta log. Chosen over
/// CRC-32 (zlib) for its better error detection on storage-sized records;
/// computed in software, slicing eight bytes per step.
enum CRC32C {
  /// 8 tables of 256 entries, flattened: entry `k * 256 + i`.
  private static let tables: [UInt32] = {
    var tables = [UInt32](repeating: 0, count: 8 * 256)
    for index in 0..<256 {
      var crc = UInt32(index)
      for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
      tables[index] = crc
    }
    for slice in 1..<8 {
      for index in 0..<256 {
        let previous = tables[(slice - 1) * 256 + index]
        tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xff)]
      }
    }
    return tables
  }()

  /// The checksum of `bytes`.
  static func checksum(_ bytes: some ContiguousBytes) -> UInt32 {
    bytes.withUnsafeBytes { checksum($0) }
  }

  /// The checksum of the bytes in `buffer`.
  static func checksum(_ buffer: UnsafeRawBufferPointer) -> UInt32 {
    tables.withUnsafeBufferPointer { table in
      var crc: UInt32 = 0xffff_ffff
      var index = 0
      let count = buffer.count
      while count - index >= 8 {
        let low =
          crc
          ^ (UInt32(buffer[index]) | UInt32(buffer[index + 1]) << 8 | UInt32(buffer[index + 2])
            << 16
            | UInt32(buffer[index + 3]) << 24)
        crc =
          table[7 * 256 + Int(low & 0xff)] ^ table[6 * 256 + Int(low >> 8 & 0xff)]
          ^ table[5 * 256 + Int(low >> 16 & 0xff)] ^ table[4 * 256 + Int(low >> 24)]
          ^ table[3 * 256 + Int(buffer[index + 4])] ^ table[2 * 256 + Int(buffer[index + 5])]
          ^ table[1 * 256 + Int(buffer[index + 6])] ^ table[Int(buffer[index + 7])]
        index += 8
      }
      while index < count {
        crc = table[Int((crc ^ UInt32(buffer[index])) & 0xff)] ^ (crc >> 8)
        index += 1
      }
      return crc ^ 0xffff_ffff
    }
  }
}

/// Byte containers whose storage can be read in place.
protocol ContiguousBytes {
  func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result
}

extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
