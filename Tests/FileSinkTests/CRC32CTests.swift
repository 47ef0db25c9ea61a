import Testing

@testable import FileSink

/// The bit-at-a-time definition of CRC-32C, to check the sliced one against.
enum ReferenceCRC32C {
  static func checksum(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for byte in bytes {
      crc ^= UInt32(byte)
      for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return crc ^ 0xffff_ffff
  }
}

@Suite struct CRC32CTests {
  @Test func knownAnswers() {
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    #expect(CRC32C.checksum([UInt8]()) == 0)
    // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xff.
    #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    #expect(CRC32C.checksum([UInt8](repeating: 0xff, count: 32)) == 0x62A8_AB43)
  }

  @Test func slicedEqualsBitwiseForEveryLengthAndAlignment() {
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }
    for start in 0..<9 {
      for end in stride(from: start, through: bytes.count, by: 7) {
        let slice = bytes[start..<end]
        #expect(CRC32C.checksum(slice) == ReferenceCRC32C.checksum(Array(slice)))
      }
    }
  }
}
