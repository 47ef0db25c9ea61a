import BitTorrent
import PrivtrakTestSupport
import Synchronization
import Testing

@testable import Tracker

func makeRequest(
  torrent: UInt8 = 1, peer: UInt8, left: UInt64 = 100, event: AnnounceEvent = .none,
  numWant: Int = 50,
  address: String = "10.0.0.1", port: UInt16 = 6881
) -> AnnounceRequest {
  AnnounceRequest(
    infoHash: InfoHash(Array(repeating: torrent, count: 20))!,
    peerID: PeerID(Array(repeating: peer, count: 20))!,
    endpoint: PeerEndpoint(address: IPAddress(address)!, port: port),
    uploaded: 0, downloaded: 0, left: left, event: event, numWant: numWant)
}

@Suite struct TrackerTests {
  @Test func peersSeeEachOtherButNotThemselves() async throws {
    let tracker = Tracker()
    _ = try await tracker.announce(makeRequest(peer: 1, address: "10.0.0.1"))
    _ = try await tracker.announce(makeRequest(peer: 2, address: "10.0.0.2"))
    let third = try await tracker.announce(makeRequest(peer: 3, address: "2001:db8::3"))
    #expect(
      Set(third.peers4.map(\.peerID)) == [
        PeerID(Array(repeating: 1, count: 20))!, PeerID(Array(repeating: 2, count: 20))!,
      ])
    #expect(third.peers6.isEmpty)
    let first = try await tracker.announce(makeRequest(peer: 1, address: "10.0.0.1"))
    #expect(first.peers4.map(\.peerID) == [PeerID(Array(repeating: 2, count: 20))!])
    #expect(first.peers6.map(\.endpoint.address) == [IPAddress("2001:db8::3")!])
    #expect(first.incomplete == 3)
    #expect(first.complete == 0)
  }

  @Test func seedersReceiveOnlyLeechers() async throws {
    let tracker = Tracker()
    _ = try await tracker.announce(makeRequest(peer: 1, left: 0))
    _ = try await tracker.announce(makeRequest(peer: 2, left: 0))
    _ = try await tracker.announce(makeRequest(peer: 3, left: 5))
    let seeder = try await tracker.announce(makeRequest(peer: 1, left: 0))
    #expect(seeder.peers4.map(\.peerID) == [PeerID(Array(repeating: 3, count: 20))!])
    #expect(seeder.complete == 2)
    #expect(seeder.incomplete == 1)
  }

  @Test func stoppedRemovesAndCompletedCountsSnatch() async throws {
    let tracker = Tracker()
    _ = try await tracker.announce(makeRequest(peer: 1))
    let done = try await tracker.announce(makeRequest(peer: 1, left: 0, event: .completed))
    #expect(done.downloaded == 1)
    #expect(done.complete == 1)
    let stopped = try await tracker.announce(makeRequest(peer: 1, left: 0, event: .stopped))
    #expect(stopped.complete == 0)
    #expect(stopped.peers4.isEmpty)
    let scrape = try await tracker.scrape(
      ScrapeRequest(infoHashes: [InfoHash(Array(repeating: 1, count: 20))!], clientAddress: .v4(1)))
    #expect(scrape.files.first?.stats == ScrapeStats(complete: 0, incomplete: 0, downloaded: 1))
  }

  @Test func aSnatchIsTheMoveFromLeechingToSeedingWhateverTheEvent() async throws {
    let tracker = Tracker()
    let torrent = ScrapeRequest(
      infoHashes: [InfoHash(Array(repeating: 1, count: 20))!], clientAddress: .v4(1))
    // Dual stack: every event twice, from an IPv4 and an IPv6 address, one peer id.
    for (left, event) in [(UInt64(100), AnnounceEvent.started), (0, .completed), (0, .none)] {
      for address in ["10.0.0.1", "2001:db8::1"] {
        _ = try await tracker.announce(
          makeRequest(peer: 1, left: left, event: event, address: address))
      }
    }
    #expect(try await tracker.scrape(torrent).files.first?.stats.downloaded == 1)
    // Never says completed: leeching, then stopped with nothing left (aria2).
    _ = try await tracker.announce(makeRequest(peer: 2, left: 100, event: .started))
    _ = try await tracker.announce(makeRequest(peer: 2, left: 0, event: .stopped))
    #expect(try await tracker.scrape(torrent).files.first?.stats.downloaded == 2)
    // Starts as a seeder, says completed anyway: not a download.
    _ = try await tracker.announce(makeRequest(peer: 3, left: 0, event: .started))
    _ = try await tracker.announce(makeRequest(peer: 3, left: 0, event: .completed))
    // Stopped while still leeching: not a download either.
    _ = try await tracker.announce(makeRequest(peer: 4, left: 100, event: .started))
    _ = try await tracker.announce(makeRequest(peer: 4, left: 50, event: .stopped))
    #expect(try await tracker.scrape(torrent).files.first?.stats.downloaded == 2)
  }

  @Test func numWantIsClampedAndHonoured() async throws {
    let tracker = Tracker(configuration: TrackerConfiguration(defaultNumWant: 3, maxNumWant: 5))
    for peer in UInt8(1)...10 { _ = try await tracker.announce(makeRequest(peer: peer)) }
    #expect(try await tracker.announce(makeRequest(peer: 1, numWant: 1_000_000)).peers4.count == 5)
    #expect(try await tracker.announce(makeRequest(peer: 1, numWant: -1)).peers4.count == 3)
    #expect(try await tracker.announce(makeRequest(peer: 1, numWant: 2)).peers4.count == 2)
    #expect(try await tracker.announce(makeRequest(peer: 1, numWant: 0)).peers4.isEmpty)
  }

  @Test func answerWindowsRotateOverTheWholeSwarm() async throws {
    let tracker = Tracker()
    for peer in UInt8(1)...10 {
      _ = try await tracker.announce(makeRequest(peer: peer, numWant: 0))
    }
    // Peer 1 asks for 3 at a time: within four answers it has been handed
    // every one of the 9 others, and never itself.
    var seen: [PeerID: Int] = [:]
    for _ in 0..<4 {
      let answer = try await tracker.announce(makeRequest(peer: 1, numWant: 3))
      #expect(answer.peers4.count == 3)
      for entry in answer.peers4 { seen[entry.peerID, default: 0] += 1 }
    }
    #expect(seen[PeerID(Array(repeating: 1, count: 20))!] == nil)
    #expect(Set(seen.keys) == Set((UInt8(2)...10).map { PeerID(Array(repeating: $0, count: 20))! }))
  }

  @Test func garbageCollectionDropsSilentPeersOnly() async throws {
    let clock = ManualTestClock()
    let tracker = Tracker(
      configuration: TrackerConfiguration(peerLifetime: 60, shardCount: 4), clock: clock)
    _ = try await tracker.announce(makeRequest(torrent: 1, peer: 1))
    _ = try await tracker.announce(makeRequest(torrent: 2, peer: 2))
    clock.advance(seconds: 50)
    _ = try await tracker.announce(makeRequest(torrent: 1, peer: 3))
    #expect(tracker.collectGarbage() == 0)
    clock.advance(seconds: 20)
    #expect(tracker.collectGarbage() == 2)
    let census = tracker.peerStore.census()
    #expect(census.swarms == 1)
    #expect(census.leechers == 1)
  }

  @Test func scrapeRejectsEmptyAndOversizedRequests() async {
    let tracker = Tracker(configuration: TrackerConfiguration(maxScrapeInfoHashes: 2))
    let hash = InfoHash(Array(repeating: 9, count: 20))!
    await #expect(throws: TrackerFailure.self) {
      try await tracker.scrape(ScrapeRequest(infoHashes: [], clientAddress: .v4(1)))
    }
    await #expect(throws: TrackerFailure.self) {
      try await tracker.scrape(
        ScrapeRequest(infoHashes: [hash, hash, hash], clientAddress: .v4(1)))
    }
  }

  @Test func lowestSeederCountSurvivesStateFlips() async throws {
    let tracker = Tracker()
    _ = try await tracker.announce(makeRequest(peer: 1, left: 10))
    _ = try await tracker.announce(makeRequest(peer: 1, left: 0))
    _ = try await tracker.announce(makeRequest(peer: 1, left: 0))
    let response = try await tracker.announce(makeRequest(peer: 2, left: 10))
    #expect(response.complete == 1)
    #expect(response.incomplete == 1)
  }
}
