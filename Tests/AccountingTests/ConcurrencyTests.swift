import Accounting
import BitTorrent
import DeltaModel
import Logging
import Metrics
import PrivtrakTestSupport
import Synchronization
import Testing
import Tracker

/// A deterministic generator so failures can be replayed.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite("Concurrency and keys")
struct ConcurrencyTests {
  @Test(
    "two clients of one user on one torrent (different peer ids) give independent, correct deltas")
  func twoClientsOfOneUserOnOneTorrent() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    let seedbox = TestClient(user: 1, torrent: 1, peer: 1)
    let home = TestClient(user: 1, torrent: 1, peer: 2)
    try await harness.announce(seedbox, uploaded: 0, downloaded: 0, left: 0)
    try await harness.announce(home, uploaded: 0, downloaded: 0, left: 1000)
    try await harness.announce(seedbox, uploaded: 1000, downloaded: 0, left: 0)
    try await harness.announce(home, uploaded: 50, downloaded: 300, left: 700)
    try await harness.announce(seedbox, uploaded: 3000, downloaded: 0, left: 0)
    try await harness.announce(home, uploaded: 60, downloaded: 700, left: 300)
    try await harness.announce(home, uploaded: 80, downloaded: 700, left: 300, event: .stopped)
    await harness.middleware.flush()

