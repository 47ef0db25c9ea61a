import BitTorrent
import Testing

/// Byte access and prefix tests on a 20-byte id, which client rules use on
/// every announce instead of building the byte array.
@Suite struct Bytes20PrefixTests {
  static let bytes = Array("-TR3000-abcdefghijkl".utf8)

  @Test func everyByteReadsBackInOrder() throws {
    let value = try #require(Bytes20(Self.bytes))
    #expect((0..<20).map { value[byte: $0] } == Self.bytes)
  }

  @Test(arguments: 0...20)
  func everyPrefixLengthMatchesAndAChangedByteDoesNot(length: Int) throws {
    let value = try #require(Bytes20(Self.bytes))
    let prefix = Array(Self.bytes.prefix(length))
    #expect(value.starts(with: prefix))
    if length > 0 {
      var changed = prefix
      changed[length - 1] ^= 0x01
      #expect(!value.starts(with: changed))
    }
    #expect(!value.starts(with: Self.bytes + [0]))
  }
}
