import BitTorrent
import Frontends
import NIOCore
import PrivtrakTestSupport
import Testing
import Tracker

@Suite("UDPPacketCodec")
struct UDPPacketCodecTests {
  let client = IPAddress("198.51.100.7")!
  let infoHash = makeInfoHash(3)
  let peerID = makePeerID(5)

  func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

  func announceFailure(_ bytes: [UInt8]) -> String? {
    do {
      _ = try UDPPacketCodec.parseAnnounce(buffer(bytes), client: client)
      return nil
    } catch {
      return error.reason
    }
  }

  @Test func headerNeedsSixteenBytes() {
    #expect(UDPPacketCodec.parseHeader(buffer(Array(repeating: 0, count: 15))) == nil)
    let header = UDPPacketCodec.parseHeader(buffer(UDPPackets.connect(transactionID: 0xdead_beef)))
    #expect(
      header
        == .init(connectionID: UDPPacketCodec.protocolID, action: 0, transactionID: 0xdead_beef))
  }

  @Test func decodesAnAnnounce() throws {
    let packet = UDPPackets.announce(
      connectionID: 1, infoHash: infoHash, peerID: peerID, downloaded: 10, left: 20, uploaded: 30,
      event: 2,
      key: 0x1234, numWant: 25, port: 6881)
    let request = try UDPPacketCodec.parseAnnounce(buffer(packet), client: client)
    #expect(request.infoHash == infoHash)
    #expect(request.peerID == peerID)
    #expect(request.downloaded == 10 && request.left == 20 && request.uploaded == 30)
    #expect(request.event == .started)
    #expect(request.key == 0x1234)
    #expect(request.numWant == 25)
    #expect(request.endpoint == PeerEndpoint(address: client, port: 6881))
    #expect(request.transport == .udp)
    #expect(request.passkey == nil)
  }

  @Test func numwantDefaultPassesThroughAndLargeIsCappedToOneDatagram() throws {
    let base = UDPPackets.announce(
      connectionID: 1, infoHash: infoHash, peerID: peerID, left: 0, numWant: -1, port: 1)
    #expect(try UDPPacketCodec.parseAnnounce(buffer(base), client: client).numWant == -1)
    let huge = UDPPackets.announce(
      connectionID: 1, infoHash: infoHash, peerID: peerID, left: 0, numWant: 5000, port: 1)
    #expect(
      try UDPPacketCodec.parseAnnounce(buffer(huge), client: client).numWant
        == UDPPacketCodec.maxPeers(ipv6: false))
    #expect(try UDPPacketCodec.parseAnnounce(buffer(huge), client: IPAddress("::1")!).numWant == 67)
  }

  @Test func rejectsBadFieldsWithTheirOwnReason() {
    func packet(
      downloaded: Int64 = 0, left: Int64 = 0, uploaded: Int64 = 0, event: UInt32 = 0,
      port: UInt16 = 1
    ) -> [UInt8] {
      UDPPackets.announce(
        connectionID: 1, infoHash: infoHash, peerID: peerID, downloaded: downloaded, left: left,
        uploaded: uploaded, event: event, port: port)
    }
    #expect(announceFailure(packet(downloaded: -1)) == "invalid downloaded: negative")
    #expect(announceFailure(packet(left: .min)) == "invalid left: negative")
    #expect(announceFailure(packet(uploaded: -9)) == "invalid uploaded: negative")
    #expect(announceFailure(packet(event: 4)) == "unknown event: 4")
    #expect(announceFailure(packet(port: 0)) == "invalid port: 0")
    #expect(announceFailure(Array(packet().prefix(97))) == "truncated announce: 97 of 98 bytes")
  }

  @Test func readsBEP41URLDataAcrossOptions() throws {
    let options =
      [0x1, 0x2, 4] + Array("/abc".utf8) + [0x1, 0x2, 11] + Array("def/announce".utf8.prefix(11))
      + [0x2, 1] + Array("e".utf8) + [0x0, 0x2, 3, 0x41, 0x41, 0x41]
    let packet = UDPPackets.announce(
      connectionID: 1, infoHash: infoHash, peerID: peerID, left: 0, port: 1, options: options)
    let request = try UDPPacketCodec.parseAnnounce(buffer(packet), client: client)
    // Everything after EndOfOptions is ignored.
    #expect(request.passkey == "abcdef")
    let suffixForm = UDPPackets.announce(
      connectionID: 1, infoHash: infoHash, peerID: peerID, left: 0, port: 1,
      options: UDPPackets.urlData("/announce/k3y?x=1"))
    #expect(try UDPPacketCodec.parseAnnounce(buffer(suffixForm), client: client).passkey == "k3y")
  }

  @Test func rejectsBadURLData() {
    let truncated = UDPPackets.announce(
      connectionID: 1, infoHash: infoHash, peerID: peerID, left: 0, port: 1,
      options: [0x2, 10, 0x2f])
    #expect(announceFailure(truncated) == "truncated URL data option")
    let scrapePath = UDPPackets.announce(
      connectionID: 1, infoHash: infoHash, peerID: peerID, left: 0, port: 1,
      options: UDPPackets.urlData("/k/scrape"))
    #expect(announceFailure(scrapePath) == "invalid URL data: not an announce path")
    // An unknown option type ends parsing rather than failing.
    let unknown = UDPPackets.announce(
      connectionID: 1, infoHash: infoHash, peerID: peerID, left: 0, port: 1, options: [0x7, 0x2, 1])
    #expect(announceFailure(unknown) == nil)
  }

  @Test func decodesScrapesUpToTheLimit() throws {
    let hashes = (0..<74).map { makeInfoHash(UInt8($0)) }
    let request = try UDPPacketCodec.parseScrape(
      buffer(UDPPackets.scrape(connectionID: 1, infoHashes: hashes)), client: client)
    #expect(request.infoHashes == hashes)
    #expect(request.transport == .udp)
    #expect(throws: TrackerFailure("too many info hashes: at most 74 per packet")) {
      try UDPPacketCodec.parseScrape(
        self.buffer(UDPPackets.scrape(connectionID: 1, infoHashes: hashes + [makeInfoHash(99)])),
        client: self.client)
    }
    #expect(throws: TrackerFailure("invalid scrape: info hashes must be 20 bytes each")) {
      try UDPPacketCodec.parseScrape(
        self.buffer(UDPPackets.scrape(connectionID: 1, infoHashes: [self.infoHash]) + [1]),
        client: self.client)
    }
  }

  @Test func encodesAnswers() {
    var buffer = ByteBuffer()
    let response = AnnounceResponse(
      interval: 1800, minInterval: 900, complete: 2, incomplete: 3, downloaded: 4,
      peers4: [
        PeerListEntry(
          peerID: peerID, endpoint: PeerEndpoint(address: IPAddress("10.0.0.1")!, port: 0x1A2B))
      ],
      peers6: [
        PeerListEntry(
          peerID: peerID, endpoint: PeerEndpoint(address: IPAddress("2001:db8::1")!, port: 80))
      ])
    UDPPacketCodec.writeAnnounce(response, transactionID: 9, ipv6: false, into: &buffer)
    #expect(
      Array(buffer.readableBytesView) == [
        0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0x07, 0x08, 0, 0, 0, 3, 0, 0, 0, 2, 10, 0, 0, 1, 0x1A, 0x2B,
      ])
    buffer.clear()
    UDPPacketCodec.writeAnnounce(response, transactionID: 9, ipv6: true, into: &buffer)
    #expect(buffer.readableBytes == 20 + 18)
    buffer.clear()
    UDPPacketCodec.writeError(transactionID: 1, message: "unknown action: 7", into: &buffer)
    #expect(
      Array(buffer.readableBytesView) == [0, 0, 0, 3, 0, 0, 0, 1] + Array("unknown action: 7".utf8))
  }

  @Test func neverCrashesOnArbitraryPackets() {
    var generator = SplitMix64(seed: 0xbeef)
    for _ in 0..<5000 {
      let length = Int.random(in: 0..<200, using: &generator)
      let bytes = buffer((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
      _ = UDPPacketCodec.parseHeader(bytes)
      _ = try? UDPPacketCodec.parseAnnounce(bytes, client: client)
      _ = try? UDPPacketCodec.parseScrape(bytes, client: client)
    }
  }
}

@Suite("UDPConnectionIDs")
struct UDPConnectionIDsTests {
  let address = IPAddress("192.0.2.10")!

  @Test func idsAreBoundToAddressPortAndTime() {
    let clock = ManualTestClock()
    let ids = UDPConnectionIDs(secret: Array(repeating: 7, count: 32), clock: clock)
    let id = ids.make(for: address)
    #expect(ids.isValid(id, for: address))
    #expect(!ids.isValid(id, for: IPAddress("192.0.2.11")!))
    #expect(!ids.isValid(id &+ 1, for: address))
    let other = UDPConnectionIDs(secret: Array(repeating: 8, count: 32), clock: clock)
    #expect(!other.isValid(id, for: address), "another secret rejects the id")
  }

  @Test func ipv6IdsAreBoundToTheWholeAddress() {
    let clock = ManualTestClock()
    let ids = UDPConnectionIDs(secret: Array(repeating: 7, count: 32), clock: clock)
    let v6 = IPAddress("2001:db8::1")!
    let id = ids.make(for: v6)
    #expect(ids.isValid(id, for: v6))
    #expect(!ids.isValid(id, for: IPAddress("2001:db8::2")!))
    #expect(!ids.isValid(id, for: IPAddress("2001:db9::1")!), "the high half counts too")
    // An IPv4 address and the IPv4-compatible IPv6 address of the same bits differ.
    #expect(!ids.isValid(ids.make(for: address), for: IPAddress("::192.0.2.10")!))
  }

  @Test func idsLiveBetweenOneAndTwoBuckets() {
    let clock = ManualTestClock(milliseconds: 1_700_000_000_000 - 1_700_000_000_000 % 60_000)
    let ids = UDPConnectionIDs(secret: [1, 2, 3], clock: clock)
    let id = ids.make(for: address)
    clock.advance(seconds: 119)
    #expect(ids.isValid(id, for: address), "valid through the next bucket")
    clock.advance(seconds: 1)
    #expect(!ids.isValid(id, for: address), "stale after two buckets")
  }
}
