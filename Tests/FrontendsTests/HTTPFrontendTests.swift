import BitTorrent
import Frontends
import NIOCore
import PrivtrakTestSupport
import Testing
import Tracker

@Suite("HTTPFrontend over real sockets")
struct HTTPFrontendTests {
  let torrent = makeInfoHash(0x00)

  func announce(
    _ connection: TestHTTPConnection, path: String = "/announce", peer: Int, port: UInt16,
    left: UInt64,
    event: String? = nil, extra: [(String, String?)] = [], headers: [(String, String)] = [],
    infoHash: InfoHash? = nil
  ) async throws -> TestHTTPResponse {
    let query = announceQuery(
      infoHash: infoHash ?? torrent, peerID: makePeerID(peer), port: port, left: left, event: event,
      extra: extra)
    return try await connection.get(path + "?" + query, headers: headers)
  }

  /// Endpoints of a compact `peers` (6-byte) or `peers6` (18-byte) string.
  func compactPeers(_ response: TestHTTPResponse, key: String = "peers") throws -> [PeerEndpoint] {
    let body = try response.bencode()
    guard case .bytes(let bytes)? = body[key] else { return [] }
    return try #require(CompactPeers.decode(bytes, addressLength: key == "peers6" ? 16 : 4))
  }

  @Test func peersSeeEachOtherButNotThemselvesAndSeedersGetOnlyLeechers() async throws {
    try await withHTTPFrontend { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      let loopback = IPAddress("127.0.0.1")!
      let leecherA = try await announce(
        connection, peer: 1, port: 1001, left: 100, event: "started")
      #expect(leecherA.status == 200)
      #expect(leecherA.header("content-type") == "text/plain")
      #expect(try compactPeers(leecherA).isEmpty)
      #expect(try leecherA.bencode()["incomplete"]?.integer == 1)

      let leecherB = try await announce(
        connection, peer: 2, port: 1002, left: 100, event: "started")
      #expect(try compactPeers(leecherB) == [PeerEndpoint(address: loopback, port: 1001)])

      let seeder = try await announce(connection, peer: 3, port: 1003, left: 0, event: "started")
      #expect(Set(try compactPeers(seeder).map(\.port)) == [1001, 1002])
      let seederBody = try seeder.bencode()
      #expect(seederBody["complete"]?.integer == 1)
      #expect(seederBody["incomplete"]?.integer == 2)
      #expect(seederBody["interval"]?.integer == 1800)
      #expect(seederBody["min interval"]?.integer == 900)

      let secondSeeder = try await announce(
        connection, peer: 4, port: 1004, left: 0, event: "started")
      #expect(
        Set(try compactPeers(secondSeeder).map(\.port)) == [1001, 1002], "seeders get only leechers"
      )

      let again = try await announce(connection, peer: 1, port: 1001, left: 50)
      #expect(
        Set(try compactPeers(again).map(\.port)) == [1002, 1003, 1004], "everyone but itself")

