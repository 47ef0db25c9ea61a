import BitTorrent
import Frontends
import Testing
import Tracker

@Suite("TrackerPath")
struct TrackerPathTests {
  @Test func routesAllSixForms() {
    #expect(TrackerPath.route("/announce") == .init(action: .announce, passkey: nil))
    #expect(TrackerPath.route("/scrape") == .init(action: .scrape, passkey: nil))
    #expect(TrackerPath.route("/abc/announce") == .init(action: .announce, passkey: "abc"))
    #expect(TrackerPath.route("/abc/scrape") == .init(action: .scrape, passkey: "abc"))
    #expect(TrackerPath.route("/announce/abc") == .init(action: .announce, passkey: "abc"))
    #expect(TrackerPath.route("/scrape/abc") == .init(action: .scrape, passkey: "abc"))
  }

  @Test func rejectsAbsurdPaths() {
    for path in [
      "", "/", "/announcex", "/a/b/announce", "/a b/announce", "/a%2f/announce", "/ann/ounce",
      "/é/announce",
    ] {
      #expect(TrackerPath.route(Substring(path)) == nil, "\(path)")
    }
    let longest = String(repeating: "a", count: TrackerPath.maxPasskeyLength)
    #expect(TrackerPath.route(Substring("/\(longest)/announce"))?.passkey == Substring(longest))
    #expect(TrackerPath.route(Substring("/\(longest)a/announce")) == nil)
  }
}

@Suite("IPNetwork")
struct IPNetworkTests {
  @Test func matchesPrefixes() throws {
    let network = try #require(IPNetwork("10.1.0.0/16"))
    #expect(network.contains(IPAddress("10.1.200.3")!))
    #expect(!network.contains(IPAddress("10.2.0.1")!))
    #expect(!network.contains(IPAddress("::1")!))
    let single = try #require(IPNetwork("192.0.2.1"))
    #expect(single.contains(IPAddress("192.0.2.1")!))
    #expect(!single.contains(IPAddress("192.0.2.2")!))
    let v6 = try #require(IPNetwork("fd00::/8"))
    #expect(v6.contains(IPAddress("fd12:3456::1")!))
    #expect(!v6.contains(IPAddress("fe80::1")!))
    #expect(try #require(IPNetwork("0.0.0.0/0")).contains(IPAddress("8.8.8.8")!))
    #expect(try #require(IPNetwork("2001:db8::/100")).contains(IPAddress("2001:db8::0fff:ffff")!))
    #expect(!(try #require(IPNetwork("2001:db8::/100"))).contains(IPAddress("2001:db8::1000:0")!))
  }

  @Test func rejectsNonsense() {
    for text in [
      "", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "example.com", "10.0.0.0/8/8",
    ] {
      #expect(IPNetwork(text) == nil, "\(text)")
    }
  }
}

@Suite("ClientAddressResolver")
struct ClientAddressResolverTests {
  let proxy = IPAddress("10.0.0.2")!
  let resolver = ClientAddressResolver(trustedProxies: [IPNetwork("10.0.0.0/24")!])

  @Test func ignoresHeadersFromUntrustedPeers() throws {
    let peer = IPAddress("198.51.100.1")!
    #expect(try resolver.resolve(peer: peer, forwardedFor: ["1.2.3.4"], realIP: "5.6.7.8") == peer)
  }

  @Test func takesTheRightmostUntrustedForwardedAddress() throws {
    // The client forged 6.6.6.6; our proxy chain appended 203.0.113.9 and 10.0.0.1.
    let resolved = try resolver.resolve(
      peer: proxy, forwardedFor: ["6.6.6.6, 203.0.113.9", "10.0.0.1"], realIP: nil)
    #expect(resolved == IPAddress("203.0.113.9"))
  }

  @Test func fallsBackSensibly() throws {
    #expect(
      try resolver.resolve(peer: proxy, forwardedFor: ["10.0.0.7, 10.0.0.8"], realIP: nil)
        == IPAddress("10.0.0.7"))
    #expect(
      try resolver.resolve(peer: proxy, forwardedFor: [], realIP: " 2001:db8::5 ")
        == IPAddress("2001:db8::5"))
    #expect(try resolver.resolve(peer: proxy, forwardedFor: [], realIP: nil) == proxy)
    #expect(
      try resolver.resolve(peer: proxy, forwardedFor: ["[2001:db8::7]:443"], realIP: nil)
        == IPAddress("2001:db8::7"))
    #expect(
      try resolver.resolve(peer: proxy, forwardedFor: ["192.0.2.9:5555"], realIP: nil)
        == IPAddress("192.0.2.9"))
  }

  @Test func rejectsGarbageFromATrustedProxy() {
    #expect(throws: TrackerFailure("invalid X-Forwarded-For from proxy")) {
      try resolver.resolve(peer: proxy, forwardedFor: ["not-an-address"], realIP: nil)
    }
    #expect(throws: TrackerFailure("invalid X-Real-IP from proxy")) {
      try resolver.resolve(peer: proxy, forwardedFor: [], realIP: "x")
    }
  }
}

@Suite("HTTPHeadLimitScanner")
struct HTTPHeadLimitScannerTests {
  func scan(_ scanner: inout HTTPHeadLimitScanner, _ text: String) -> (
    HTTPHeadLimitScanner.Violation, Int
  )? {
    Array(text.utf8).withUnsafeBytes { scanner.scan($0) }.map { ($0.violation, $0.offset) }
  }

  @Test func acceptsPipelinedHeadsWithinLimits() {
    var scanner = HTTPHeadLimitScanner(maxRequestLineLength: 40, maxHeadLength: 80)
    let head = "GET /announce?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
    #expect(scan(&scanner, head + head + "\r\n" + head) == nil)
    #expect(!scanner.isInsideHead)
    #expect(scanner.completedHeads == 3)
    // Split across chunks anywhere.
    #expect(scan(&scanner, "GET /announce HTTP/1.1\r\nHo") == nil)
    #expect(scanner.isInsideHead)
    #expect(scan(&scanner, "st: a\r\n\r\n") == nil)
    #expect(!scanner.isInsideHead)
  }

  @Test func flagsALongRequestLine() {
    var scanner = HTTPHeadLimitScanner(maxRequestLineLength: 10, maxHeadLength: 1000)
    let violation = scan(&scanner, "GET /" + String(repeating: "a", count: 20))
    #expect(violation?.0 == .requestLineTooLong)
    #expect(violation?.1 == 10)
  }

  @Test func flagsAHeaderFloodAcrossChunks() {
    // 16 + 23 bytes fit the 50-byte head, 23 more do not.
    var scanner = HTTPHeadLimitScanner(maxRequestLineLength: 100, maxHeadLength: 50)
    #expect(scan(&scanner, "GET / HTTP/1.1\r\n") == nil)
    #expect(scan(&scanner, "X-A: aaaaaaaaaaaaaaaa\r\n") == nil)
    #expect(scan(&scanner, "X-B: bbbbbbbbbbbbbbbb\r\n")?.0 == .headTooLarge)
  }
}
