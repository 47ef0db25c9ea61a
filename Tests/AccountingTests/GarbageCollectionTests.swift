import Accounting
import BitTorrent
import DeltaModel
import MetricsTestKit
import PrivtrakTestSupport
import Testing
import Tracker

@Suite("Garbage collection")
struct GarbageCollectionTests {
  @Test("GC emits expired records and removes the entries; fresh entries stay")
  func expiresSilentEntries() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    let old = (0..<20).map { TestClient(user: $0, torrent: $0 % 7) }
    let fresh = (20..<25).map { TestClient(user: $0, torrent: 1) }
    for client in old { try await harness.announce(client, uploaded: 10, downloaded: 0) }
    harness.trackerClock.advance(seconds: 3901)
    for client in fresh { try await harness.announce(client, uploaded: 10, downloaded: 0) }

    #expect(await harness.middleware.collectGarbage() == 20)
    await harness.middleware.flush()
    #expect(sink.deltas.count == 20)
    #expect(
      sink.deltas.allSatisfy { $0.event == .expired && $0.uploaded == 0 && $0.downloaded == 0 })
    #expect(Set(sink.deltas.map(\.userID)) == Set(old.map(\.userID)))
    #expect(harness.middleware.statistics().entries == 5)
    #expect(old.allSatisfy { !harness.middleware.knows(user: $0.userID, infoHash: $0.infoHash) })
    #expect(fresh.allSatisfy { harness.middleware.knows(user: $0.userID, infoHash: $0.infoHash) })
    // A second sweep finds nothing more.
    #expect(await harness.middleware.collectGarbage() == 0)
  }

  @Test("when the batcher is full GC waits for room; no expiry is dropped")
  func gcWaitsWhenFull() async throws {
    let sink = GatedTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(batchSize: 1, maxPendingDeltas: 2), sink: sink)
    let clients = (0..<5).map { TestClient(user: $0, torrent: 3) }
    for client in clients { try await harness.announce(client, uploaded: 0, downloaded: 0) }
    let running = harness.start()
    // Let run()'s own GC loop finish its first step before time moves.
    try await waitUntil("the GC loop sleeps") {
      harness.clock.pendingSleeps.contains(.seconds(3600))
    }
    harness.trackerClock.advance(seconds: 4000)

    let collecting = Task { await harness.middleware.collectGarbage() }
    try await waitUntil("GC waits for room") {
      let batcher = harness.middleware.statistics().batcher
      return batcher.waiters == 1 && batcher.pendingDeltas == 2
    }
    #expect(
      harness.middleware.statistics().entries == 3,
      "entries are removed only with their expiry queued")
    sink.open()
    #expect(try await collecting.value("collecting to end") == 5)
    running.cancel()
    try await running.value("running to end")
    #expect(sink.deliveredDeltas.count == 5)
    #expect(Set(sink.deliveredDeltas.map(\.userID)) == Set(clients.map(\.userID)))
    #expect(harness.middleware.statistics().entries == 0)
  }

  @Test("the GC loop is incremental: one shard per step, steps spread over gcInterval")
  func incrementalSweep() async throws {
    let sink = CollectingTestSink()
    let metrics = TestMetrics()
    // 16 shards, gcInterval 16 h: one step per hour.
    let harness = await AccountingHarness(sink: sink, metricsFactory: metrics)
    let clients = (0..<48).map { TestClient(user: $0 % 12, torrent: $0) }
    for client in clients { try await harness.announce(client, uploaded: 0, downloaded: 0) }
    let running = harness.start()
    try await waitUntil("the GC loop sleeps after its first step") {
      harness.clock.pendingSleeps.contains(.seconds(3600))
    }
    harness.trackerClock.advance(seconds: 4000)

    harness.clock.advance(by: .seconds(3600))
    try await waitUntil("the second step ran") {
      harness.clock.pendingSleeps.contains(.seconds(3600))
    }
    let afterOneStep = harness.middleware.statistics().entries
    #expect(afterOneStep > 0, "one step does not sweep everything")
    var remaining = afterOneStep
    for _ in 1..<16 {
      harness.clock.advance(by: .seconds(3600))
      try await waitUntil("the next step ran") {
        harness.clock.pendingSleeps.contains(.seconds(3600))
      }
      let now = harness.middleware.statistics().entries
      #expect(now <= remaining)
      remaining = now
    }
    #expect(remaining == 0)
    running.cancel()
    try await running.value("running to end")
    #expect(sink.deltas.filter { $0.event == .expired }.count == 48)
    #expect(try metrics.expectCounter("privtrak_accounting_gc_expired_total").totalValue == 48)
    #expect(try metrics.expectTimer("privtrak_accounting_gc_duration_seconds").values.count >= 1)
  }

  @Test("the users gauge estimates distinct users after a sweep")
  func usersGauge() async throws {
    let metrics = TestMetrics()
    let harness = await AccountingHarness(sink: CollectingTestSink(), metricsFactory: metrics)
    for index in 0..<300 {
      try await harness.announce(
        TestClient(user: index % 100, torrent: index), uploaded: 0, downloaded: 0)
    }
    await harness.middleware.collectGarbage()
    let users = try #require(try metrics.expectGauge("privtrak_accounting_users").lastValue)
    #expect(abs(users - 100) <= 5, "HyperLogLog estimate of 100 users was \(users)")
    #expect(try metrics.expectGauge("privtrak_accounting_entries").lastValue == 300)
  }
}
