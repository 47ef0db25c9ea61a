import BitTorrent
import DeltaModel
import DeltaWire
import Foundation
import KafkaSink
import Ledger
import MetricsTestKit
import PrivtrakTestSupport
import Testing

/// Consumer-group assignment (`ledger.group`) against the test broker
/// (`KAFKA_BOOTSTRAP`, Tansu) and the test PostgreSQL: ledgers in one group
/// split the partitions, every rebalance starts at the stored offsets and
/// gives partitions up only after the batch in flight committed, and
/// together they apply every delta exactly once.
///
/// Tansu holds every JoinGroup for half the session timeout (its
/// coordinator waits for more members), so these ledgers use a 6 s
/// session: a join or rebalance then takes about 3 s (librdkafka's default
/// 45 s would make it about 23 s).
@Suite struct LedgerGroupTests {
  static let bootstrap = ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP"] ?? "127.0.0.1:19092"
  static let groupProperties = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"]

  /// A per-delta topic (keyed by user, so spread over the partitions) and
  /// what was published to it.
  final class Topic {
    let name = "privtrak-ledger-group-\(UInt64.random(in: 0..<UInt64.max) & 0xffff_ffff)"
    let sink: KafkaSink
    var source = LedgerTestDeltas()
    var published: [Delta] = []

    init() async throws {
      var configuration = KafkaSinkConfiguration(
        bootstrap: LedgerGroupTests.bootstrap, topic: name,
        transactionalID: "privtrak-ledger-group-test-\(UInt64.random(in: 0..<UInt64.max))",
        framing: .perDelta)
      configuration.allowTopicAutoCreation = true
      configuration.startupTimeoutMilliseconds = 15_000
      sink = try await KafkaSink.start(configuration: configuration)
    }

    /// `batches` transactions of 20 deltas of 16 users.
    func publish(_ batches: Int) async throws {
      for _ in 0..<batches {
        let deltas = (0..<20).map { index in
          source.next(
            user: (published.count + index) % 16, torrent: index % 3,
            uploaded: Int64(published.count + index), downloaded: Int64(index),
            event: index == 0 ? .completed : .none)
        }
        try await sink.publish(DeltaBatch(deltas: deltas))
        published += deltas
      }
    }

    /// The topic's partitions (an assign-only reader, no group).
    func partitions() throws -> [Int32] {
      let reader = try KafkaRecordReader(bootstrap: LedgerGroupTests.bootstrap, topic: name)
      defer { reader.close() }
      return reader.partitions
    }
  }

  /// Per partition, the series a ledger reports in /metrics now.
  static func lagSeries(_ metrics: TestMetrics) -> Set<String> {
    Set(
      metrics.recorders(label: "privtrak_ledger_partition_lag_records").compactMap {
        $0.dimensions.first { $0.0 == "partition" }?.1
      })
  }

  @Test func twoLedgersInOneGroupSplitThePartitionsAndApplyEveryDeltaOnce() async throws {
    let topic = try await Topic()
    try await topic.publish(10)
    let partitions = try topic.partitions()
    #expect(
      partitions.count >= 2, "the topic has \(partitions.count) partition(s): nothing to split")
    let (store, destination) = try await TestPostgres.migratedStore()
    defer { Task { await store.close() } }
    let configuration = LedgerConfiguration(
      source: LedgerSource(bootstrap: Self.bootstrap, topic: topic.name), destination: destination,
      group: "privtrak-ledger-test-\(UInt64.random(in: 0..<UInt64.max) & 0xffff_ffff)",
      maxBatchRecords: 7, kafkaProperties: Self.groupProperties,
      retryInitialBackoff: .milliseconds(50))
    let clock = ContinuousClock()

    // The first member alone gets every partition, from the stored offsets (none yet).
    let firstMetrics = TestMetrics()
    let first = LedgerRunner(
      configuration: configuration, logger: TestPostgres.logger, metricsFactory: firstMetrics)
    let firstStarted = clock.now
    let firstRun = Task { try await first.run() }
    try await waitUntil("the first ledger is assigned every partition", timeout: .seconds(120)) {
      first.status.partitions == partitions
    }
    let firstJoin = clock.now - firstStarted
    try await waitUntil("the first ledger applied something", timeout: .seconds(60)) {
      first.status.applied > 0
    }

