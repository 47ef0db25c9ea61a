import BitTorrent
import Frontends
import NIOCore
import PrivtrakTestSupport
import Testing
import Tracker

/// The UDP frontend against floods, forged connection ids and oversized
/// asks, over real sockets. "No answer" is proved without waiting: after
/// the hostile packets the same socket sends a connect, and the first
/// datagram back must be its reply (see
/// ``TestUDPClient/nextAnswerIsTheReplyToAConnect()``).
@Suite("UDP frontend under hostile input, over real sockets")
struct UDPHostileInputTests {
  let torrent = makeInfoHash(0x20)
  static let secret = [UInt8](repeating: 7, count: 32)
  static let localhost = IPAddress("127.0.0.1")!

  /// Packets a scanner or a spoofer sends: every action (and junk ones)
  /// with connection ids the server never issued.
  static func unverifiedPackets(count: Int, torrent: InfoHash) -> [[UInt8]] {
    (0..<count).map { index in
      let id = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15
      let transactionID = UInt32(truncatingIfNeeded: index)
      switch index % 6 {
      case 0:
        return UDPPackets.announce(
          connectionID: id, transactionID: transactionID, infoHash: torrent,
          peerID: makePeerID(index), left: 1, numWant: .max, port: 6881)
      case 1:
        return UDPPackets.scrape(
          connectionID: id, transactionID: transactionID,
          infoHashes: (0..<74).map { makeInfoHash(UInt8($0)) })
      case 2:
        return UDPPackets.connect(transactionID: transactionID, magic: id)
      case 3:
        var packet = [UInt8]()
        packet.appendInteger(id)
        packet.appendInteger(UInt32(7 + index))
        packet.appendInteger(transactionID)
        return packet + [UInt8](repeating: 0xAA, count: index % 64)
      case 4:
        var packet = [UInt8]()
        packet.appendInteger(id)
        packet.appendInteger(UInt32(3))  // "error": never a request
        packet.appendInteger(transactionID)
        return packet
      default:
        return UDPPackets.announce(
          connectionID: id, transactionID: transactionID, infoHash: torrent,
          peerID: makePeerID(index), left: 0, port: 1,
          options: UDPPackets.urlData("/0123456789abcdef0123456789abcdef/announce"))
      }
    }
  }

