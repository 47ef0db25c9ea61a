import Accounting
import BitTorrent
import DeltaModel
import PrivtrakTestSupport
import Testing
import Tracker

/// Issue #15: every snatch counted once, whatever the client announces. A
/// snatch is an entry's first move from leeching to seeding; the client's
/// `completed` is neither needed nor enough.
@Suite("Snatches: one per download")
struct SnatchTests {
  let client = TestClient(user: 5, torrent: 3)

  /// One step of a client session: counters, `left` and event.
  typealias Step = (uploaded: UInt64, downloaded: UInt64, left: UInt64, event: AnnounceEvent)

  /// The session qBittorrent (libtorrent) announces: started, progress,
  /// completed, progress, stopped.
  static let session: [Step] = [
    (0, 0, 1000, .started), (100, 600, 400, .none), (150, 1000, 0, .completed),
    (400, 1000, 0, .none), (900, 1000, 0, .stopped),
  ]

  func announce(_ harness: AccountingHarness, _ client: TestClient, _ step: Step) async throws {
    try await harness.announce(
      client, uploaded: step.uploaded, downloaded: step.downloaded, left: step.left,
      event: step.event)
  }

  @Test("dual stack: every event from 127.0.0.1 and from ::1 → bytes once, one snatch")
  func dualStackCountsOnce() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    var overIPv4 = client
    overIPv4.endpoint = PeerEndpoint(address: IPAddress("127.0.0.1")!, port: 6881)
    var overIPv6 = client
    overIPv6.endpoint = PeerEndpoint(address: IPAddress("::1")!, port: 6881)
    for step in Self.session {
      try await announce(harness, overIPv4, step)
      try await announce(harness, overIPv6, step)
    }
    await harness.middleware.flush()

