import Accounting
import BitTorrent
import DeltaModel
import Testing
import Tracker

/// The announce sequences of chihaya-privtrak-middleware's test table
/// (privtrak_test.go), replayed. That test derived the user from the first
/// 16 bytes of the peer id; ``PeerIDPrefixIdentifier`` does the same here,
/// which also shows that identification is pluggable. Where privtrak
/// differs by design, the test says so. One difference runs through the
/// table: its clients go from `left > 0` to `left == 0`, which privtrak
/// records as the snatch (event `completed`, issue #15) whatever event
/// they send; the original carried the client's event.
@Suite("chihaya-privtrak-middleware sequences")
struct ChihayaSequenceTests {
  /// The original's test identifier: the peer id's first 16 bytes are the user.
  struct PeerIDPrefixIdentifier: UserIdentifier {
    func identify(_ request: AnnounceRequest) throws(TrackerFailure) -> UserID {
      UserID(request.peerID.bytes.prefix(16))!
    }

    func identify(_ request: ScrapeRequest) throws(TrackerFailure) -> UserID {
      throw TrackerFailure("scrape has no peer id", kind: .forbidden)
    }
  }

  // The original's fixtures: ih1, pID1 → id1, pID2 → id2.
  static let ih1 = InfoHash(Array("aaaaaaaaaabbbbbbbbbb".utf8))!
  static let pID1 = PeerID(Array("aaaaaaaaaabbbbbbbbbb".utf8))!
  static let pID2 = PeerID(Array("bbbbbbbbbbaaaaaaaaaa".utf8))!
  static let id1 = UserID(Array("aaaaaaaaaabbbbbb".utf8))!
  static let id2 = UserID(Array("bbbbbbbbbbaaaaaa".utf8))!

  private func replay(
    _ announces: [(
      peerID: PeerID, uploaded: UInt64, downloaded: UInt64, left: UInt64, event: AnnounceEvent
    )],
    secondsBetween: Int64 = 0, configuration: AccountingConfiguration = .forTesting()
  ) async throws -> [Delta] {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(
      configuration: configuration, sink: sink, identifier: PeerIDPrefixIdentifier())
    for announce in announces {
      _ = try await harness.tracker.announce(
        AnnounceRequest(
          infoHash: Self.ih1, peerID: announce.peerID,
          endpoint: PeerEndpoint(address: .v4(0x7f00_0001), port: 6881),
          uploaded: announce.uploaded,
          downloaded: announce.downloaded, left: announce.left, event: announce.event))
      harness.trackerClock.advance(seconds: secondsBetween)
    }
    // The original stopped the middleware to flush; here: flush.
    #expect(await harness.middleware.flush())
    return sink.deltas
  }

  @Test("1: started at 0/0, then 0/100 → one delta down 100, event completed (original: none)")
  func startThenProgress() async throws {
    let deltas = try await replay([
      (Self.pID1, 0, 0, 100, .started),
      (Self.pID1, 0, 100, 0, .none),
    ])
    #expect(deltas.count == 1)
    #expect(deltas.first?.userID == Self.id1)
    #expect(deltas.first?.infoHash == Self.ih1)
    #expect(deltas.first?.uploaded == 0)
    #expect(deltas.first?.downloaded == 100)
    #expect(deltas.first?.event == .completed, "left went 100 → 0: the snatch")
  }

  @Test(
    "2: started at 1000/0, stopped at 1200/100 → one delta 200/100, event completed (original: stopped)"
  )
  func startThenStop() async throws {
    let deltas = try await replay([
      (Self.pID1, 1000, 0, 100, .started),
      (Self.pID1, 1200, 100, 0, .stopped),
    ])
    #expect(deltas.map(\.userID) == [Self.id1])
    #expect(deltas.map(\.uploaded) == [200])
    #expect(deltas.map(\.downloaded) == [100])
    // A stop with left 0 after leeching is the snatch; without emit_stopped
    // the stop itself moved nothing more, so it is this one delta.
    #expect(deltas.map(\.event) == [.completed])
  }

  /// The original expected id2's delta to be up 300 / down −800: its
  /// downloaded counter fell from 900 to 100, and it subtracted blindly.
  /// privtrak treats a counter below its baseline as a new client session:
  /// the delta is the reported totals (1200/100), flagged `reset`, never negative.
  @Test(
    "3: two users interleaved, one counter drops → id1 200/100; id2 1200/100 reset (original: 300/−800); both snatch"
  )
  func interleavedUsersWithCounterDrop() async throws {
    let deltas = try await replay([
      (Self.pID1, 1000, 0, 100, .started),
      (Self.pID2, 900, 900, 100, .none),
      (Self.pID1, 1200, 100, 0, .stopped),
      (Self.pID2, 1200, 100, 0, .none),
    ])
    let byUser = Dictionary(grouping: deltas, by: \.userID)
    #expect(byUser.count == 2)
    let first = try #require(byUser[Self.id1]?.first)
    #expect(byUser[Self.id1]?.count == 1)
    #expect(
      first.uploaded == 200 && first.downloaded == 100 && first.event == .completed && !first.reset)
    let second = try #require(byUser[Self.id2]?.first)
    #expect(byUser[Self.id2]?.count == 1)
    #expect(second.uploaded == 1200 && second.downloaded == 100 && second.event == .completed)
    #expect(second.reset, "privtrak flags the counter drop instead of emitting −800")
  }

  /// Designed in the spirit of the table: a full seeding session with
  /// periodic announces, which the original had no row for. privtrak adds
  /// the `seeding` flag and the interval so seed time can be accounted.
  @Test("4: start → progress → complete → periodic seeding announces → stop")
  func seedingSession() async throws {
    let deltas = try await replay(
      [
        (Self.pID1, 0, 0, 1000, .started),
        (Self.pID1, 100, 600, 400, .none),
        (Self.pID1, 150, 1000, 0, .completed),
        (Self.pID1, 400, 1000, 0, .none),
        (Self.pID1, 400, 1000, 0, .none),  // seeding, nobody leeched: no delta
        (Self.pID1, 900, 1000, 0, .stopped),
      ], secondsBetween: 1800)
    #expect(deltas.map(\.event) == [.none, .completed, .none, .stopped])
    #expect(deltas.map(\.uploaded) == [100, 50, 250, 500])
    #expect(deltas.map(\.downloaded) == [600, 400, 0, 0])
    #expect(deltas.map(\.seeding) == [false, true, true, true])
    // Each interval runs from the entry's previous announce; the byte-less
    // one emitted nothing but still moved lastSeen, so the stop says 1800, not 3600.
    #expect(deltas.map(\.intervalSeconds) == [1800, 1800, 1800, 1800])
    #expect(deltas.allSatisfy { $0.userID == Self.id1 && !$0.reset })
  }

  /// The original inserted an entry for a stop it had never seen (left
  /// behind until GC) and emitted nothing; privtrak stores nothing either.
  @Test("stop without a prior announce: nothing emitted, nothing stored")
  func stopWithoutPrior() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink, identifier: PeerIDPrefixIdentifier())
    _ = try await harness.tracker.announce(
      AnnounceRequest(
        infoHash: Self.ih1, peerID: Self.pID1,
        endpoint: PeerEndpoint(address: .v4(0x7f00_0001), port: 6881),
        uploaded: 5000, downloaded: 5000, left: 0, event: .stopped))
    await harness.middleware.flush()
    #expect(sink.deltas.isEmpty)
    #expect(harness.middleware.statistics().entries == 0)
    #expect(!harness.middleware.knows(user: Self.id1, infoHash: Self.ih1))
  }
}