    // A second member joins while deltas keep coming: the group splits the
    // partitions; the first gives its up only after its batch committed,
    // the second starts them at the offsets stored then.
    let secondMetrics = TestMetrics()
    let second = LedgerRunner(
      configuration: configuration, logger: TestPostgres.logger, metricsFactory: secondMetrics)
    let secondStarted = clock.now
    let secondRun = Task { try await second.run() }
    try await topic.publish(10)
    try await waitUntil(
      "the two ledgers hold disjoint partitions covering the topic", timeout: .seconds(120)
    ) {
      let one = Set(first.status.partitions)
      let two = Set(second.status.partitions)
      return !one.isEmpty && !two.isEmpty && one.isDisjoint(with: two)
        && one.union(two) == Set(partitions)
    }
    let split = clock.now - secondStarted
    try await topic.publish(10)
    do {
      try await waitUntil("the two ledgers applied every delta", timeout: .seconds(120)) {
        first.status.applied + second.status.applied >= topic.published.count
          && first.status.caughtUp && second.status.caughtUp
      }
    } catch {
      Issue.record("\(error): first \(first.status), second \(second.status)")
    }
    #expect(second.status.applied > 0, "the second ledger applied nothing: \(second.status)")
    // /metrics of each shows the lag of its own partitions only.
    try await waitUntil("each ledger reports its own partitions' lag", timeout: .seconds(10)) {
      Self.lagSeries(firstMetrics) == Set(first.status.partitions.map(String.init))
        && Self.lagSeries(secondMetrics) == Set(second.status.partitions.map(String.init))
    }
    for partition in second.status.partitions {
      let records = try secondMetrics.expectGauge(
        "privtrak_ledger_partition_lag_records", [("partition", String(partition))])
      #expect(records.lastValue == 0)
      let seconds = try secondMetrics.expectGauge(
        "privtrak_ledger_partition_lag_seconds", [("partition", String(partition))])
      #expect(seconds.lastValue == 0)
    }

    // The second leaves (a SIGTERM: the batch in flight commits, then the
    // group is left); its partitions go back to the first, from the
    // offsets the second stored.
    secondRun.cancel()
    try await secondRun.value
    let left = clock.now
    try await topic.publish(10)
    do {
      try await waitUntil(
        "the first ledger holds every partition again and applied every delta",
        timeout: .seconds(120)
      ) {
        first.status.partitions == partitions
          && first.status.applied + second.status.applied >= topic.published.count
          && first.status.caughtUp
      }
    } catch {
      Issue.record("\(error): first \(first.status), second \(second.status)")
    }
    let takeover = clock.now - left
    #expect(Self.lagSeries(firstMetrics) == Set(partitions.map(String.init)))
    firstRun.cancel()
    try await firstRun.value
    try await topic.sink.close()

