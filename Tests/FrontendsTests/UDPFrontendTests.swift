import BitTorrent
import Frontends
import NIOCore
import PrivtrakTestSupport
import Testing
import Tracker

@Suite("UDPFrontend over real sockets")
struct UDPFrontendTests {
  let torrent = makeInfoHash(0x10)

  /// Peers (6- or 18-byte entries) of an announce answer.
  func peers(_ answer: [UInt8], ipv6: Bool) throws -> [PeerEndpoint] {
    #expect(answer.readUInt32(at: 0) == 1, "announce answer, got \(answer.udpErrorMessage ?? "?")")
    return try #require(CompactPeers.decode(Array(answer[20...]), addressLength: ipv6 ? 16 : 4))
  }

  @Test func connectAnnounceScrapeOverIPv4() async throws {
    try await withUDPFrontend { _, address in
      let leecher = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let seeder = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let leecherID = try await leecher.connectionID()
      let seederID = try await seeder.connectionID()

      let first = try await leecher.exchange(
        UDPPackets.announce(
          connectionID: leecherID, transactionID: 77, infoHash: torrent, peerID: makePeerID(1),
          left: 100,
          event: 2, port: 5001))
      #expect(first.readUInt32(at: 4) == 77, "transaction id echoed")
      #expect(first.readUInt32(at: 8) == 1800, "interval")
      #expect(first.readUInt32(at: 12) == 1, "leechers")
      #expect(first.readUInt32(at: 16) == 0, "seeders")
      #expect(try peers(first, ipv6: false).isEmpty)

      let second = try await seeder.exchange(
        UDPPackets.announce(
          connectionID: seederID, infoHash: torrent, peerID: makePeerID(2), left: 0, event: 2,
          port: 5002))
      #expect(
        try peers(second, ipv6: false) == [
          PeerEndpoint(address: IPAddress("127.0.0.1")!, port: 5001)
        ])
      #expect(second.readUInt32(at: 16) == 1, "seeders")

      let third = try await leecher.exchange(
        UDPPackets.announce(
          connectionID: leecherID, infoHash: torrent, peerID: makePeerID(1), left: 50, port: 5001))
      #expect(try peers(third, ipv6: false).map(\.port) == [5002])

      let scrape = try await leecher.exchange(
        UDPPackets.scrape(
          connectionID: leecherID, transactionID: 5, infoHashes: [torrent, makeInfoHash(0x99)]))
      #expect(scrape.count == 8 + 2 * 12)
      #expect(scrape.readUInt32(at: 0) == 2)
      #expect(scrape.readUInt32(at: 4) == 5)
      #expect(
        [scrape.readUInt32(at: 8), scrape.readUInt32(at: 12), scrape.readUInt32(at: 16)] == [
          1, 0, 1,
        ])
      #expect(
        [scrape.readUInt32(at: 20), scrape.readUInt32(at: 24), scrape.readUInt32(at: 28)] == [
          0, 0, 0,
        ])
    }
  }

  @Test func ipv6AnnouncesCarry18BytePeers() async throws {
    try await withUDPFrontend(host: "::1") { _, address in
      let first = try await TestUDPClient.connect(to: address, bindHost: "::1")
      let second = try await TestUDPClient.connect(to: address, bindHost: "::1")
      let firstID = try await first.connectionID()
      let secondID = try await second.connectionID()
      _ = try await first.exchange(
        UDPPackets.announce(
          connectionID: firstID, infoHash: torrent, peerID: makePeerID(1), left: 1, port: 6001))
      let answer = try await second.exchange(
        UDPPackets.announce(
          connectionID: secondID, infoHash: torrent, peerID: makePeerID(2), left: 1, port: 6002))
      #expect(answer.count == 20 + 18)
      #expect(
        try peers(answer, ipv6: true) == [PeerEndpoint(address: IPAddress("::1")!, port: 6001)])
    }
  }

  @Test func bep41URLDataCarriesThePasskey() async throws {
    let recorder = RecordingPreHook()
    try await withUDPFrontend(tracker: Tracker(preHooks: [recorder])) { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let id = try await client.connectionID()
      for options in [
        UDPPackets.urlData("/0123456789abcdef0123456789abcdef/announce", chunk: 7),
        UDPPackets.urlData("/announce/feedface?extra=1"),
        [],
      ] {
        let answer = try await client.exchange(
          UDPPackets.announce(
            connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: 0, port: 1,
            options: options))
        #expect(answer.readUInt32(at: 0) == 1)
      }
      let bad = try await client.exchange(
        UDPPackets.announce(
          connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: 0, port: 1,
          options: UDPPackets.urlData("/nope/x")))
      #expect(bad.udpErrorMessage == "invalid URL data: not an announce path")
    }
    #expect(recorder.all.map(\.passkey) == ["0123456789abcdef0123456789abcdef", "feedface", nil])
    #expect(recorder.all.allSatisfy { $0.transport == .udp })
  }

  @Test func shortPacketsAreDroppedAndTruncatedOnesExplained() async throws {
    try await withUDPFrontend { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let id = try await client.connectionID()
      // 15 bytes: no answer at all. The next answer must be the one to the connect after it.
      try await client.send(Array(UDPPackets.connect(transactionID: 1).prefix(15)))
      try await client.send([])
      let connect = try await client.exchange(UDPPackets.connect(transactionID: 0xAB))
      #expect(connect.readUInt32(at: 0) == 0)
      #expect(connect.readUInt32(at: 4) == 0xAB)

      let announce = UDPPackets.announce(
        connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: 0, port: 1)
      let truncated = try await client.exchange(Array(announce.prefix(50)))
      #expect(truncated.udpErrorMessage == "truncated announce: 50 of 98 bytes")
      let garbledScrape = try await client.exchange(
        UDPPackets.scrape(connectionID: id, infoHashes: [torrent]) + [1, 2])
      #expect(garbledScrape.udpErrorMessage == "invalid scrape: info hashes must be 20 bytes each")
      let tooMany = try await client.exchange(
        UDPPackets.scrape(connectionID: id, infoHashes: (0..<75).map { makeInfoHash(UInt8($0)) }))
      #expect(tooMany.udpErrorMessage == "too many info hashes: at most 74 per packet")
    }
  }

  @Test func unknownActionsAreNamed() async throws {
    try await withUDPFrontend { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let id = try await client.connectionID()
      var packet = [UInt8]()
      packet.appendInteger(id)
      packet.appendInteger(UInt32(7))
      packet.appendInteger(UInt32(12))
      let answer = try await client.exchange(packet + Array(repeating: 0, count: 16))
      #expect(answer.udpErrorMessage == "unknown action: 7")
      #expect(answer.readUInt32(at: 4) == 12)
    }
  }

  @Test func staleConnectionIDsAreRefused() async throws {
    let clock = ManualTestClock()
    try await withUDPFrontend(tracker: Tracker(clock: clock)) { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let id = try await client.connectionID()
      let announce = UDPPackets.announce(
        connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: 0, port: 1)
      clock.advance(seconds: 60)
      #expect(
        try await client.exchange(announce).readUInt32(at: 0) == 1, "still valid a minute later")
      clock.advance(seconds: 61)
      try await client.send(announce)
      #expect(try await client.nextAnswerIsTheReplyToAConnect(), "an expired id gets no answer")
      let fresh = try await client.connectionID()
      let renewed = UDPPackets.announce(
        connectionID: fresh, infoHash: torrent, peerID: makePeerID(1), left: 0, port: 1)
      #expect(try await client.exchange(renewed).readUInt32(at: 0) == 1)
    }
  }

  @Test func negativeCountersAndPortZeroAreRefused() async throws {
    try await withUDPFrontend { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let id = try await client.connectionID()
      let cases: [([UInt8], String)] = [
        (
          UDPPackets.announce(
            connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: 0, uploaded: -1,
            port: 1), "invalid uploaded: negative"
        ),
        (
          UDPPackets.announce(
            connectionID: id, infoHash: torrent, peerID: makePeerID(1), downloaded: -1, left: 0,
            port: 1), "invalid downloaded: negative"
        ),
        (
          UDPPackets.announce(
            connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: -1, port: 1),
          "invalid left: negative"
        ),
        (
          UDPPackets.announce(
            connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: 0, port: 0),
          "invalid port: 0"
        ),
        (
          UDPPackets.announce(
            connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: 0, event: 9, port: 1),
          "unknown event: 9"
        ),
      ]
      for (packet, reason) in cases {
        #expect(try await client.exchange(packet).udpErrorMessage == reason)
      }
    }
  }

  @Test func trackerFailuresBecomeErrorPackets() async throws {
    let refused = makeInfoHash(0x44)
    try await withUDPFrontend(tracker: Tracker(preHooks: [RefusingPreHook(refused: refused)])) {
      _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let id = try await client.connectionID()
      let answer = try await client.exchange(
        UDPPackets.announce(
          connectionID: id, infoHash: refused, peerID: makePeerID(1), left: 0, port: 1))
      #expect(answer.udpErrorMessage == "tracker busy, retry later")
    }
  }

  @Test func aSecondFrontendCannotTakeAPortInUse() async throws {
    try await withUDPFrontend { _, address in
      let second = UDPFrontend(
        configuration: UDPFrontendConfiguration(host: "127.0.0.1", port: address.port!),
        tracker: Tracker(), logger: testLogger)
      // Without SO_REUSEADDR the bind fails instead of splitting the traffic.
      await #expect(throws: (any Error).self) { try await second.start() }
      try? await second.shutdown()
    }
  }

  @Test func severalReusePortSocketsShareOnePort() async throws {
    let threeSockets: (inout UDPFrontendConfiguration) -> Void = { $0.socketCount = 3 }
    try await withUDPFrontend(configure: threeSockets) { frontend, address in
      #expect(frontend.localAddress?.port == address.port)
      for _ in 0..<6 {
        let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
        _ = try await client.connectionID()
      }
    }
  }
}
