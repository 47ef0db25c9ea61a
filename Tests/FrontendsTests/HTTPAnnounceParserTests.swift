import BitTorrent
import Frontends
import PrivtrakTestSupport
import Testing
import Tracker

@Suite("HTTPAnnounceParser")
struct HTTPAnnounceParserTests {
  let parser = HTTPAnnounceParser()
  let client = IPAddress("198.51.100.7")!
  let infoHash = makeInfoHash(0xf0)
  let peerID = makePeerID(42)

  func announce(_ target: String, parser: HTTPAnnounceParser? = nil) -> AnnounceRequest? {
    guard
      case .announce(let request) = (parser ?? self.parser).parse(
        target: target, clientAddress: client)
    else {
      return nil
    }
    return request
  }

  func failure(_ target: String) -> String? {
    guard case .failure(let failure) = parser.parse(target: target, clientAddress: client) else {
      return nil
    }
    return failure.reason
  }

  func isNotFound(_ target: String) -> Bool {
    if case .notFound = parser.parse(target: target, clientAddress: client) { return true }
    return false
  }

  @Test func decodesAWellFormedAnnounce() throws {
    let query = announceQuery(
      infoHash: infoHash, peerID: peerID, port: 51413, left: 1234, event: "started",
      extra: [("uploaded", "77"), ("downloaded", "88"), ("numwant", "30"), ("key", "1A2B3C4D")])
    let request = try #require(announce("/announce?" + query))
    #expect(request.infoHash == infoHash)
    #expect(request.peerID == peerID)
    #expect(request.endpoint == PeerEndpoint(address: client, port: 51413))
    #expect(request.uploaded == 77)
    #expect(request.downloaded == 88)
    #expect(request.left == 1234)
    #expect(request.event == .started)
    #expect(request.numWant == 30)
    #expect(request.compact)
    #expect(!request.noPeerID)
    #expect(request.key == 0x1A2B_3C4D)
    #expect(request.passkey == nil)
    #expect(request.transport == .http)
  }

  @Test func takesThePasskeyFromEitherPathForm() throws {
    let query = announceQuery(infoHash: infoHash, peerID: peerID, port: 1, left: 0)
    let prefixed = try #require(announce("/0123456789abcdef0123456789abcdef/announce?" + query))
    #expect(prefixed.passkey == "0123456789abcdef0123456789abcdef")
    let suffixed = try #require(announce("/announce/deadbeef?" + query))
    #expect(suffixed.passkey == "deadbeef")
  }

  @Test func appliesLenientDefaults() throws {
    let query = announceQuery(
      infoHash: infoHash, peerID: peerID, port: 6881, left: 5,
      extra: [("compact", nil), ("numwant", ""), ("key", "not-hex-at-all"), ("no_peer_id", "1")])
    let request = try #require(announce("/announce?" + query))
    #expect(request.compact, "compact absent means compact")
    #expect(request.numWant == -1, "empty numwant means default")
    #expect(request.noPeerID)
    // Arbitrary text keys hash (FNV-1a; see readsKeysAsHexThenDecimalThenFNV1a).
    #expect(request.key == 0x1f53_55ca)
    let listQuery = announceQuery(
      infoHash: infoHash, peerID: peerID, port: 6881, left: 5, extra: [("compact", "0")])
    #expect(try #require(announce("/announce?" + listQuery)).compact == false)
  }

  /// The FNV-1a values come from outside the code under test: "foobar" is a
  /// published FNV-1a 32-bit test vector (test_fnv.c of the FNV reference
  /// implementation); the others were computed with an independent Python
  /// implementation (h = 0x811c9dc5, then h = (h ^ byte) * 0x01000193 mod 2^32).
  @Test func readsKeysAsHexThenDecimalThenFNV1a() throws {
    func key(_ value: String) -> UInt32? {
      announce(
        "/announce?"
          + announceQuery(
            infoHash: infoHash, peerID: peerID, port: 1, left: 0, extra: [("key", value)]))?.key
    }
    #expect(key("ff") == 0xff)
    #expect(key("DEADBEEF") == 0xdead_beef)
    #expect(key("4294967295") == 4_294_967_295)
    #expect(key("123456789") == 123_456_789)
    #expect(key("") == nil)
    #expect(key("foobar") == 0xbf9c_f968)
    #expect(key("not-hex-at-all") == 0x1f53_55ca)
    // Decimal beyond 32 bits, and 9 hex digits, are hashed too.
    #expect(key("4294967296") == 0xa5d2_f78f)
    #expect(key("123456789a") == 0xb209_67c7)
  }