  @Test func aFloodWithBadConnectionIDsIsNeverAnswered() async throws {
    try await withUDPFrontend { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let packets = Self.unverifiedPackets(count: 1000, torrent: torrent)
      // Bursts small enough for the default socket buffers, so the kernel
      // never drops the connect that proves the silence.
      for start in stride(from: 0, to: packets.count, by: 50) {
        for packet in packets[start..<start + 50] { try await client.send(packet) }
        #expect(
          try await client.nextAnswerIsTheReplyToAConnect(),
          "something answered packets \(start)..<\(start + 50)")
      }
      // A verified client is still served, errors included.
      let id = try await client.connectionID()
      let answer = try await client.exchange(
        UDPPackets.announce(
          connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: 1, port: 6881))
      #expect(answer.readUInt32(at: 0) == 1, "announce answer")
      let malformed = try await client.exchange(
        UDPPackets.announce(
          connectionID: id, transactionID: 42, infoHash: torrent, peerID: makePeerID(1), left: 1,
          port: 0))
      #expect(malformed.udpErrorMessage == "invalid port: 0")
      #expect(malformed.readUInt32(at: 4) == 42)
      let badMagic = try await client.exchange(UDPPackets.connect(transactionID: 5, magic: id))
      #expect(badMagic.udpErrorMessage == "bad protocol id", "a verified sender hears why")
    }
  }

  @Test func forgedConnectionIDsAreRefusedSilently() async throws {
    let clock = ManualTestClock()
    try await withUDPFrontend(
      tracker: Tracker(clock: clock), clock: clock,
      configure: { $0.connectionIDSecret = Self.secret }
    ) { frontend, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      func announce(_ id: UInt64) -> [UInt8] {
        UDPPackets.announce(
          connectionID: id, infoHash: torrent, peerID: makePeerID(1), left: 1, port: 6881)
      }

      // Computed with another secret, for the right address and time.
      let otherKey = UDPConnectionIDs(secret: [UInt8](repeating: 8, count: 32), clock: clock)
      let forged = otherKey.make(for: Self.localhost)
      #expect(forged != frontend.connectionIDs.make(for: Self.localhost))
      try await client.send(announce(forged))
      try await client.send(UDPPackets.scrape(connectionID: forged, infoHashes: [torrent]))
      #expect(try await client.nextAnswerIsTheReplyToAConnect())

      // The server's own key, but for the future: not yet valid.
      clock.advance(seconds: 2 * UDPConnectionIDs.bucketSeconds)
      let early = frontend.connectionIDs.make(for: Self.localhost)
      clock.advance(seconds: -2 * UDPConnectionIDs.bucketSeconds)
      try await client.send(announce(early))
      #expect(try await client.nextAnswerIsTheReplyToAConnect())

      // Issued to 127.0.0.1, replayed from 127.0.0.2.
      let issued = try await client.connectionID()
      let elsewhere = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.2")
      try await elsewhere.send(announce(issued))
      try await elsewhere.send(UDPPackets.scrape(connectionID: issued, infoHashes: [torrent]))
      #expect(try await elsewhere.nextAnswerIsTheReplyToAConnect())

      // The same id is good from its own address, from any port: the MAC
      // covers the address only, because clients share one id across
      // their sockets (libtorrent caches it per tracker).
      let sibling = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      #expect(try await sibling.exchange(announce(issued)).readUInt32(at: 0) == 1)
    }
  }

  /// IPv4 peers 10.0.x.y or IPv6 peers fd00::x announced straight into `tracker`.
  func populate(_ tracker: Tracker, peers: Int, ipv6: Bool) async throws {
    for index in 0..<peers {
      let address: IPAddress =
        ipv6 ? .v6(high: 0xfd00 << 48, low: UInt64(index + 1)) : .v4(0x0A00_0000 + UInt32(index))
      _ = try await tracker.announce(
        AnnounceRequest(
          infoHash: torrent, peerID: makePeerID(10_000 + index),
          endpoint: PeerEndpoint(address: address, port: 6881), uploaded: 0, downloaded: 0,
          left: 1, transport: .udp))
    }
  }

  @Test func aHugeNumwantGetsAtMostOneDatagramAndTheConfiguredMaximum() async throws {
    let generous = Tracker(configuration: TrackerConfiguration(maxNumWant: 10_000))
    try await populate(generous, peers: 300, ipv6: false)
    try await withUDPFrontend(tracker: generous) { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let answer = try await client.exchange(
        UDPPackets.announce(
          connectionID: try await client.connectionID(), infoHash: torrent,
          peerID: makePeerID(1), left: 1, numWant: .max, port: 6881))
      #expect(answer.readUInt32(at: 0) == 1)
      #expect(answer.count == UDPPacketCodec.maxIPv4Payload, "full, never fragmented")
      #expect((answer.count - 20) / 6 == UDPPacketCodec.maxPeers(ipv6: false))
    }

    let standard = Tracker()
    try await populate(standard, peers: 300, ipv6: false)
    try await withUDPFrontend(tracker: standard) { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let answer = try await client.exchange(
        UDPPackets.announce(
          connectionID: try await client.connectionID(), infoHash: torrent,
          peerID: makePeerID(1), left: 1, numWant: .max, port: 6881))
      #expect((answer.count - 20) / 6 == standard.configuration.maxNumWant)
    }

    let ipv6 = Tracker(configuration: TrackerConfiguration(maxNumWant: 10_000))
    try await populate(ipv6, peers: 100, ipv6: true)
    try await withUDPFrontend(tracker: ipv6, host: "::1") { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "::1")
      let answer = try await client.exchange(
        UDPPackets.announce(
          connectionID: try await client.connectionID(), infoHash: torrent,
          peerID: makePeerID(1), left: 1, numWant: .max, port: 6881))
      #expect(answer.count <= UDPPacketCodec.maxIPv6Payload, "fits the IPv6 minimum MTU")
      #expect((answer.count - 20) / 18 == UDPPacketCodec.maxPeers(ipv6: true))
    }
  }

  @Test func scrapesWithHundredsOfHashesAreCapped() async throws {
    let hashes = (0..<300).map { makeInfoHash(UInt8(truncatingIfNeeded: $0)) }
    try await withUDPFrontend { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let id = try await client.connectionID()
      let full = try await client.exchange(
        UDPPackets.scrape(connectionID: id, infoHashes: Array(hashes.prefix(74))))
      #expect(full.readUInt32(at: 0) == 2)
      #expect(full.count == 8 + 74 * 12)
      // 6016 bytes: cut at the 2048-byte receive buffer, still named for what it is.
      let huge = try await client.exchange(UDPPackets.scrape(connectionID: id, infoHashes: hashes))
      #expect(huge.udpErrorMessage == "too many info hashes: at most 74 per packet")
    }
    // A tracker limit below the datagram limit applies too.
    let strict = Tracker(configuration: TrackerConfiguration(maxScrapeInfoHashes: 10))
    try await withUDPFrontend(tracker: strict) { _, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let answer = try await client.exchange(
        UDPPackets.scrape(
          connectionID: try await client.connectionID(), infoHashes: Array(hashes.prefix(11))))
      #expect(answer.udpErrorMessage == "too many info_hash values in one scrape (at most 10)")
    }
  }
}
