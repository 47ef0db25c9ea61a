import BitTorrent
import DeltaModel
import DeltaWire
import Foundation
import KafkaSink
import Ledger
import PrivtrakTestSupport
import Testing

/// The whole ledger against real servers: KafkaSink publishes to the test
/// broker (`KAFKA_BOOTSTRAP`), LedgerRunner applies the topic to the test
/// PostgreSQL, stopped half-way and restarted.
@Suite struct LedgerRunnerTests {
  static let bootstrap = ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP"] ?? "127.0.0.1:19092"

  @Test(arguments: [RecordFraming.perDelta, .perBatch])
  func kafkaToPostgresExactlyOnceAcrossARestart(framing: RecordFraming) async throws {
    let topic = "privtrak-ledger-\(UInt64.random(in: 0..<UInt64.max) & 0xffff_ffff)"
    var sinkConfiguration = KafkaSinkConfiguration(
      bootstrap: Self.bootstrap, topic: topic,
      transactionalID: "privtrak-ledger-test-\(UInt64.random(in: 0..<UInt64.max))",
      framing: framing)
    sinkConfiguration.allowTopicAutoCreation = true
    sinkConfiguration.startupTimeoutMilliseconds = 15_000
    let sink = try await KafkaSink.start(configuration: sinkConfiguration)
    var source = LedgerTestDeltas()
    var published: [Delta] = []
    for batch in 0..<20 {
      let deltas = (0..<25).map { index in
        source.next(
          user: (batch + index) % 6, torrent: index % 3, uploaded: Int64(index * 1000 + batch),
          downloaded: Int64(batch * 10), event: index == 0 ? .completed : .none,
          factors: CreditFactors(uploadPercent: index % 2 == 0 ? 200 : 100, downloadPercent: 50))
      }
      try await sink.publish(DeltaBatch(deltas: deltas))
      published += deltas
    }
    try await sink.close()

    let (store, destination) = try await TestPostgres.migratedStore()
    defer { Task { await store.close() } }
    let configuration = LedgerConfiguration(
      source: LedgerSource(bootstrap: Self.bootstrap, topic: topic), destination: destination,
      maxBatchRecords: 7, retryInitialBackoff: .milliseconds(50))

    // Stopped part-way (a SIGTERM: the batch in flight commits) ...
    let first = LedgerRunner(configuration: configuration, logger: TestPostgres.logger)
    let firstRun = Task { try await first.run() }
    try await waitUntil("the first ledger applied something", timeout: .seconds(60)) {
      first.status.applied > 0
    }
    firstRun.cancel()
    try await firstRun.value
    let appliedBefore = first.status.applied

    // ... and restarted: it resumes at the stored offsets.
    let second = LedgerRunner(configuration: configuration, logger: TestPostgres.logger)
    let secondRun = Task { try await second.run() }
    do {
      try await waitUntil("the second ledger caught up", timeout: .seconds(60)) {
        second.status.caughtUp && first.status.applied + second.status.applied >= published.count
      }
    } catch {
      Issue.record("\(error): first \(first.status), second \(second.status)")
    }
    secondRun.cancel()
    try await secondRun.value
    #expect(appliedBefore + second.status.applied == Int64(published.count))
    #expect(try await storedTotals(store) == expectedTotals(published))
    let snatches = try await store.rows("SELECT sum(snatches)::bigint FROM privtrak.torrent_totals")
    #expect(snatches == [["20"]])

    // A third start finds nothing new.
    let third = LedgerRunner(configuration: configuration, logger: TestPostgres.logger)
    let thirdRun = Task { try await third.run() }
    try await waitUntil("the third ledger caught up", timeout: .seconds(60)) {
      third.status.caughtUp
    }
    thirdRun.cancel()
    try await thirdRun.value
    #expect(third.status.applied == 0)
    #expect(try await storedTotals(store) == expectedTotals(published))
  }
}
