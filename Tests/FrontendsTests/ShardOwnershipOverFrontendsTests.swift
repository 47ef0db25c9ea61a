import Accounting
import BitTorrent
import DeltaModel
import Registry
import Testing
import Tracker

/// An instance that is one shard of three, over the real frontends: it
/// serves the torrents it owns, refuses the others with a reason and
/// records nothing for them, and keeps a hybrid torrent's two hashes on
/// the shard of its key.
@Suite("Shard ownership over the real frontends")
struct ShardOwnershipOverFrontendsTests {
  typealias Fixture = RegistryRefusalOverFrontendsTests

  static let count = 3
  static let passkey = Fixture.alice.passkey.hex

  /// The first generated hash whose owner is `shard`.
  static func hash(ownedBy shard: Int, skipping skipped: Set<InfoHash> = []) -> InfoHash {
    (UInt8(0)...UInt8(255)).lazy.map(makeInfoHash).first {
      TrackerShard.owner(of: $0, count: count) == shard && !skipped.contains($0)
    }!
  }

  /// A v2 hash whose announce hash is owned by `shard`.
  static func v2Hash(ownedBy shard: Int) -> V2InfoHash {
    (UInt8(0)...UInt8(255)).lazy.map { V2InfoHash(Array(repeating: $0, count: 32))! }.first {
      TrackerShard.owner(of: $0.announceHash, count: count) == shard
    }!
  }

  static let owned = hash(ownedBy: 0)
  static let foreign = hash(ownedBy: 1)
  /// A hybrid whose key (v1) is shard 0's and whose v2 hash points at shard 1.
  static let hybridV1 = hash(ownedBy: 0, skipping: [owned])
  static let hybridV2 = v2Hash(ownedBy: 1)

  static let changes: [RegistryChange] = [
    .putUser(Fixture.alice),
    .putTorrent(RegisteredTorrent(infoHash: owned)),
    .putTorrent(RegisteredTorrent(infoHash: foreign)),
    .putTorrent(RegisteredTorrent(infoHash: hybridV1, v2InfoHash: hybridV2)),
  ]

  static func harness(shard index: Int) async -> Fixture.Harness {
    await Fixture.harness(changes: changes, shard: TrackerShard(index: index, count: count)!)
  }

  static let wrongShard =
    "wrong shard: this tracker instance is shard 0 of 3 and does not serve this torrent;"
    + " use the announce URL your tracker's site gave you"

  @Test(
    "an owned torrent is served; another shard's is refused with the reason and leaves nothing",
    arguments: Fixture.Transport.allCases)
  func ownedServedForeignRefused(transport: Fixture.Transport) async throws {
    let harness = await Self.harness(shard: 0)
    try await Fixture.withFrontends(harness) { clients in
      Fixture.expectRefused(
        try await clients.announce(
          transport, passkey: Self.passkey, infoHash: Self.foreign, left: 100, event: .started),
        Self.wrongShard)
      Fixture.expectRefused(
        try await clients.announce(
          transport, passkey: Self.passkey, infoHash: Self.foreign, left: 0, uploaded: 500,
          event: .completed),
        Self.wrongShard)
      Fixture.expectAdmitted(
        try await clients.announce(
          transport, passkey: Self.passkey, infoHash: Self.owned, left: 100, event: .started))
    }
    #expect(harness.tracker.peerStore.scrape(Self.foreign).incomplete == 0, "no foreign peer")
    #expect(harness.tracker.peerStore.scrape(Self.owned).incomplete == 1)
    let deltas = try await Fixture.flushedDeltas(harness)
    #expect(!deltas.contains { $0.infoHash == Self.foreign }, "no delta for a foreign torrent")
    #expect(harness.accounting.statistics().entries == 1, "only the owned torrent's entry")
  }