    let one = first.status
    let two = second.status
    #expect(one.applied + two.applied == Int64(topic.published.count))
    // Nobody read what another had applied: every rebalance gave the
    // partitions up after a commit and started them at the stored offsets.
    #expect(one.skipped == 0 && two.skipped == 0)
    #expect(try await storedTotals(store) == expectedTotals(topic.published))
    let snatches = try await store.rows("SELECT sum(snatches)::bigint FROM privtrak.torrent_totals")
    #expect(snatches == [["\(topic.published.count / 20)"]])
    print(
      "LEDGER-GROUP deltas=\(topic.published.count) partitions=\(partitions.count) first_join=\(firstJoin) split_after_second_started=\(split) takeover_after_second_left=\(takeover) first=\(one.applied)/\(one.transactions)tx/\(one.rebalances)rebalances second=\(two.applied)/\(two.transactions)tx/\(two.rebalances)rebalances duplicates=\(one.duplicates + two.duplicates)"
    )
  }

  /// A zombie: a ledger whose apply stalls (its partitions' rows locked by
  /// another session) past `max.poll.interval.ms` is put out of the group
  /// while its statement is still waiting; the other ledger is assigned its
  /// partitions and reads the same records from the same stored offsets.
  /// When the lock goes, the zombie's statement commits first (it waited
  /// first), the other's skips those records by offset under the row lock,
  /// and the zombie, told its assignment was lost, gives it up and rejoins:
  /// every delta still counts once.
  @Test func aLedgerStalledPastThePollIntervalLosesItsPartitionsAndNothingCountsTwice()
    async throws
  {
    let topic = try await Topic()
    try await topic.publish(5)
    let partitions = try topic.partitions()
    let (store, destination) = try await TestPostgres.migratedStore()
    defer { Task { await store.close() } }
    var properties = Self.groupProperties
    properties["max.poll.interval.ms"] = "7000"
    let configuration = LedgerConfiguration(
      source: LedgerSource(bootstrap: Self.bootstrap, topic: topic.name), destination: destination,
      group: "privtrak-ledger-test-\(UInt64.random(in: 0..<UInt64.max) & 0xffff_ffff)",
      maxBatchRecords: 7, kafkaProperties: properties, retryInitialBackoff: .milliseconds(50))
    let first = LedgerRunner(configuration: configuration, logger: TestPostgres.logger)
    let firstRun = Task { try await first.run() }
    try await waitUntil("the first ledger applied the topic alone", timeout: .seconds(120)) {
      first.status.partitions == partitions && first.status.caughtUp
        && first.status.applied == topic.published.count
    }
    let second = LedgerRunner(configuration: configuration, logger: TestPostgres.logger)
    let secondRun = Task { try await second.run() }
    try await waitUntil("the group split the partitions", timeout: .seconds(120)) {
      !first.status.partitions.isEmpty && !second.status.partitions.isEmpty
        && Set(first.status.partitions).union(second.status.partitions) == Set(partitions)
    }
    let stalled = first.status.partitions

    // Another session locks the first ledger's partition rows: its next
    // apply waits, longer than max.poll.interval.ms.
    let locker = try await PostgresLedgerStore.connect(to: destination, logger: TestPostgres.logger)
    defer { Task { await locker.close() } }
    _ = try await locker.rows("BEGIN")
    let locked = try await locker.rows(
      "SELECT partition FROM privtrak.partition_offsets WHERE topic = '\(topic.name)' AND partition IN (\(stalled.map(String.init).joined(separator: ","))) FOR UPDATE"
    )
    #expect(locked.count == stalled.count, "rows of \(stalled): \(locked)")
    let transactionsBefore = first.status.transactions
    try await topic.publish(5)
    try await waitUntil(
      "the group gave the stalled ledger's partitions to the other", timeout: .seconds(120)
    ) {
      second.status.partitions == partitions
    }
    #expect(
      first.status.transactions == transactionsBefore,
      "the stalled apply committed: \(first.status)")
    _ = try await locker.rows("ROLLBACK")

    do {
      try await waitUntil(
        "every delta applied, the zombie back in the group", timeout: .seconds(120)
      ) {
        first.status.applied + second.status.applied >= topic.published.count
          && first.status.lostAssignments > 0 && !first.status.partitions.isEmpty
          && first.status.caughtUp && second.status.caughtUp
      }
    } catch {
      Issue.record("\(error): first \(first.status), second \(second.status)")
    }
    firstRun.cancel()
    secondRun.cancel()
    try await firstRun.value
    try await secondRun.value
    try await topic.sink.close()
    let one = first.status
    let two = second.status
    #expect(one.applied + two.applied == Int64(topic.published.count))
    // The zombie's batch committed first; the other read those records too
    // and skipped them by offset.
    #expect(two.skipped > 0, "\(two)")
    #expect(try await storedTotals(store) == expectedTotals(topic.published))
    print(
      "LEDGER-GROUP-ZOMBIE deltas=\(topic.published.count) first=\(one.applied) applied/\(one.lostAssignments) lost/\(one.rebalances) rebalances second=\(two.applied) applied/\(two.skipped) skipped"
    )
  }
}
