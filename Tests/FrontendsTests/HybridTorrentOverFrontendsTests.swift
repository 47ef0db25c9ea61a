import Accounting
import BitTorrent
import DeltaModel
import Registry
import Testing
import Tracker

/// A hybrid (v1 + v2) torrent over the real frontends, as libtorrent 2
/// announces it: once with the v1 hash and once with the v2 hash's first 20
/// bytes, the same peer id and the same counters. Registered with both
/// hashes, it is one swarm and one accounting entry: bytes are credited
/// once, a completion counts once, and a scrape of either hash reports the
/// same swarm.
@Suite("Hybrid and v2-only torrents over the real frontends")
struct HybridTorrentOverFrontendsTests {
  typealias Fixture = RegistryRefusalOverFrontendsTests

  static let v1 = makeInfoHash(0x71)
  static let v2 = V2InfoHash(Array(repeating: 0x72, count: 32))!
  static let v2Only = V2InfoHash(Array(repeating: 0x73, count: 32))!
  static let passkey = Fixture.alice.passkey.hex

  static let changes: [RegistryChange] = [
    .putUser(Fixture.alice),
    .putTorrent(RegisteredTorrent(infoHash: v1, v2InfoHash: v2)),
    .putTorrent(RegisteredTorrent(v2Only: v2Only)),
  ]

  /// Which hash a hybrid client announces first (libtorrent's order varies).
  enum Order: String, CaseIterable, Sendable {
    case v1First
    case v2First
    var hashes: [InfoHash] {
      self == .v1First ? [v1, v2.announceHash] : [v2.announceHash, v1]
    }
  }

  @Test(
    "both hashes of a hybrid: one swarm, one entry, bytes credited once",
    arguments: Fixture.Transport.allCases, Order.allCases)
  func bothHashesAreOneTorrent(transport: Fixture.Transport, order: Order) async throws {
    let harness = await Fixture.harness(changes: Self.changes)
    try await Fixture.withFrontends(harness) { clients in
      // A leecher's whole life, each announce sent with both hashes.
      let steps: [(left: Int64, downloaded: Int64, event: AnnounceEvent)] = [
        (1000, 0, .started), (400, 600, .none), (0, 1000, .completed), (0, 1000, .stopped),
      ]
      for step in steps {
        for hash in order.hashes {
          Fixture.expectAdmitted(
            try await clients.announce(
              transport, passkey: Self.passkey, infoHash: hash, left: step.left,
              downloaded: step.downloaded, event: step.event))
        }
        if step.event == .started {
          #expect(harness.tracker.peerStore.census().swarms == 1, "one swarm after both starts")
          #expect(harness.accounting.statistics().entries == 1, "one accounting entry")
        }
      }
    }
    let deltas = try await Fixture.flushedDeltas(harness)
    #expect(deltas.allSatisfy { $0.infoHash == Self.v1 }, "every delta under the v1 key")
    #expect(deltas.reduce(0) { $0 + $1.downloaded } == 1000, "downloaded credited once: \(deltas)")
    #expect(deltas.filter { $0.event == .completed }.count == 1, "one completion")
    #expect(harness.tracker.peerStore.scrape(Self.v1).downloaded == 1, "one snatch")
  }

  @Test("a scrape of either hash of a hybrid reports its one swarm, under the hash asked for")
  func scrapeOfEitherHash() async throws {
    let harness = await Fixture.harness(changes: Self.changes)
    try await Fixture.withFrontends(harness) { clients in
      Fixture.expectAdmitted(
        try await clients.announce(
          .http, passkey: Self.passkey, infoHash: Self.v2.announceHash, left: 0, event: .started))
      let scrape = try await clients.httpScrape(
        passkey: Self.passkey, [Self.v1, Self.v2.announceHash])
      #expect(
        try Fixture.scrapedFiles(scrape) == [Self.v1: [1, 0, 0], Self.v2.announceHash: [1, 0, 0]])
    }
  }

  @Test("a v2-only torrent is announced, credited and scraped under its announce hash")
  func v2OnlyTorrent() async throws {
    let harness = await Fixture.harness(changes: Self.changes)
    let hash = Self.v2Only.announceHash
    try await Fixture.withFrontends(harness) { clients in
      for (left, downloaded, event) in [
        (Int64(500), Int64(0), AnnounceEvent.started), (0, 500, .completed),
      ] {
        Fixture.expectAdmitted(
          try await clients.announce(
            .udp, passkey: Self.passkey, infoHash: hash, left: left, downloaded: downloaded,
            event: event))
      }
      let scrape = try await clients.httpScrape(passkey: Self.passkey, [hash])
      #expect(try Fixture.scrapedFiles(scrape) == [hash: [1, 0, 1]])
    }
    let deltas = try await Fixture.flushedDeltas(harness)
    #expect(deltas.allSatisfy { $0.infoHash == hash })
    #expect(deltas.reduce(0) { $0 + $1.downloaded } == 500)
  }
}
