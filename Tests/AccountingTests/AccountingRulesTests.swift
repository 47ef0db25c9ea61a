import Accounting
import BitTorrent
import DeltaModel
import PrivtrakTestSupport
import Testing
import Tracker

/// One test per row of the "Accounting rules" table in design.md, each
/// driven through the real tracker hook chain.
@Suite("Accounting rules table")
struct AccountingRulesTests {
  let client = TestClient(user: 1, torrent: 1)

  @Test("first announce of an entry: no delta, baseline = counters as reported")
  func firstAnnounceStoresCountersAsReported() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 500, downloaded: 200, event: .started)
    #expect(await harness.middleware.flush())
    #expect(sink.deltas.isEmpty)
    #expect(harness.middleware.knows(user: client.userID, infoHash: client.infoHash))
    #expect(harness.middleware.statistics().entries == 1)

    // The next delta is measured from the reported counters.
    try await harness.announce(client, uploaded: 650, downloaded: 260)
    await harness.middleware.flush()
    #expect(sink.deltas.map(\.uploaded) == [150])
    #expect(sink.deltas.map(\.downloaded) == [60])
  }

  @Test(
    "emit_idle_announces: a byte-less announce of a known entry emits a zero-byte delta with its interval"
  )
  func idleAnnouncesEmitWhenAskedTo() async throws {
    var configuration = AccountingConfiguration.forTesting()
    configuration.emitIdleAnnounces = true
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(configuration: configuration, sink: sink)
    try await harness.announce(client, uploaded: 0, downloaded: 0, left: 0, event: .started)
    harness.trackerClock.advance(seconds: 1800)
    try await harness.announce(client, uploaded: 0, downloaded: 0, left: 0)
    harness.trackerClock.advance(seconds: 1700)
    try await harness.announce(client, uploaded: 10, downloaded: 0, left: 0)
    await harness.middleware.flush()
    // The first announce has no baseline: still nothing; then every interval.
    #expect(sink.deltas.map(\.intervalSeconds) == [1800, 1700])
    #expect(sink.deltas.map(\.uploaded) == [0, 10])
    #expect(sink.deltas.allSatisfy { $0.seeding && $0.event == .none })
  }

  @Test(
    "later announce with counters ≥ baseline: current − baseline, event carried, baseline advanced")
  func laterAnnounceEmitsDifferenceAndAdvances() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 0, downloaded: 0, left: 1000, event: .started)
    harness.trackerClock.advance(seconds: 1800)
    try await harness.announce(client, uploaded: 300, downloaded: 100, left: 900)
    // Unchanged counters: no delta (neither is non-zero).
    harness.trackerClock.advance(seconds: 60)
    try await harness.announce(client, uploaded: 300, downloaded: 100, left: 900)
    // A repeated `started` without a counter drop carries its event.
    harness.trackerClock.advance(seconds: 30)
    try await harness.announce(client, uploaded: 350, downloaded: 100, left: 900, event: .started)
    await harness.middleware.flush()

    let deltas = sink.deltas
    try #require(deltas.count == 2)
    #expect(deltas[0].uploaded == 300 && deltas[0].downloaded == 100)
    #expect(deltas[0].event == .none && !deltas[0].reset && !deltas[0].seeding)
    #expect(deltas[0].intervalSeconds == 1800)
    #expect(deltas[0].userID == client.userID && deltas[0].infoHash == client.infoHash)
    #expect(deltas[0].reportedAtMilliseconds == 1_704_067_200_000 + 1_800_000)
    // 50, not 350: the baseline advanced to 300 (and lastSeen with it).
    #expect(deltas[1].uploaded == 50 && deltas[1].downloaded == 0)
    #expect(deltas[1].event == .started && !deltas[1].seeding)
    // The byte-less announce emitted nothing but did advance lastSeen.
    #expect(deltas[1].intervalSeconds == 30)
  }

  @Test("a counter below its baseline: the current values, flagged reset; baseline = current")
  func counterDropIsFlaggedReset() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 1000, downloaded: 800)
    // Downloaded went up but uploaded went down: a new client session.
    try await harness.announce(client, uploaded: 300, downloaded: 900)
    try await harness.announce(client, uploaded: 400, downloaded: 900)
    await harness.middleware.flush()

    let deltas = sink.deltas
    try #require(deltas.count == 2)
    #expect(deltas[0].uploaded == 300 && deltas[0].downloaded == 900 && deltas[0].reset)
    // Measured from the reset values, not the old 1000/800.
    #expect(deltas[1].uploaded == 100 && deltas[1].downloaded == 0 && !deltas[1].reset)
    #expect(deltas.allSatisfy { $0.uploaded >= 0 && $0.downloaded >= 0 })
  }

  /// libtorrent announces every event over IPv4 and IPv6 with one key per
  /// session; the IPv6 `started` (counters 0, `left` > 0) was seen arriving
  /// after the IPv4 `completed` (tests/shards). Taken for a restart it
  /// would credit the whole download twice.
  @Test(
    "a late announce of the same session (same key, lower counters): nothing counted, baseline kept"
  )
  func lateAnnounceOfTheSameSessionCountsNothing() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    let key: UInt32 = 0x0C25_A4F1
    try await harness.announce(client, uploaded: 0, downloaded: 0, event: .started, key: key)
    try await harness.announce(
      client, uploaded: 0, downloaded: 1000, left: 0, event: .completed, key: key)
    // The other address family's `started`, sent before the download.
    try await harness.announce(client, uploaded: 0, downloaded: 0, event: .started, key: key)
    try await harness.announce(
      client, uploaded: 50, downloaded: 1000, left: 0, event: .stopped, key: key)
    await harness.middleware.flush()

    let deltas = sink.deltas
    #expect(deltas.reduce(0) { $0 + $1.downloaded } == 1000, "downloaded once: \(deltas)")
    #expect(deltas.reduce(0) { $0 + $1.uploaded } == 50)
    #expect(!deltas.contains { $0.reset }, "no reset")
    #expect(deltas.filter { $0.event == .completed }.count == 1, "one snatch")
    #expect(deltas.last?.event == .stopped && deltas.last?.seeding == true)
  }

  @Test("a late stopped of the same session closes the entry with no bytes of its own")
  func lateStoppedClosesTheEntry() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 500, downloaded: 500, key: 7)
    try await harness.announce(client, uploaded: 100, downloaded: 100, event: .stopped, key: 7)
    await harness.middleware.flush()
    #expect(sink.deltas.isEmpty, "nothing moved: \(sink.deltas)")
    #expect(harness.middleware.statistics().entries == 0, "the entry is closed")
  }

  @Test(
    "lower counters under another key, no key, or key 0: a restart, flagged reset",
    arguments: [(UInt32?(1), UInt32?(2)), (nil, nil), (0, 0)])
  func counterDropUnderAnotherKeyIsAReset(first: UInt32?, second: UInt32?) async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 1000, downloaded: 800, key: first)
    try await harness.announce(client, uploaded: 300, downloaded: 0, event: .started, key: second)
    await harness.middleware.flush()
    #expect(sink.deltas.count == 1)
    #expect(sink.deltas.first?.reset == true && sink.deltas.first?.uploaded == 300)
  }

  @Test func sessionTagsAreNonZeroForEveryKey() {
    #expect(StatsEntry.sessionTag(of: nil) == 0)
    #expect(StatsEntry.sessionTag(of: 0) == 0)
    #expect(StatsEntry.sessionTag(of: 0x0001_0001) != 0, "a key folding to 0")
    #expect(StatsEntry.sessionTag(of: 0x1234_5678) != StatsEntry.sessionTag(of: 0x1234_5679))
  }

  @Test("stopped: final delta, entry removed")
  func stoppedEmitsFinalDeltaAndRemovesEntry() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 100, downloaded: 0)
    try await harness.announce(client, uploaded: 250, downloaded: 40, event: .stopped)
    await harness.middleware.flush()

    #expect(sink.deltas.map(\.event) == [.stopped])
    #expect(sink.deltas.map(\.uploaded) == [150])
    #expect(sink.deltas.map(\.downloaded) == [40])
    #expect(!harness.middleware.knows(user: client.userID, infoHash: client.infoHash))
    #expect(harness.middleware.statistics().entries == 0)

    // Removed, so the next announce starts a fresh entry: no delta.
    try await harness.announce(client, uploaded: 400, downloaded: 40)
    await harness.middleware.flush()
    #expect(sink.deltas.count == 1)
  }

  @Test("stopped with zero bytes: no delta, unless emitStopped", arguments: [false, true])
  func zeroByteStopEmitsOnlyWithEmitStopped(emitStopped: Bool) async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(emitStopped: emitStopped), sink: sink)
    try await harness.announce(client, uploaded: 100, downloaded: 0)
    try await harness.announce(client, uploaded: 100, downloaded: 0, event: .stopped)
    await harness.middleware.flush()

    if emitStopped {
      #expect(sink.deltas.map(\.event) == [.stopped])
      #expect(sink.deltas.map(\.uploaded) == [0])
    } else {
      #expect(sink.deltas.isEmpty)
    }
    #expect(harness.middleware.statistics().entries == 0)
  }

  @Test(
    "first move from leeching to seeding: event completed even with 0 bytes, whatever the client says; baseline advanced"
  )
  func firstMoveToSeedingIsTheSnatch() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 0, downloaded: 0, left: 1000, event: .started)
    try await harness.announce(client, uploaded: 0, downloaded: 1000, left: 0, event: .completed)
    // The client's own `completed`, sent again: not a new snatch.
    try await harness.announce(client, uploaded: 0, downloaded: 1000, left: 0, event: .completed)
    try await harness.announce(client, uploaded: 70, downloaded: 1000, left: 0, event: .completed)
    await harness.middleware.flush()

    let deltas = sink.deltas
    try #require(deltas.count == 2)
    #expect(deltas[0].event == .completed && deltas[0].uploaded == 0)
    #expect(deltas[0].downloaded == 1000 && deltas[0].seeding)
    #expect(deltas[1].event == .none && deltas[1].uploaded == 70, "a repeat carries no event")

    // Without the client's `completed` (and with 0 bytes) the move still snatches.
    let quiet = TestClient(user: 1, torrent: 2)
    try await harness.announce(quiet, uploaded: 0, downloaded: 500, left: 500)
    try await harness.announce(quiet, uploaded: 0, downloaded: 500, left: 0)
    await harness.middleware.flush()
    let quietDeltas = sink.deltas.filter { $0.infoHash == quiet.infoHash }
    #expect(quietDeltas.map(\.event) == [.completed])
    #expect(quietDeltas.map(\.downloaded) == [0])
  }

  @Test("an entry that starts seeding never snatches, even with completed")
  func startingAsSeederNeverSnatches() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 10, downloaded: 1000, left: 0, event: .completed)
    try await harness.announce(client, uploaded: 30, downloaded: 1000, left: 0, event: .completed)
    // A recheck that finds a bad piece, re-downloaded: still not a snatch.
    try await harness.announce(client, uploaded: 30, downloaded: 1000, left: 16)
    try await harness.announce(client, uploaded: 30, downloaded: 1016, left: 0)
    await harness.middleware.flush()
    #expect(sink.deltas.map(\.event) == [.none, .none])
    #expect(sink.deltas.map(\.uploaded) == [20, 0])
    #expect(sink.deltas.map(\.downloaded) == [0, 16])
  }

  @Test("no announce for peer_lifetime: an expired record (no bytes), entry removed by GC")
  func silentEntryExpires() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    let quiet = TestClient(user: 2, torrent: 1)
    try await harness.announce(client, uploaded: 500, downloaded: 500, left: 0)
    try await harness.announce(quiet, uploaded: 0, downloaded: 0)
    harness.trackerClock.advance(seconds: 3000)
    try await harness.announce(quiet, uploaded: 0, downloaded: 10)
    harness.trackerClock.advance(seconds: 901)  // client: 3901 s silent > 3900; quiet: 901 s

    #expect(await harness.middleware.collectGarbage() == 1)
    await harness.middleware.flush()

    let expired = sink.deltas.filter { $0.event == .expired }
    try #require(expired.count == 1)
    #expect(expired[0].userID == client.userID && expired[0].infoHash == client.infoHash)
    #expect(expired[0].uploaded == 0 && expired[0].downloaded == 0)
    #expect(expired[0].seeding, "the last known state, so downstream can close a seeding session")
    #expect(expired[0].intervalSeconds == 3901)
    #expect(!harness.middleware.knows(user: client.userID, infoHash: client.infoHash))
    #expect(harness.middleware.knows(user: quiet.userID, infoHash: quiet.infoHash))
    #expect(harness.middleware.statistics().entries == 1)
  }

  @Test("delta cannot be queued past max_wait: retry-later failure, baseline NOT advanced")
  func unqueueableDeltaFailsWithoutAdvancing() async throws {
    let sink = GatedTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(batchSize: 1, maxPendingDeltas: 1, maxWait: .seconds(2)),
      sink: sink)
    let other = TestClient(user: 3, torrent: 1)
    try await harness.announce(client, uploaded: 0, downloaded: 0)
    try await harness.announce(other, uploaded: 0, downloaded: 0)
    let running = harness.start()
    // Fills the bound; its batch parks in the stalled sink.
    try await harness.announce(other, uploaded: 1, downloaded: 0)

    let waiting = Task { await harness.announceResult(client, uploaded: 1000, downloaded: 10) }
    try await waitUntil("the announce waits and its deadline timer is armed") {
      harness.middleware.statistics().batcher.waiters == 1
        && harness.clock.pendingSleeps.contains(.seconds(2))
    }
    harness.clock.advance(by: .seconds(2))
    let failure = try await waiting.value("waiting to end").failure
    #expect(failure?.kind == .retryLater)
    #expect(failure?.retryInMinutes == 1)

    sink.open()
    try await harness.announce(client, uploaded: 1500, downloaded: 10)
    running.cancel()
    try await running.value("running to end")
    let mine = sink.deliveredDeltas.filter { $0.userID == client.userID }
    // The failed announce's 1000 bytes arrive with the next success.
    #expect(mine.map(\.uploaded) == [1500])
    #expect(mine.map(\.downloaded) == [10])
  }
}
