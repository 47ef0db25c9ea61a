import BitTorrent
import Frontends
import NIOCore
import PrivtrakTestSupport
import Testing
import Tracker

/// The HTTP frontend against slow-loris crowds and oversized asks, over
/// real sockets. (Overlong URLs, header floods, idle and drip-fed
/// connections and the connection limit are in ``HTTPFrontendTests``.)
@Suite("HTTP frontend under hostile input, over real sockets")
struct HTTPHostileInputTests {
  let torrent = makeInfoHash(0x30)

  @Test func aSlowLorisCrowdIsCutOffByTheHeadTimeoutAndFreesEverySlot() async throws {
    try await withHTTPFrontend(configure: {
      $0.maxConnections = 8
      $0.headTimeout = .milliseconds(300)
      // Far beyond the test client's watchdog: only the head timeout can close these.
      $0.idleTimeout = .seconds(600)
    }) { frontend, address in
      // As many connections as there are slots, each starting a head and going quiet.
      var lorises: [TestHTTPConnection] = []
      for _ in 0..<8 {
        let connection = try await TestHTTPConnection.connect(to: address)
        try await connection.send("GET /announce?info_hash=")
        lorises.append(connection)
      }
      for connection in lorises {
        let response = try await connection.readResponse()
        #expect(response?.status == 408)
        #expect(response?.failureReason == "request head not received in time")
        let waitStarted = ContinuousClock.now
        _ = await connection.waitUntilClosed()
        #expect(
          connection.closedByServer,
          """
          closed by the test client's watchdog after \(ContinuousClock.now - waitStarted); \
          the server holds \(frontend.connectionCount) connections
          """)
      }
      try await waitUntil("every connection closed") { frontend.connectionCount == 0 }
      // Every slot is free again: a full house of honest clients is served.
      var honest: [TestHTTPConnection] = []
      for _ in 0..<8 { honest.append(try await TestHTTPConnection.connect(to: address)) }
      for connection in honest {
        #expect(try await connection.get("/announce").failureReason == "missing info_hash")
      }
    }
  }

  @Test func aHugeNumwantGetsTheConfiguredMaximum() async throws {
    let tracker = Tracker()
    for index in 0..<300 {
      _ = try await tracker.announce(
        AnnounceRequest(
          infoHash: torrent, peerID: makePeerID(10_000 + index),
          endpoint: PeerEndpoint(address: .v4(0x0A00_0000 + UInt32(index)), port: 6881),
          uploaded: 0, downloaded: 0, left: 1))
    }
    try await withHTTPFrontend(tracker: tracker) { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      for numwant in ["99999999999999999999999999", "2147483648", "-99999999999999999999"] {
        let query = announceQuery(
          infoHash: torrent, peerID: makePeerID(1), port: 6881, left: 1,
          extra: [("numwant", numwant)])
        let response = try await connection.get("/announce?" + query)
        guard case .bytes(let peers)? = try response.bencode()["peers"] else {
          Issue.record("no compact peers for numwant=\(numwant): \(response.failureReason ?? "?")")
          continue
        }
        let expected =
          numwant.hasPrefix("-")
          ? tracker.configuration.defaultNumWant : tracker.configuration.maxNumWant
        #expect(peers.count / 6 == expected, "numwant=\(numwant)")
      }
    }
  }

  @Test func scrapesWithHundredsOfHashesAreCapped() async throws {
    let hashes = (0..<300).map { makeInfoHash(UInt8(truncatingIfNeeded: $0)) }
    func query(_ count: Int) -> String {
      hashes.prefix(count).map { "info_hash=" + percentEncode($0.bytes) }.joined(separator: "&")
    }
    // With room for long URLs, the tracker's limit (100 by default) decides.
    try await withHTTPFrontend(configure: {
      $0.maxURLLength = 64 * 1024
      $0.maxHeaderBytes = 80 * 1024
    }) { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      let full = try await connection.get("/scrape?" + query(100))
      guard case .dictionary(let files)? = try full.bencode()["files"] else {
        Issue.record("no files: \(full.failureReason ?? "?")")
        return
      }
      #expect(files.count == 100)
      let tooMany = try await connection.get("/scrape?" + query(300))
      #expect(tooMany.status == 200)
      #expect(tooMany.failureReason == "too many info_hash values in one scrape (at most 100)")
    }
    // With the default URL limit, 300 hashes never get that far.
    try await withHTTPFrontend { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      let response = try await connection.get("/scrape?" + query(300))
      #expect(response.status == 414)
      _ = await connection.waitUntilClosed()
      #expect(connection.closedByServer)
    }
  }
}