    let deltas = sink.deltas
    #expect(deltas.map(\.event) == [.none, .completed, .none, .stopped])
    #expect(deltas.reduce(0) { $0 + $1.uploaded } == 900)
    #expect(deltas.reduce(0) { $0 + $1.downloaded } == 1000)
    #expect(harness.middleware.statistics().entries == 0)
  }

  @Test("a client without completed: leeching, then stopped with left=0 → one snatch (aria2)")
  func stopWithoutCompletedIsTheSnatch() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 0, downloaded: 0, left: 1000, event: .started)
    try await harness.announce(client, uploaded: 0, downloaded: 300, left: 700)
    try await harness.announce(client, uploaded: 20, downloaded: 1000, left: 0, event: .stopped)
    await harness.middleware.flush()

    let deltas = sink.deltas
    #expect(deltas.map(\.event) == [.none, .completed])
    #expect(deltas.map(\.downloaded) == [300, 700])
    #expect(deltas.map(\.uploaded) == [0, 20])
    #expect(deltas.last?.seeding == true)
    #expect(harness.middleware.statistics().entries == 0, "the stop removed the entry")
  }

  @Test("with emit_stopped the snatching stop is two deltas: completed (the bytes), then stopped")
  func stopWithoutCompletedUnderEmitStopped() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(emitStopped: true), sink: sink)
    try await harness.announce(client, uploaded: 0, downloaded: 0, left: 1000, event: .started)
    harness.trackerClock.advance(seconds: 60)
    try await harness.announce(client, uploaded: 20, downloaded: 1000, left: 0, event: .stopped)
    await harness.middleware.flush()

    let deltas = sink.deltas
    #expect(deltas.map(\.event) == [.completed, .stopped])
    #expect(deltas.map(\.downloaded) == [1000, 0])
    #expect(deltas.map(\.uploaded) == [20, 0])
    #expect(deltas.map(\.intervalSeconds) == [60, 0], "the stop is measured from the completed")
    #expect(deltas.map(\.origin.sequence) == [1, 2])
    #expect(deltas.allSatisfy { $0.seeding })
  }

  @Test("the snatching stop's two deltas also go through a waiter's reservation")
  func snatchingStopAfterWaiting() async throws {
    let sink = GatedTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(
        batchSize: 1, maxPendingDeltas: 1, maxWait: .seconds(30), emitStopped: true),
      sink: sink)
    let other = TestClient(user: 6, torrent: 3)
    try await harness.announce(client, uploaded: 0, downloaded: 0, left: 1000)
    try await harness.announce(other, uploaded: 0, downloaded: 0)
    let running = harness.start()
    try await harness.announce(other, uploaded: 1, downloaded: 0)  // fills the bound

    let waiting = Task {
      await harness.announceResult(
        client, uploaded: 0, downloaded: 1000, left: 0, event: .stopped)
    }
    try await waitUntil("the stop waits for room") {
      harness.middleware.statistics().batcher.waiters == 1
    }
    sink.open()
    let result = try await waiting.value("the stop to be recorded")
    #expect((try? result.get()) != nil)
    running.cancel()
    try await running.value("running to end")
    let mine = sink.deliveredDeltas.filter { $0.userID == client.userID }
    #expect(mine.map(\.event) == [.completed, .stopped])
    #expect(mine.map(\.downloaded) == [1000, 0])
  }

  @Test("a re-start of a finished download starts as a seeder: no second snatch")
  func restartedFinishedDownloadDoesNotSnatchAgain() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    for step in Self.session { try await announce(harness, client, step) }
    // The client is started again days later, seeding, and says completed.
    try await harness.announce(client, uploaded: 0, downloaded: 0, left: 0, event: .started)
    try await harness.announce(client, uploaded: 50, downloaded: 0, left: 0, event: .completed)
    try await harness.announce(client, uploaded: 80, downloaded: 0, left: 0, event: .stopped)
    await harness.middleware.flush()
    #expect(sink.deltas.filter { $0.event == .completed }.count == 1)
    #expect(sink.deltas.suffix(2).map(\.event) == [.none, .stopped])
  }

  @Test("a leecher's completed with left > 0 is not a snatch; its later move to seeding is")
  func completedWhileLeechingIsNotASnatch() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 0, downloaded: 0, left: 1000)
    try await harness.announce(client, uploaded: 0, downloaded: 500, left: 500, event: .completed)
    try await harness.announce(client, uploaded: 0, downloaded: 1000, left: 0)
    await harness.middleware.flush()
    #expect(sink.deltas.map(\.event) == [.none, .completed])
  }

  @Test(
    "snatches survive a snapshot: no new one from a snatched entry, a leeching one still snatches")
  func snatchSurvivesSnapshot() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let store = FileSnapshotStore(path: directory.file("stats.snap"))
    let done = TestClient(user: 7, torrent: 3)
    let firstSink = CollectingTestSink()
    let first = await AccountingHarness(sink: firstSink, snapshotStore: store)
    try await first.announce(done, uploaded: 0, downloaded: 0, left: 1000, event: .started)
    try await first.announce(done, uploaded: 0, downloaded: 1000, left: 0, event: .completed)
    try await first.announce(client, uploaded: 0, downloaded: 0, left: 1000, event: .started)
    try await first.announce(client, uploaded: 0, downloaded: 400, left: 600)
    let running = first.start()
    running.cancel()  // graceful shutdown: final snapshot
    try await running.value("running to end")
    #expect(firstSink.deltas.map(\.event) == [.completed, .none])

    let secondSink = CollectingTestSink()
    let second = await AccountingHarness(sink: secondSink, snapshotStore: store)
    #expect(second.middleware.restoreOutcome == .restored(entries: 2, pendingDeltas: 0))
    // The other address family's `completed`, arriving after the restart.
    try await second.announce(done, uploaded: 0, downloaded: 1000, left: 0, event: .completed)
    try await second.announce(done, uploaded: 30, downloaded: 1000, left: 0, event: .completed)
    try await second.announce(client, uploaded: 0, downloaded: 1000, left: 0)
    await second.middleware.flush()
    #expect(secondSink.deltas.map(\.event) == [.none, .completed])
    #expect(secondSink.deltas.map(\.userID) == [done.userID, client.userID])
    #expect(secondSink.deltas.map(\.downloaded) == [0, 600])
  }

  @Test("snatches survive a kill: the commit journal replays the spent snatch over the snapshot")
  func snatchSurvivesJournalReplay() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let path = directory.file("stats.snap")
    func harness(_ sink: CollectingTestSink) async -> AccountingHarness {
      await AccountingHarness(
        sink: sink, snapshotStore: FileSnapshotStore(path: path),
        journal: CommitJournal(prefix: path + ".journal", logger: .quiet))
    }
    let later = TestClient(user: 8, torrent: 3)
    let firstSink = CollectingTestSink()
    let first = await harness(firstSink)
    try await first.announce(client, uploaded: 0, downloaded: 0, left: 1000, event: .started)
    try await first.announce(later, uploaded: 0, downloaded: 0, left: 1000, event: .started)
    try await first.middleware.writeSnapshot()  // both leeching
    try await first.announce(client, uploaded: 0, downloaded: 1000, left: 0, event: .completed)
    try await first.announce(later, uploaded: 0, downloaded: 200, left: 800)
    await first.middleware.flush()  // published after the snapshot, then killed

    let secondSink = CollectingTestSink()
    let second = await harness(secondSink)
    try await second.announce(client, uploaded: 0, downloaded: 1000, left: 0, event: .completed)
    try await second.announce(later, uploaded: 0, downloaded: 1000, left: 0)
    await second.middleware.flush()
    #expect(firstSink.deltas.map(\.event) == [.completed, .none])
    #expect(secondSink.deltas.map(\.event) == [.completed])
    #expect(secondSink.deltas.map(\.userID) == [later.userID])
    #expect(secondSink.deltas.map(\.downloaded) == [800])
  }

  @Test("a snapshot written before the snatch bit: seeding entries do not snatch, leeching ones do")
  func snapshotWithoutTheSnatchBit() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let store = FileSnapshotStore(path: directory.file("stats.snap"))
    let seeder = TestClient(user: 9, torrent: 3)
    // Flags as the previous release wrote them: bit 0 (seeding) only.
    let old = StatsSnapshot(
      instance: 3, nextSequence: 10, createdAtMilliseconds: 1_704_067_200_000,
      entries: [
        StatsEntry(
          userID: seeder.userID, infoHash: seeder.infoHash, peerID: seeder.peerID, uploaded: 5,
          downloaded: 1000, lastSeen: 1_704_067_100, flags: StatsEntry.Flags(rawValue: 1)),
        StatsEntry(
          userID: client.userID, infoHash: client.infoHash, peerID: client.peerID, uploaded: 0,
          downloaded: 400, lastSeen: 1_704_067_100, flags: StatsEntry.Flags(rawValue: 0)),
      ], pendingDeltas: [])
    try await store.save(old)

    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink, snapshotStore: store)
    #expect(harness.middleware.restoreOutcome == .restored(entries: 2, pendingDeltas: 0))
    try await harness.announce(seeder, uploaded: 5, downloaded: 1000, left: 0, event: .completed)
    try await harness.announce(seeder, uploaded: 9, downloaded: 1000, left: 0, event: .completed)
    try await harness.announce(client, uploaded: 0, downloaded: 1000, left: 0, event: .completed)
    try await harness.announce(client, uploaded: 0, downloaded: 1000, left: 0, event: .completed)
    await harness.middleware.flush()
    #expect(sink.deltas.map(\.event) == [.none, .completed])
    #expect(sink.deltas.map(\.userID) == [seeder.userID, client.userID])
  }
}
