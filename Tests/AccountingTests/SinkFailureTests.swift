import Accounting
import BitTorrent
import DeltaModel
import MetricsTestKit
import PrivtrakTestSupport
import Testing
import Tracker

@Suite("Sink failures")
struct SinkFailureTests {
  @Test(
    "a sink that throws N times then succeeds: capped exponential backoff, every batch once, in order"
  )
  func failingSinkIsRetriedInOrder() async throws {
    let sink = FlakyTestSink(failures: 4)
    let metrics = TestMetrics()
    var configuration = AccountingConfiguration.forTesting(batchSize: 2)
    configuration.publishRetryInitialBackoff = .milliseconds(100)
    configuration.publishRetryMaxBackoff = .milliseconds(300)
    let harness = await AccountingHarness(
      configuration: configuration, sink: sink, metricsFactory: metrics)
    let clients = (0..<6).map { TestClient(user: $0, torrent: 2) }
    for client in clients { try await harness.announce(client, uploaded: 0, downloaded: 0) }
    for (index, client) in clients.enumerated() {
      try await harness.announce(client, uploaded: UInt64(index + 1), downloaded: 0)
    }
    #expect(harness.middleware.statistics().batcher.sealedBatches == 3)
    let running = harness.start()

    for (failure, backoff) in [100, 200, 300, 300].enumerated() {
      try await waitUntil("failure \(failure + 1) is followed by a \(backoff) ms backoff") {
        sink.attempts == failure + 1 && harness.clock.pendingSleeps.first == .milliseconds(backoff)
      }
      #expect(sink.delivered.isEmpty)
      harness.clock.advance(by: .milliseconds(backoff))
    }
    try await waitUntil("all three batches are delivered") { sink.delivered.count == 3 }
    running.cancel()
    try await running.value("running to end")

    #expect(sink.attempts == 7, "4 failures, then each batch once")
    #expect(sink.delivered.map { $0.deltas.map(\.origin.sequence) } == [[1, 2], [3, 4], [5, 6]])
    #expect(sink.deliveredDeltas.map(\.uploaded) == [1, 2, 3, 4, 5, 6])
    #expect(try metrics.expectCounter("privtrak_accounting_publish_failures_total").totalValue == 4)
    #expect(
      try metrics.expectCounter("privtrak_accounting_batches_published_total").totalValue == 3)
    #expect(try metrics.expectCounter("privtrak_accounting_deltas_published_total").totalValue == 6)
  }

  @Test("flush stops at a failure and keeps the batch for the next attempt")
  func flushKeepsFailedBatch() async throws {
    let sink = FlakyTestSink(failures: 1)
    let harness = await AccountingHarness(sink: sink)
    let client = TestClient(user: 1, torrent: 1)
    try await harness.announce(client, uploaded: 0, downloaded: 0)
    try await harness.announce(client, uploaded: 9, downloaded: 0)
    #expect(await harness.middleware.flush() == false)
    #expect(harness.middleware.statistics().batcher.pendingDeltas == 1)
    #expect(await harness.middleware.flush())
    #expect(harness.middleware.statistics().batcher.pendingDeltas == 0)
    #expect(sink.deliveredDeltas.map(\.uploaded) == [9])
    #expect(sink.deliveredDeltas.map(\.origin.sequence) == [1])
  }
}
