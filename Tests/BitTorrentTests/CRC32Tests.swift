import BitTorrent
import Testing

/// CRC32 reads eight bytes per step; it must equal the one-byte-at-a-time
/// definition for every length, alignment and split of the input.
@Suite struct CRC32Tests {
  /// The textbook bitwise CRC-32 (reflected, 0xEDB88320), the reference.
  static func reference(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
      crc ^= UInt32(byte)
      for _ in 0..<8 { crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
    }
    return crc ^ 0xFFFF_FFFF
  }

  @Test func everyLengthAndOffsetMatchesTheBitwiseDefinition() {
    // A fixed, irregular byte pattern, so a failure reproduces.
    let data = (0..<300).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
    for offset in 0..<9 {
      for length in 0..<(data.count - offset) {
        let slice = Array(data[offset..<offset + length])
        var checksum = CRC32()
        data.withUnsafeBytes {
          checksum.update(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + length]))
        }
        #expect(checksum.value == Self.reference(slice), "offset \(offset), length \(length)")
      }
    }
  }

  @Test func feedingInPiecesEqualsFeedingAtOnce() {
    let data = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
    for split in 0...data.count {
      var pieces = CRC32()
      pieces.update(Array(data[..<split]))
      pieces.update(Array(data[split...]))
      #expect(pieces.value == Self.reference(data), "split at \(split)")
    }
  }
}
