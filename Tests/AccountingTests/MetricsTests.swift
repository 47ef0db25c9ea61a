import Accounting
import BitTorrent
import DeltaModel
import MetricsTestKit
import PrivtrakTestSupport
import Testing
import Tracker

@Suite("Metrics")
struct MetricsTests {
  @Test("announce path metrics have stable privtrak_accounting_ names and count what happened")
  func announcePathMetrics() async throws {
    let metrics = TestMetrics()
    let sink = GatedTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(batchSize: 1, maxPendingDeltas: 1, maxWait: .seconds(1)),
      sink: sink,
      metricsFactory: metrics)
    let first = TestClient(user: 1, torrent: 1)
    let second = TestClient(user: 2, torrent: 1)
    for client in [first, second] {
      try await harness.announce(client, uploaded: 100, downloaded: 0)
    }
    _ = try? await harness.tracker.announce(
      first.request(uploaded: 1, downloaded: 1, passkey: .some(nil)))

    let running = harness.start()
    try await harness.announce(first, uploaded: 50, downloaded: 0)  // a reset, fills the bound
    let waiting = Task { await harness.announceResult(second, uploaded: 200, downloaded: 0) }
    try await waitUntil("the second announce waits") {
      harness.middleware.statistics().batcher.waiters == 1
    }
    harness.clock.advance(by: .seconds(1))
    #expect(try await waiting.value("waiting to end").failure?.kind == .retryLater)
    sink.open()
    running.cancel()
    try await running.value("running to end")

    func counter(_ name: String) throws -> Int64 {
      try metrics.expectCounter("privtrak_accounting_" + name).totalValue
    }
    #expect(try counter("identification_failures_total") == 1)
    #expect(try counter("resets_total") == 1)
    #expect(try counter("waits_total") == 1)
    #expect(try counter("wait_timeouts_total") == 1)
    #expect(try counter("waiters_rejected_total") == 0)
    #expect(try counter("batches_published_total") == 1)
    #expect(try counter("deltas_published_total") == 1)
    #expect(try counter("publish_failures_total") == 0)
    #expect(try metrics.expectGauge("privtrak_accounting_pending_deltas").lastValue == 0)
    #expect(try metrics.expectGauge("privtrak_accounting_pending_bytes").lastValue == 0)
  }

  @Test("snapshot metrics count writes")
  func snapshotMetrics() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let metrics = TestMetrics()
    let harness = await AccountingHarness(
      sink: CollectingTestSink(), snapshotStore: FileSnapshotStore(path: directory.file("s.snap")),
      metricsFactory: metrics)
    try await harness.middleware.writeSnapshot()
    #expect(
      try metrics.expectCounter("privtrak_accounting_snapshots_written_total").totalValue == 1)
    #expect(
      try metrics.expectTimer("privtrak_accounting_snapshot_duration_seconds").values.count == 1)

    let failing = await AccountingHarness(
      sink: CollectingTestSink(), snapshotStore: FileSnapshotStore(path: "/nonexistent-dir/s.snap"),
      metricsFactory: metrics)
    await #expect(throws: SnapshotError.self) { try await failing.middleware.writeSnapshot() }
    #expect(
      try metrics.expectCounter("privtrak_accounting_snapshot_failures_total").totalValue == 1)
  }
}