  @Test func passesNumwantThroughSaturating() throws {
    func numWant(_ value: String) -> Int? {
      announce(
        "/announce?"
          + announceQuery(
            infoHash: infoHash, peerID: peerID, port: 1, left: 0, extra: [("numwant", value)]))?
        .numWant
    }
    #expect(numWant("-1") == -1)
    #expect(numWant("0") == 0)
    #expect(numWant("99999999999999999999999") == Int.max)
    #expect(numWant("-99999999999999999999999") == Int.min)
  }

  @Test func firstOccurrenceWinsAndUnknownParametersAreIgnored() throws {
    let query =
      announceQuery(infoHash: infoHash, peerID: peerID, port: 100, left: 0)
      + "&port=200&supportcrypto=1&corrupt=0"
    #expect(try #require(announce("/announce?" + query)).endpoint.port == 100)
  }

  @Test func percentDecodingHandlesPlusAndBinary() throws {
    // 0x20 encoded as '+' must decode like %20.
    let bytes: [UInt8] = [0x20] + Array(repeating: 0x41, count: 19)
    let encoded = "+" + String(repeating: "A", count: 19)
    let query =
      "info_hash=\(encoded)&" + announceQuery(infoHash: infoHash, peerID: peerID, port: 1, left: 0)
    #expect(try #require(announce("/announce?" + query)).infoHash == InfoHash(bytes)!)
  }

