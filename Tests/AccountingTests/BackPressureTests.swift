import Accounting
import BitTorrent
import DeltaModel
import PrivtrakTestSupport
import Testing
import Tracker

@Suite("Back-pressure")
struct BackPressureTests {
  @Test(
    "a stalled sink suspends announces; pending stays at the bound; opening it lets every announce through"
  )
  func stalledSinkSuspendsAnnounces() async throws {
    let sink = GatedTestSink()
    let configuration = AccountingConfiguration.forTesting(
      batchSize: 4, maxPendingDeltas: 8, maxWait: .seconds(60), maxWaiters: 100)
    let harness = await AccountingHarness(configuration: configuration, sink: sink)
    let clients = (0..<40).map { TestClient(user: $0, torrent: $0 % 5) }
    for client in clients { try await harness.announce(client, uploaded: 0, downloaded: 0) }
    let running = harness.start()

    let announces = clients.enumerated().map { index, client in
      Task { await harness.announceResult(client, uploaded: UInt64(100 + index), downloaded: 1) }
    }
    // 8 deltas fill the bound (one batch of 4 parked in the sink, one
    // sealed behind it); the other 32 announces are suspended.
    try await waitUntil("32 announces wait and the first batch is parked in the sink") {
      harness.middleware.statistics().batcher.waiters == 32 && sink.parkedCount == 1
    }
    let stalled = harness.middleware.statistics().batcher
    #expect(stalled.pendingDeltas == 8)
    #expect(stalled.pendingBytes <= configuration.maxPendingBytes)
    #expect(stalled.highWaterDeltas <= 8)
    #expect(stalled.sealedBatches == 2, "one batch in flight, the next one sealed behind it")
    #expect(sink.parkedCount == 1, "one batch in flight at a time")

    sink.open()
    for announce in announces {
      #expect(try await announce.value("announce to end").failure == nil)
    }
    running.cancel()
    try await running.value("running to end")

    let final = harness.middleware.statistics().batcher
    #expect(final.highWaterDeltas <= 8, "memory never exceeded the bound")
    #expect(final.highWaterBytes <= 8 * configuration.maxDeltaSize)
    #expect(sink.deliveredDeltas.count == 40)
    #expect(
      sink.deliveredDeltas.reduce(0) { $0 + $1.uploaded }
        == (0..<40).reduce(0) { $0 + 100 + Int64($1) })
    #expect(sink.delivered.allSatisfy { $0.deltas.count <= 4 })
  }

  @Test(
    "max_wait expiry fails the announce with retry-later; the next success carries the missed bytes exactly"
  )
  func maxWaitExpiry() async throws {
    let sink = GatedTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(batchSize: 2, maxPendingDeltas: 2, maxWait: .seconds(2)),
      sink: sink)
    let fillers = [TestClient(user: 1, torrent: 1), TestClient(user: 2, torrent: 1)]
    let late = TestClient(user: 3, torrent: 1)
    for client in fillers + [late] {
      try await harness.announce(client, uploaded: 0, downloaded: 0)
    }
    let running = harness.start()
    for client in fillers { try await harness.announce(client, uploaded: 5, downloaded: 0) }

    let waiting = Task { await harness.announceResult(late, uploaded: 1000, downloaded: 300) }
    try await waitUntil("the late announce waits with its deadline armed") {
      harness.middleware.statistics().batcher.waiters == 1
        && harness.clock.pendingSleeps.contains(.seconds(2))
    }
    harness.clock.advance(by: .seconds(1))
    #expect(harness.middleware.statistics().batcher.waiters == 1, "still within max_wait")
    harness.clock.advance(by: .seconds(1))
    let failure = try await waiting.value("waiting to end").failure
    #expect(failure?.kind == .retryLater)
    #expect(failure?.retryInMinutes == 1)
    #expect(harness.middleware.statistics().batcher.pendingDeltas == 2, "nothing was queued for it")

    sink.open()
    try await harness.announce(late, uploaded: 1200, downloaded: 300)
    running.cancel()
    try await running.value("running to end")
    let lateDeltas = sink.deliveredDeltas.filter { $0.userID == late.userID }
    #expect(lateDeltas.map(\.uploaded) == [1200])
    #expect(lateDeltas.map(\.downloaded) == [300])
  }

  @Test("beyond maxWaiters an announce fails immediately with retry-later")
  func waiterQueueIsBounded() async throws {
    let sink = GatedTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(
        batchSize: 1, maxPendingDeltas: 1, maxWait: .seconds(60), maxWaiters: 2),
      sink: sink)
    let clients = (0..<4).map { TestClient(user: $0, torrent: 9) }
    for client in clients { try await harness.announce(client, uploaded: 0, downloaded: 0) }
    let running = harness.start()
    try await harness.announce(clients[0], uploaded: 1, downloaded: 0)
    let waiting = [clients[1], clients[2]].map { client in
      Task { await harness.announceResult(client, uploaded: 1, downloaded: 0) }
    }
    try await waitUntil("two announces wait") {
      harness.middleware.statistics().batcher.waiters == 2
    }

    // The clock does not move: this fails without waiting.
    let rejected = await harness.announceResult(clients[3], uploaded: 1, downloaded: 0).failure
    #expect(rejected?.kind == .retryLater)
    #expect(harness.middleware.statistics().batcher.waiters == 2)

    sink.open()
    for task in waiting { #expect(try await task.value("task to end").failure == nil) }
    // Its baseline was not advanced either: the byte arrives now.
    try await harness.announce(clients[3], uploaded: 1, downloaded: 0)
    running.cancel()
    try await running.value("running to end")
    #expect(sink.deliveredDeltas.count == 4)
  }

  @Test("a cancelled waiting announce leaves the queue and records nothing")
  func cancelledWaiter() async throws {
    let sink = GatedTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(batchSize: 1, maxPendingDeltas: 1, maxWait: .seconds(60)),
      sink: sink)
    let filler = TestClient(user: 1, torrent: 2)
    let client = TestClient(user: 2, torrent: 2)
    for each in [filler, client] { try await harness.announce(each, uploaded: 0, downloaded: 0) }
    let running = harness.start()
    try await harness.announce(filler, uploaded: 1, downloaded: 0)
    let waiting = Task { await harness.announceResult(client, uploaded: 77, downloaded: 0) }
    try await waitUntil("it waits") { harness.middleware.statistics().batcher.waiters == 1 }
    waiting.cancel()
    #expect(try await waiting.value("waiting to end").failure?.kind == .retryLater)
    #expect(harness.middleware.statistics().batcher.waiters == 0)

    sink.open()
    try await harness.announce(client, uploaded: 80, downloaded: 0)
    running.cancel()
    try await running.value("running to end")
    #expect(sink.deliveredDeltas.filter { $0.userID == client.userID }.map(\.uploaded) == [80])
  }

  @Test("batches seal at batchSize at once, or after flushInterval, whichever comes first")
  func sealingBySizeOrTime() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(configuration: .forTesting(batchSize: 3), sink: sink)
    let clients = (0..<4).map { TestClient(user: $0, torrent: 1) }
    for client in clients { try await harness.announce(client, uploaded: 0, downloaded: 0) }
    let running = harness.start()
    for client in clients.prefix(3) {
      try await harness.announce(client, uploaded: 1, downloaded: 0)
    }
    try await waitUntil("the full batch is published without the clock moving") {
      sink.batches.count == 1
    }
    #expect(sink.batches.first?.deltas.count == 3)

    try await harness.announce(clients[3], uploaded: 1, downloaded: 0)
    try await waitUntil("the flush timer is armed") {
      harness.clock.pendingSleeps.contains(.seconds(1))
    }
    harness.clock.advance(by: .milliseconds(999))
    #expect(sink.batches.count == 1, "not before flushInterval")
    harness.clock.advance(by: .milliseconds(1))
    try await waitUntil("the partial batch is published after flushInterval") {
      sink.batches.count == 2
    }
    #expect(sink.batches.last?.deltas.count == 1)
    running.cancel()
    try await running.value("running to end")
  }
}
