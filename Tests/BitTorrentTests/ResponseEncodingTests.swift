import Testing

@testable import BitTorrent

@Suite struct ResponseEncodingTests {
  let peerA = PeerListEntry(
    peerID: PeerID(Array(repeating: UInt8(ascii: "A"), count: 20))!,
    endpoint: PeerEndpoint(address: IPAddress("10.1.2.3")!, port: 6881))
  let peerB = PeerListEntry(
    peerID: PeerID(Array(repeating: UInt8(ascii: "B"), count: 20))!,
    endpoint: PeerEndpoint(address: IPAddress("2001:db8::1")!, port: 51413))

  func response() -> AnnounceResponse {
    AnnounceResponse(
      interval: 1800, minInterval: 900, complete: 1, incomplete: 1, downloaded: 7, peers4: [peerA],
      peers6: [peerB])
  }

  @Test func compactAnnounceHasPeersAndPeers6() throws {
    let body = try BencodeDecoder().decode(
      HTTPTrackerBody.announce(response(), compact: true, noPeerID: false))
    #expect(body["interval"]?.integer == 1800)
    #expect(body["min interval"]?.integer == 900)
    #expect(body["complete"]?.integer == 1)
    #expect(body["incomplete"]?.integer == 1)
    #expect(body["downloaded"]?.integer == 7)
    guard case .bytes(let peers)? = body["peers"], case .bytes(let peers6)? = body["peers6"] else {
      Issue.record("missing compact peers")
      return
    }
    #expect(peers == [10, 1, 2, 3, 0x1a, 0xe1])
    #expect(CompactPeers.decode(peers6, addressLength: 16) == [peerB.endpoint])
  }

  @Test func nonCompactAnnounceListsDictionaries() throws {
    let body = try BencodeDecoder().decode(
      HTTPTrackerBody.announce(response(), compact: false, noPeerID: false))
    guard case .list(let peers)? = body["peers"] else {
      Issue.record("peers is not a list")
      return
    }
    #expect(peers.count == 2)
    #expect(peers[0]["ip"]?.text == "10.1.2.3")
    #expect(peers[0]["port"]?.integer == 6881)
    #expect(peers[0]["peer id"] == .bytes(peerA.peerID.bytes))
    #expect(peers[1]["ip"]?.text == "2001:db8::1")
    let withoutIDs = try BencodeDecoder().decode(
      HTTPTrackerBody.announce(response(), compact: false, noPeerID: true))
    guard case .list(let bare)? = withoutIDs["peers"] else { return }
    #expect(bare[0]["peer id"] == nil)
  }

  @Test func scrapeListsEachHashOnceSorted() throws {
    let first = InfoHash(Array(repeating: 1, count: 20))!
    let second = InfoHash(Array(repeating: 2, count: 20))!
    let stats = ScrapeStats(complete: 3, incomplete: 4, downloaded: 5)
    let body = try BencodeDecoder().decode(
      HTTPTrackerBody.scrape(
        ScrapeResponse(files: [(second, stats), (first, stats), (second, stats)])))
    guard case .dictionary(let files)? = body["files"] else {
      Issue.record("files missing")
      return
    }
    #expect(files.map(\.key) == [first.bytes, second.bytes])
    #expect(files[0].value["complete"]?.integer == 3)
    #expect(files[0].value["incomplete"]?.integer == 4)
    #expect(files[0].value["downloaded"]?.integer == 5)
  }
}