    let deltas = sink.deltas
    // Keyed by (user, torrent) alone, the original saw 1000 → 50 as a
    // drop and produced garbage; here nothing looks like a reset.
    #expect(deltas.allSatisfy { !$0.reset })
    #expect(deltas.filter(\.seeding).map(\.uploaded) == [1000, 2000])
    #expect(deltas.filter { !$0.seeding }.map(\.uploaded) == [50, 10, 20])
    #expect(deltas.filter { !$0.seeding }.map(\.downloaded) == [300, 400, 0])
    #expect(deltas.reduce(0) { $0 + $1.uploaded } == 3080)
    #expect(deltas.reduce(0) { $0 + $1.downloaded } == 700)
    #expect(
      harness.middleware.knows(user: seedbox.userID, infoHash: seedbox.infoHash),
      "the seedbox is still there")
    #expect(harness.middleware.statistics().entries == 1)
  }

  @Test("duplicate concurrent announces of one entry count its bytes once")
  func duplicateConcurrentAnnounces() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    let client = TestClient(user: 4, torrent: 4)
    try await harness.announce(client, uploaded: 0, downloaded: 0)
    await withTaskGroup(of: Void.self) { group in
      for _ in 0..<32 {
        group.addTask { _ = await harness.announceResult(client, uploaded: 1000, downloaded: 500) }
      }
    }
    await harness.middleware.flush()
    #expect(sink.deltas.map(\.uploaded) == [1000])
    #expect(sink.deltas.map(\.downloaded) == [500])
  }

  @Test("duplicate announces that all had to wait for room still count the bytes once")
  func duplicateWaitingAnnounces() async throws {
    let sink = GatedTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(batchSize: 1, maxPendingDeltas: 1, maxWait: .seconds(60)),
      sink: sink)
    let client = TestClient(user: 5, torrent: 5)
    let filler = TestClient(user: 6, torrent: 5)
    try await harness.announce(client, uploaded: 0, downloaded: 0)
    try await harness.announce(filler, uploaded: 0, downloaded: 0)
    let running = harness.start()
    try await harness.announce(filler, uploaded: 1, downloaded: 0)
    let duplicates = (0..<16).map { _ in
      Task { await harness.announceResult(client, uploaded: 1000, downloaded: 500) }
    }
    try await waitUntil("all duplicates wait") {
      harness.middleware.statistics().batcher.waiters == 16
    }
    sink.open()
    for duplicate in duplicates {
      #expect(try await duplicate.value("duplicate to end").failure == nil)
    }
    running.cancel()
    try await running.value("running to end")
    let mine = sink.deliveredDeltas.filter { $0.userID == client.userID }
    #expect(mine.map(\.uploaded) == [1000])
    #expect(
      harness.middleware.statistics().batcher.reservedDeltas == 0, "unneeded grants were given back"
    )
  }

  @Test(
    "64 concurrent announcers over many users and torrents: published deltas per user = ground truth"
  )
  func concurrentAnnouncersMatchGroundTruth() async throws {
    let sink = CollectingTestSink()
    let configuration = AccountingConfiguration(
      batchSize: 50, flushInterval: .milliseconds(5), maxPendingDeltas: 256, maxWait: .seconds(10),
      maxWaiters: 1000, gcInterval: .seconds(3600), shardCount: 64, snapshotInterval: nil)
    let trackerClock = ManualTestClock(milliseconds: 1_704_067_200_000)
    let middleware = await AccountingMiddleware(
      configuration: configuration, sink: sink, trackerClock: trackerClock,
      clock: ContinuousClock(),
      metricsFactory: NOOPMetricsHandler.instance, logger: .quiet)
    let tracker = Tracker(preHooks: [middleware], clock: trackerClock)
    let running = Task { await middleware.run() }

    let tasks = 64
    let announcesPerTask = 300
    let truth = await withTaskGroup(of: [UserID: (up: Int64, down: Int64)].self) { group in
      for task in 0..<tasks {
        group.addTask {
          await Self.announcer(task: task, count: announcesPerTask, tracker: tracker)
        }
      }
      var total: [UserID: (up: Int64, down: Int64)] = [:]
      for await partial in group {
        for (user, bytes) in partial {
          total[user, default: (0, 0)].up += bytes.up
          total[user, default: (0, 0)].down += bytes.down
        }
      }
      return total
    }
    running.cancel()
    try await running.value("running to end")

    var published: [UserID: (up: Int64, down: Int64)] = [:]
    for delta in sink.deltas {
      published[delta.userID, default: (0, 0)].up += delta.uploaded
      published[delta.userID, default: (0, 0)].down += delta.downloaded
    }
    #expect(truth.count == 16)
    #expect(published.count == truth.count)
    for (user, bytes) in truth {
      #expect(published[user]?.up == bytes.up, "uploaded of \(user)")
      #expect(published[user]?.down == bytes.down, "downloaded of \(user)")
    }
    // Every ordering id once, in publication order, with no gap.
    let sequences = sink.deltas.map(\.origin.sequence)
    #expect(sequences == Array(1...UInt64(sequences.count)))
    let statistics = middleware.statistics()
    #expect(statistics.batcher.pendingDeltas == 0)
    #expect(statistics.batcher.highWaterDeltas <= 256, "memory stayed within the bound")
    #expect(statistics.entries == 0, "every client stopped")
    #expect(sink.isClosed)
  }

  /// One simulated task: three clients, random progress, occasional
  /// client restarts (counters drop) and snatches, then a stop each.
  /// Returns the bytes each user truly moved, by the rules' definition.
  private static func announcer(task: Int, count: Int, tracker: Tracker) async -> [UserID: (
    up: Int64, down: Int64
  )] {
    var random = SplitMix64(state: UInt64(task) &* 0x5851_F42D_4C95_7F2D)
    let clients = (0..<3).map {
      TestClient(user: task % 16, torrent: (task * 7 + $0) % 24, peer: task * 3 + $0)
    }
    var counters = [(up: UInt64, down: UInt64)](repeating: (0, 0), count: clients.count)
    var truth: [UserID: (up: Int64, down: Int64)] = [:]

    func send(_ index: Int, event: AnnounceEvent) async {
      let request = clients[index].request(
        uploaded: counters[index].up, downloaded: counters[index].down, event: event)
      while true {
        do throws(TrackerFailure) {
          _ = try await tracker.announce(request)
          return
        } catch  where error.kind == .retryLater {
          continue  // A real client retries later; nothing was recorded.
        } catch {
          Issue.record("unexpected failure \(error)")
          return
        }
      }
    }

    for index in clients.indices { await send(index, event: .started) }
    for step in 0..<count {
      let index = step % clients.count
      let user = clients[index].userID
      let roll = random.next() % 100
      if roll < 3, counters[index].up > 0 {
        // The client restarted: new session totals, all new bytes.
        counters[index] = (random.next() % counters[index].up, random.next() % 5000)
        truth[user, default: (0, 0)].up += Int64(counters[index].up)
        truth[user, default: (0, 0)].down += Int64(counters[index].down)
      } else {
        let up = random.next() % 10_000
        let down = random.next() % 10_000
        counters[index].up += up
        counters[index].down += down
        truth[user, default: (0, 0)].up += Int64(up)
        truth[user, default: (0, 0)].down += Int64(down)
      }
      await send(index, event: roll >= 97 ? .completed : .none)
    }
    for index in clients.indices {
      counters[index].up += 7
      truth[clients[index].userID, default: (0, 0)].up += 7
      await send(index, event: .stopped)
    }
    return truth
  }
}