  /// libtorrent 2 announces a hybrid with both hashes to the same URL; a
  /// proxy routing by the hash sends the v2 announce to the v2 hash's
  /// shard. The key's shard keeps one swarm and one entry; the other
  /// shard answers the v2 announce with an empty success and keeps nothing.
  @Test("a hybrid belongs to its key's shard; its v2 announce elsewhere gets an empty success")
  func hybridStaysOnItsKeysShard() async throws {
    let owner = await Self.harness(shard: 0)
    let other = await Self.harness(shard: 1)
    try await Fixture.withFrontends(owner) { clients in
      for (left, downloaded, event) in [
        (Int64(1000), Int64(0), AnnounceEvent.started), (0, 1000, .completed),
      ] {
        for hash in [Self.hybridV1, Self.hybridV2.announceHash] {
          Fixture.expectAdmitted(
            try await clients.announce(
              .http, passkey: Self.passkey, infoHash: hash, left: left, downloaded: downloaded,
              event: event))
        }
      }
    }
    try await Fixture.withFrontends(other) { clients in
      for transport in Fixture.Transport.allCases {
        Fixture.expectSilentSuccess(
          try await clients.announce(
            transport, passkey: Self.passkey, infoHash: Self.hybridV2.announceHash, left: 0,
            downloaded: 1000, event: .completed))
        let refused = try await clients.announce(
          transport, passkey: Self.passkey, infoHash: Self.hybridV1, left: 0, event: .started)
        #expect(
          refused.failure?.hasPrefix("wrong shard: this tracker instance is shard 1 of 3") == true)
      }
    }
    let deltas = try await Fixture.flushedDeltas(owner)
    #expect(deltas.allSatisfy { $0.infoHash == Self.hybridV1 }, "every delta under the key")
    #expect(deltas.reduce(0) { $0 + $1.downloaded } == 1000, "credited once")
    #expect(owner.tracker.peerStore.scrape(Self.hybridV1).downloaded == 1)
    try await Fixture.expectNothingRecorded(other, on: Self.hybridV1)
  }

  @Test("an HTTP scrape reports owned torrents only; a scrape of none is refused")
  func httpScrape() async throws {
    let harness = await Self.harness(shard: 0)
    try await Fixture.withFrontends(harness) { clients in
      Fixture.expectAdmitted(
        try await clients.announce(
          .http, passkey: Self.passkey, infoHash: Self.owned, left: 0, event: .started))
      let mixed = try await clients.httpScrape(
        passkey: Self.passkey, [Self.foreign, Self.owned, Self.hybridV2.announceHash])
      #expect(
        try Fixture.scrapedFiles(mixed)
          == [Self.owned: [1, 0, 0], Self.hybridV2.announceHash: [0, 0, 0]],
        "the hybrid's v2 hash is reported by its key's shard")
      let foreign = try await clients.httpScrape(passkey: Self.passkey, [Self.foreign])
      #expect(foreign.failureReason == Self.wrongShard)
    }
  }

  @Test("a UDP scrape keeps every slot: another shard's torrents report no figures")
  func udpScrape() async throws {
    let harness = await Fixture.harness(
      modes: RegistryModes(users: .passkeyIsUserID, torrents: .registered),
      changes: Self.changes, shard: TrackerShard(index: 0, count: Self.count)!)
    try await Fixture.withFrontends(harness) { clients in
      Fixture.expectAdmitted(
        try await clients.announce(
          .udp, passkey: Self.passkey, infoHash: Self.owned, left: 0, event: .started))
      // Mixed: answered, the foreign slot kept (empty), the owned one in place.
      let answer = try await clients.udpScrape([Self.foreign, Self.owned])
      #expect(answer.readUInt32(at: 0) == 2, "a scrape answer: \(answer)")
      let figures = stride(from: 8, to: answer.count - 11, by: 12).map {
        [answer.readUInt32(at: $0), answer.readUInt32(at: $0 + 4), answer.readUInt32(at: $0 + 8)]
      }
      #expect(figures == [[0, 0, 0], [1, 0, 0]])
      let refused = try await clients.udpScrape([Self.foreign])
      #expect(refused.readUInt32(at: 0) == 3, "an error packet")
      #expect(refused.udpErrorMessage == Self.wrongShard)
    }
  }
}