  @Test func clientSuppliedIPOnlyWhenAllowed() throws {
    let query = announceQuery(
      infoHash: infoHash, peerID: peerID, port: 1, left: 0, extra: [("ip", "203.0.113.5")])
    #expect(try #require(announce("/announce?" + query)).endpoint.address == client)
    let permissive = HTTPAnnounceParser(acceptClientSuppliedIP: true)
    #expect(
      try #require(announce("/announce?" + query, parser: permissive)).endpoint.address
        == IPAddress("203.0.113.5"))
    let v6 = announceQuery(
      infoHash: infoHash, peerID: peerID, port: 1, left: 0, extra: [("ipv6", "2001%3Adb8%3A%3A1")])
    #expect(
      try #require(announce("/announce?" + v6, parser: permissive)).endpoint.address
        == IPAddress("2001:db8::1"))
    let garbage = announceQuery(
      infoHash: infoHash, peerID: peerID, port: 1, left: 0, extra: [("ip", "nope")])
    guard
      case .failure(let failure) = permissive.parse(
        target: "/announce?" + garbage, clientAddress: client)
    else {
      Issue.record("garbage ip accepted")
      return
    }
    #expect(failure.reason == "invalid ip: not an IP address")
  }

  static let badAnnounces: [(String, [(String, String?)], String)] = [
    ("missing info_hash", [("info_hash", nil)], "missing info_hash"),
    ("short info_hash", [("info_hash", "abc")], "invalid info_hash: must be 20 bytes"),
    (
      "long info_hash", [("info_hash", String(repeating: "a", count: 21))],
      "invalid info_hash: must be 20 bytes"
    ),
    (
      "info_hash bad escape", [("info_hash", String(repeating: "a", count: 19) + "%g1")],
      "invalid info_hash: bad percent-encoding"
    ),
    (
      "info_hash truncated escape", [("info_hash", String(repeating: "a", count: 19) + "%4")],
      "invalid info_hash: bad percent-encoding"
    ),
    ("missing peer_id", [("peer_id", nil)], "missing peer_id"),
    ("short peer_id", [("peer_id", "-TS0001-")], "invalid peer_id: must be 20 bytes"),
    ("missing port", [("port", nil)], "missing port"),
    ("port zero", [("port", "0")], "invalid port: 0"),
    ("port too large", [("port", "65536")], "invalid port: out of range"),
    ("port text", [("port", "http")], "invalid port: not a number"),
    ("port empty", [("port", "")], "invalid port: not a number"),
    ("missing uploaded", [("uploaded", nil)], "missing uploaded"),
    ("negative uploaded", [("uploaded", "-5")], "invalid uploaded: not a non-negative integer"),
    ("uploaded text", [("uploaded", "12ab")], "invalid uploaded: not a non-negative integer"),
    ("uploaded huge", [("uploaded", "9223372036854775808")], "invalid uploaded: too large"),
    ("missing downloaded", [("downloaded", nil)], "missing downloaded"),
    (
      "negative downloaded", [("downloaded", "-1")],
      "invalid downloaded: not a non-negative integer"
    ),
    ("missing left", [("left", nil)], "missing left"),
    ("negative left", [("left", "-1")], "invalid left: not a non-negative integer"),
    ("unknown event", [("event", "foo")], "unknown event: foo"),
    ("unknown event is sanitized", [("event", "a%00b%0Ac")], "unknown event: a?b?c"),
    ("numwant text", [("numwant", "lots")], "invalid numwant: not an integer"),
  ]

  @Test(arguments: badAnnounces)
  func rejectsMalformedFieldsWithTheirOwnReason(
    _ name: String, _ overrides: [(String, String?)], _ reason: String
  ) {
    let query = announceQuery(
      infoHash: infoHash, peerID: peerID, port: 6881, left: 0, extra: overrides)
    #expect(failure("/announce?" + query) == reason, "\(name)")
  }

  @Test func acceptsEveryKnownEvent() throws {
    for (text, event) in [
      ("started", AnnounceEvent.started), ("stopped", .stopped), ("completed", .completed),
      ("", .none), ("empty", .none),
    ] {
      let query = announceQuery(
        infoHash: infoHash, peerID: peerID, port: 1, left: 0, extra: [("event", text)])
      #expect(announce("/announce?" + query)?.event == event, "event \(text)")
    }
  }

  @Test func parsesMultiHashScrape() throws {
    let hashes = [makeInfoHash(1), makeInfoHash(2), makeInfoHash(3)]
    let target =
      "/scrape/key123?"
      + hashes.map { "info_hash=" + percentEncode($0.bytes) }.joined(separator: "&")
    guard case .scrape(let request) = parser.parse(target: target, clientAddress: client) else {
      Issue.record("not a scrape")
      return
    }
    #expect(request.infoHashes == hashes)
    #expect(request.passkey == "key123")
    #expect(request.clientAddress == client)
    #expect(failure("/scrape?info_hash=short") == "invalid info_hash: must be 20 bytes")
  }

  @Test func unknownAndAbsurdPathsAreNotFound() {
    for target in [
      "/", "", "announce", "/announce.php", "/foo/bar/announce", "//announce", "/x/announce/y",
      "/pass%20key/announce", "/" + String(repeating: "k", count: 129) + "/announce",
      "/announce/a/b",
      "http://tracker/announce",
    ] {
      #expect(isNotFound(target), "\(target.prefix(40)) should be 404")
    }
    #expect(!isNotFound("/announce/"), "a trailing slash is still /announce")
  }

  @Test func neverCrashesOnArbitraryTargets() {
    // A cheap in-process fuzz pass: random bytes around the interesting
    // characters. Debug builds check every buffer access.
    var generator = SplitMix64(seed: 0x5eed)
    let alphabet = Array(
      "/?&=%+#announcescrapeinfo_hashpeer_idport0123456789abcdefABCDEF-\u{0}\u{ff}é".utf8)
    for _ in 0..<5000 {
      let length = Int.random(in: 0..<120, using: &generator)
      let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
      _ = parser.parse(target: String(decoding: bytes, as: UTF8.self), clientAddress: client)
      _ = parser.parse(
        target: "/announce?" + String(decoding: bytes, as: UTF8.self), clientAddress: client)
    }
  }
}
