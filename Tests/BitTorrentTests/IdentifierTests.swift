import Testing

@testable import BitTorrent

@Suite struct IdentifierTests {
  @Test func infoHashRoundTripsBytesAndHex() {
    let bytes = (0..<20).map { UInt8($0 * 13 & 0xff) }
    let hash = InfoHash(bytes)
    #expect(hash?.bytes == bytes)
    #expect(InfoHash(hex: hash!.description) == hash)
    #expect(InfoHash(Array(bytes.prefix(19))) == nil)
    #expect(InfoHash(hex: "zz" + String(repeating: "0", count: 38)) == nil)
  }

  @Test func userIDParsesPasskeyAndRedacts() {
    let passkey = "0123456789abcdefFEDCBA9876543210"
    let user = UserID(hex: passkey)
    #expect(user?.hex == passkey.lowercased())
    #expect(user?.bytes.count == 16)
    #expect(user?.description == "0123…")
    #expect(UserID(hex: String(passkey.dropLast())) == nil)
    #expect(UserID(hex: passkey + "00") == nil)
  }

  // Rendered forms are RFC 5952 (section 4): lower case, no leading zeros,
  // the longest run of two or more zero groups compressed (the first of equal
  // runs), a single zero group left alone.
  @Test(arguments: [
    ("127.0.0.1", "127.0.0.1", false),
    ("::1", "::1", true),
    ("2001:db8::8a2e:370:7334", "2001:db8::8a2e:370:7334", true),
    ("::ffff:192.0.2.1", "192.0.2.1", false),
    ("fe80::", "fe80::", true),
    ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1", true),
    ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", true),
    ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", true),
    ("2001:db8:0:0:0:1:0:0", "2001:db8::1:0:0", true),
    ("::", "::", true),
  ])
  func parsesAddresses(text: String, rendered: String, isIPv6: Bool) {
    let address = IPAddress(text)
    #expect(address?.description == rendered)
    #expect(address?.isIPv6 == isIPv6)
    #expect(address.map { IPAddress(bytes: $0.bytes) } == address)
  }

  @Test(arguments: [
    "", "1.2.3", "1.2.3.256", "01.2.3.4a", "1::2::3", "12345::", ":::", "1:2:3:4:5:6:7:8:9",
    "[::1]", "+1::", "1::+2", "::-1", "::1%eth0", " ::1", "::1\u{0}", "::1.2.3.4.5",
    "2001:db8::00001",
  ])
  func rejectsBadAddresses(text: String) {
    #expect(IPAddress(text) == nil)
  }
}