      let stopped = try await announce(connection, peer: 2, port: 1002, left: 100, event: "stopped")
      #expect(try stopped.bencode()["incomplete"]?.integer == 1)
      let afterStop = try await announce(connection, peer: 1, port: 1001, left: 50)
      #expect(Set(try compactPeers(afterStop).map(\.port)) == [1003, 1004])
    }
  }

  @Test func nonCompactListsCarryIPPortAndOptionallyPeerID() async throws {
    try await withHTTPFrontend { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      _ = try await announce(connection, peer: 1, port: 2001, left: 10)
      let listed = try await announce(
        connection, peer: 2, port: 2002, left: 10, extra: [("compact", "0")])
      guard case .list(let peers)? = try listed.bencode()["peers"] else {
        Issue.record("peers is not a list: \(listed.body)")
        return
      }
      #expect(peers.count == 1)
      #expect(peers.first?["ip"]?.text == "127.0.0.1")
      #expect(peers.first?["port"]?.integer == 2001)
      #expect(peers.first?["peer id"] == .bytes(makePeerID(1).bytes))

      let withoutIDs = try await announce(
        connection, peer: 2, port: 2002, left: 10, extra: [("compact", "0"), ("no_peer_id", "1")])
      guard case .list(let bare)? = try withoutIDs.bencode()["peers"] else {
        Issue.record("peers is not a list")
        return
      }
      #expect(bare.first?["peer id"] == nil)
      #expect(bare.first?["port"]?.integer == 2001)
    }
  }

  @Test func ipv6ClientsGetPeers6() async throws {
    try await withHTTPFrontend(host: "::1") { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      _ = try await announce(connection, peer: 1, port: 3001, left: 10)
      let second = try await announce(connection, peer: 2, port: 3002, left: 10)
      #expect(
        try compactPeers(second, key: "peers6") == [
          PeerEndpoint(address: IPAddress("::1")!, port: 3001)
        ])
      #expect(try compactPeers(second).isEmpty, "no IPv4 peers in this swarm")
    }
  }

  @Test func keepAliveAndPipeliningAnswerInOrder() async throws {
    try await withHTTPFrontend { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      for round in 0..<3 {
        let response = try await announce(connection, peer: 10 + round, port: 4000, left: 1)
        #expect(response.status == 200)
        #expect(response.header("connection") == nil, "keep-alive is the HTTP/1.1 default")
      }
      // Five requests in one write: failures answered at once interleave
      // with announces that go through the tracker; order must hold.
      let good =
        "/announce?" + announceQuery(infoHash: torrent, peerID: makePeerID(20), port: 4001, left: 1)
      let targets = [
        good, "/announce?port=1", "/nowhere", good.replacingPort(with: "0"),
        "/scrape?info_hash=" + percentEncode(torrent.bytes),
      ]
      try await connection.send(targets.map { "GET \($0) HTTP/1.1\r\nHost: t\r\n\r\n" }.joined())
      var responses: [TestHTTPResponse] = []
      for _ in targets {
        responses.append(try #require(try await connection.readResponse()))
      }
      #expect(responses.map(\.status) == [200, 200, 404, 200, 200])
      #expect(try responses[0].bencode()["interval"] != nil)
      #expect(responses[1].failureReason == "missing info_hash")
      #expect(responses[2].failureReason == "unknown path")
      #expect(responses[3].failureReason == "invalid port: 0")
      #expect(try responses[4].bencode()["files"] != nil)
    }
  }

  @Test func pipeliningPastTheInFlightLimitStillAnswersEverythingInOrder() async throws {
    try await withHTTPFrontend(configure: { $0.maxPipelinedRequests = 2 }) { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      let ports = (1...12).map { UInt16(8000 + $0) }
      let requests = ports.enumerated().map { index, port in
        "GET /announce?"
          + announceQuery(infoHash: torrent, peerID: makePeerID(100 + index), port: port, left: 1)
          + " HTTP/1.1\r\nHost: t\r\n\r\n"
      }
      try await connection.send(requests.joined())
      for index in ports.indices {
        let response = try #require(try await connection.readResponse())
        // The n-th announce of a fresh swarm sees exactly the n-1 peers before it.
        #expect(try compactPeers(response).count == index)
      }
    }
  }

  @Test func http10WithoutKeepAliveIsClosedAfterTheResponse() async throws {
    try await withHTTPFrontend { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      try await connection.send("GET /announce HTTP/1.0\r\n\r\n")
      let response = try #require(try await connection.readResponse())
      #expect(response.failureReason == "missing info_hash")
      #expect(response.header("connection") == "close")
      _ = await connection.waitUntilClosed()
      #expect(connection.closedByServer)

      let keptAlive = try await TestHTTPConnection.connect(to: address)
      try await keptAlive.send("GET /announce HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
      #expect(try #require(try await keptAlive.readResponse()).header("connection") == "keep-alive")
      #expect(
        try await keptAlive.get("/scrape").failureReason == "scrape needs at least one info_hash")
    }
  }

  @Test func scrapeReportsSeveralTorrents() async throws {
    try await withHTTPFrontend { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      let other = makeInfoHash(0x80)
      let unknown = makeInfoHash(0x40)
      _ = try await announce(connection, peer: 1, port: 1, left: 0)
      _ = try await announce(connection, peer: 2, port: 2, left: 9)
      // A snatch is a peer's move from leeching to seeding (PeerStore.announce).
      _ = try await announce(connection, peer: 3, port: 3, left: 9, infoHash: other)
      _ = try await announce(
        connection, peer: 3, port: 3, left: 0, event: "completed", infoHash: other)
      let query = [torrent, other, unknown].map { "info_hash=" + percentEncode($0.bytes) }.joined(
        separator: "&")
      for path in ["/scrape", "/pk1/scrape", "/scrape/pk1"] {
        let response = try await connection.get(path + "?" + query)
        let files = try #require(try response.bencode()["files"])
        func stats(_ hash: InfoHash) -> [Int64?] {
          guard case .dictionary(let entries) = files,
            let entry = entries.first(where: { $0.key == hash.bytes })?.value
          else { return [] }
          return [
            entry["complete"]?.integer, entry["incomplete"]?.integer, entry["downloaded"]?.integer,
          ]
        }
        #expect(stats(torrent) == [1, 1, 0], "\(path)")
        #expect(stats(other) == [1, 0, 1], "\(path)")
        #expect(stats(unknown) == [0, 0, 0], "\(path)")
      }
      let empty = try await connection.get("/scrape")
      #expect(empty.failureReason == "scrape needs at least one info_hash")
    }
  }

  @Test func passkeyFromEitherPathFormReachesTheHooks() async throws {
    let recorder = RecordingPreHook()
    try await withHTTPFrontend(tracker: Tracker(preHooks: [recorder])) { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      _ = try await announce(
        connection, path: "/0123456789abcdef0123456789abcdef/announce", peer: 1, port: 1, left: 0)
      _ = try await announce(
        connection, path: "/announce/fedcba9876543210fedcba9876543210", peer: 1, port: 1, left: 0)
      _ = try await announce(connection, peer: 1, port: 1, left: 0)
      _ = try await connection.get("/scrape/k?info_hash=" + percentEncode(torrent.bytes))
    }
    let seen = recorder.all
    #expect(
      seen.map(\.passkey) == [
        "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210", nil, "k",
      ])
    #expect(seen.map(\.isScrape) == [false, false, false, true])
    #expect(seen.allSatisfy { $0.transport == .http })
  }

  @Test func everyMalformedFieldGetsItsOwnReason() async throws {
    try await withHTTPFrontend { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      let cases: [([(String, String?)], String)] = [
        ([("info_hash", nil)], "missing info_hash"),
        ([("info_hash", "tooshort")], "invalid info_hash: must be 20 bytes"),
        ([("peer_id", nil)], "missing peer_id"),
        ([("peer_id", String(repeating: "x", count: 21))], "invalid peer_id: must be 20 bytes"),
        ([("port", nil)], "missing port"),
        ([("port", "0")], "invalid port: 0"),
        ([("port", "99999")], "invalid port: out of range"),
        ([("uploaded", "-1")], "invalid uploaded: not a non-negative integer"),
        ([("downloaded", "x")], "invalid downloaded: not a non-negative integer"),
        ([("left", nil)], "missing left"),
        ([("event", "foo")], "unknown event: foo"),
        ([("numwant", "many")], "invalid numwant: not an integer"),
      ]
      for (overrides, reason) in cases {
        let response = try await announce(
          connection, peer: 1, port: 6881, left: 0, extra: overrides)
        #expect(response.status == 200, "\(reason)")
        #expect(response.failureReason == reason)
      }
      // None of them reached the swarm.
      let probe = try await connection.get("/scrape?info_hash=" + percentEncode(torrent.bytes))
      #expect(probe.body.count > 0)
      let files = try #require(try probe.bencode()["files"])
      guard case .dictionary(let entries) = files else { return }
      #expect(entries.first?.value["complete"]?.integer == 0)
    }
  }

  @Test func unknownPathsAndMethodsAreRefused() async throws {
    try await withHTTPFrontend { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      let missing = try await connection.get("/stats")
      #expect(missing.status == 404)
      #expect(missing.failureReason == "unknown path")
      try await connection.send("POST /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
      let post = try #require(try await connection.readResponse())
      #expect(post.status == 405)
      #expect(post.header("allow") == "GET")
      #expect(post.failureReason == "method not allowed: use GET")
      // Still usable afterwards.
      #expect(try await connection.get("/announce").failureReason == "missing info_hash")
      // A request body is refused and ends the connection.
      try await connection.send("GET /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
      let withBody = try #require(try await connection.readResponse())
      #expect(withBody.status == 400)
      #expect(withBody.header("connection") == "close")
      _ = await connection.waitUntilClosed()
      #expect(connection.closedByServer)

      // HEAD gets a 405 that ends the connection (its body would misframe the next response).
      let head = try await TestHTTPConnection.connect(to: address)
      try await head.send("HEAD /announce HTTP/1.1\r\nHost: t\r\n\r\n")
      let headResponse = try #require(try await head.readResponse())
      #expect(headResponse.status == 405)
      #expect(headResponse.header("connection") == "close")
      _ = await head.waitUntilClosed()
      #expect(head.closedByServer)
    }
  }

  @Test func trackerFailuresCarryRetryIn() async throws {
    let refused = makeInfoHash(0x33)
    try await withHTTPFrontend(tracker: Tracker(preHooks: [RefusingPreHook(refused: refused)])) {
      _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      let response = try await announce(connection, peer: 1, port: 1, left: 0, infoHash: refused)
      #expect(response.status == 200)
      let body = try response.bencode()
      #expect(body["failure reason"]?.text == "tracker busy, retry later")
      #expect(body["retry in"]?.integer == 5)
    }
  }

  @Test func overlongURLsGet414AndTheConnectionCloses() async throws {
    try await withHTTPFrontend(configure: {
      $0.maxURLLength = 1024
      $0.maxHeaderBytes = 4096
    }) { _, address in
      // Slightly too long: caught on the decoded request.
      let slightly = try await TestHTTPConnection.connect(to: address)
      let response = try await slightly.get("/announce?pad=" + String(repeating: "a", count: 1100))
      #expect(response.status == 414)
      #expect(response.failureReason == "request URL too long")
      _ = await slightly.waitUntilClosed()
      #expect(slightly.closedByServer)

      // Far too long: caught on the raw bytes before the decoder buffers them.
      let far = try await TestHTTPConnection.connect(to: address)
      try await far.send("GET /announce?pad=" + String(repeating: "a", count: 64 * 1024))
      let farResponse = try #require(try await far.readResponse())
      #expect(farResponse.status == 414)
      _ = await far.waitUntilClosed()
      #expect(far.closedByServer)
    }
  }

  @Test func headerFloodGets431AndTheConnectionCloses() async throws {
    try await withHTTPFrontend(configure: { $0.maxHeaderBytes = 8192 }) { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      var flood = "GET /announce HTTP/1.1\r\nHost: t\r\n"
      for index in 0..<2000 { flood += "X-Flood-\(index): yes\r\n" }
      try await connection.send(flood)
      let response = try #require(try await connection.readResponse())
      #expect(response.status == 431)
      #expect(response.failureReason == "request headers too large")
      #expect(response.header("connection") == "close")
      _ = await connection.waitUntilClosed()
      #expect(connection.closedByServer)
    }
  }

  @Test func idleConnectionsAreClosedByTheServer() async throws {
    try await withHTTPFrontend(configure: { $0.idleTimeout = .milliseconds(200) }) { _, address in
      // The client never sends a byte (sending one could race the short timeout).
      let connection = try await TestHTTPConnection.connect(to: address)
      let leftover = await connection.waitUntilClosed()
      #expect(leftover.isEmpty)
      #expect(
        connection.closedByServer, "the server's idle timeout, not the test watchdog, closed it")
    }
  }

  @Test func dripFedHeadsAreCutOffByTheHeadTimeout() async throws {
    try await withHTTPFrontend(configure: {
      $0.headTimeout = .milliseconds(200)
      $0.idleTimeout = .seconds(60)
    }) {
      _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      try await connection.send("GET /announce?")
      // Keep the connection busy (so the idle timeout never fires) but never finish the head.
      let channel = connection.channel
      let dripper = Task {
        for _ in 0..<400 {
          guard (try? await channel.writeAndFlush(channel.allocator.buffer(string: "a"))) != nil
          else { return }
          try? await Task.sleep(for: .milliseconds(25))
        }
      }
      let response = try await connection.readResponse()
      dripper.cancel()
      #expect(response?.status == 408)
      #expect(response?.failureReason == "request head not received in time")
      _ = await connection.waitUntilClosed()
      #expect(connection.closedByServer)
    }
  }

  @Test func connectionsBeyondTheLimitAreClosedAtOnce() async throws {
    try await withHTTPFrontend(configure: { $0.maxConnections = 2 }) { frontend, address in
      let first = try await TestHTTPConnection.connect(to: address)
      let second = try await TestHTTPConnection.connect(to: address)
      // Both are served, so both are registered.
      #expect(try await first.get("/announce").status == 200)
      #expect(try await second.get("/announce").status == 200)
      let third = try await TestHTTPConnection.connect(to: address)
      try? await third.send("GET /announce HTTP/1.1\r\n\r\n")
      #expect(await third.waitUntilClosed().isEmpty)
      #expect(third.closedByServer)

      try await first.channel.close()
      try await waitUntil("one connection registered") { frontend.connectionCount == 1 }
      let fourth = try await TestHTTPConnection.connect(to: address)
      #expect(try await fourth.get("/announce").status == 200, "a slot freed up")
    }
  }

  @Test func forwardedForIsBelievedOnlyFromTrustedProxies() async throws {
    let recorder = RecordingPreHook()
    let headers = [("X-Forwarded-For", "6.6.6.6, 203.0.113.9")]
    try await withHTTPFrontend(
      tracker: Tracker(preHooks: [recorder]),
      configure: { $0.trustedProxies = [IPNetwork("127.0.0.0/8")!] }
    ) { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      _ = try await announce(connection, peer: 1, port: 7000, left: 0, headers: headers)
      _ = try await announce(
        connection, peer: 2, port: 7001, left: 0, headers: [("X-Real-IP", "198.51.100.4")])
      let bad = try await announce(
        connection, peer: 3, port: 7002, left: 0, headers: [("X-Forwarded-For", "junk")])
      #expect(bad.failureReason == "invalid X-Forwarded-For from proxy")
    }
    try await withHTTPFrontend(tracker: Tracker(preHooks: [recorder])) { _, address in
      let connection = try await TestHTTPConnection.connect(to: address)
      _ = try await announce(connection, peer: 4, port: 7003, left: 0, headers: headers)
    }
    #expect(
      recorder.all.map(\.endpoint?.address) == [
        IPAddress("203.0.113.9"), IPAddress("198.51.100.4"), IPAddress("127.0.0.1"),
      ])
  }

  @Test func shutdownClosesIdleKeepAliveConnections() async throws {
    let frontend = HTTPFrontend(
      configuration: HTTPFrontendConfiguration(host: "127.0.0.1", port: 0), tracker: Tracker(),
      logger: testLogger)
    let address = try await frontend.start()
    #expect(frontend.localAddress?.port == address.port)
    let connection = try await TestHTTPConnection.connect(to: address)
    #expect(try await connection.get("/announce").status == 200)
    try await frontend.shutdown()
    _ = await connection.waitUntilClosed()
    #expect(connection.closedByServer)
    #expect(frontend.localAddress == nil)
  }
}

extension String {
  /// Replaces the value of `port=` in an announce target.
  func replacingPort(with value: String) -> String {
    var parts = split(separator: "&", omittingEmptySubsequences: false).map(String.init)
    for index in parts.indices where parts[index].hasPrefix("port=") {
      parts[index] = "port=" + value
    }
    return parts.joined(separator: "&")
  }
}
