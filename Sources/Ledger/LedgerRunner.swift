import KafkaSink
import Logging
import Metrics
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The ledger's main loop: reads the delta topic `read_committed` from the
/// offsets stored in PostgreSQL and applies it batch by batch, exactly once.
///
/// Invariants: the only offsets that matter are the ones PostgreSQL stores,
/// advanced in the same statement as the rows (Kafka's committed offsets
/// are never read or written); after any failure the reader is reopened at
/// the stored offsets, so a batch whose commit was lost is read and applied
/// again, and one that did commit is skipped by `apply_deltas` (offset
/// check) — nothing is lost and nothing counts twice. Every batch also
/// passes where its reading of each partition started, and the database
/// refuses one read from above the stored offset (`apply_deltas_from`).
/// Memory is bounded by one batch.
///
/// Partitions: a static list (``LedgerConfiguration/partitions``, or every
/// partition), or a Kafka consumer group's assignment
/// (``LedgerConfiguration/group``). In a group, every assignment starts at
/// the offsets PostgreSQL stores at that moment; a revocation is acted on
/// between batches, after the batch in flight committed, and only then are
/// the partitions given up (so the next owner starts where this one
/// stopped, and two ledgers never apply one partition at once while the
/// group works as designed); a lost assignment (session timed out) drops
/// what was read from it. Should two ledgers still apply one partition
/// together (a ledger that stalled past the group's timeouts), the offset
/// check under the partition's row lock in PostgreSQL serialises them and
/// skips what the other committed.
public final class LedgerRunner: Sendable {
  /// What the runner does.
  public let configuration: LedgerConfiguration
  private let logger: Logger
  private let metrics: LedgerMetrics
  private let state = Mutex(Status())

  /// What a health check reads.
  public struct Status: Sendable, Hashable {
    /// Connected to PostgreSQL, migrated, and reading Kafka.
    public var running = false
    /// Deltas applied since start.
    public var applied: Int64 = 0
    /// Duplicates skipped since start.
    public var duplicates: Int64 = 0
    /// Deltas and rejected records skipped since start as already applied
    /// (by offset: another ledger had committed them).
    public var skipped: Int64 = 0
    /// Rejected records stored since start.
    public var rejected: Int64 = 0
    /// Transactions committed since start.
    public var transactions: Int64 = 0
    /// Static assignment: true once every partition was read up to where it
    /// ended when the current reader opened. Consumer group: true while
    /// every assigned partition has reported its end after its last record
    /// (also with none assigned).
    public var caughtUp = false
    /// The partitions read now (a consumer group's assignment changes).
    public var partitions: [Int32] = []
    /// Consumer group assignments, revocations and losses acted on since start.
    public var rebalances: Int64 = 0
    /// Of those, assignments lost without a revocation (the session timed
    /// out, `max.poll.interval.ms` passed during an apply): what had been
    /// read from them was dropped.
    public var lostAssignments: Int64 = 0
    /// The last failure, while retrying.
    public var lastError: String?
  }

  /// Creates a runner; nothing connects until ``run()``.
  public init(
    configuration: LedgerConfiguration, logger: Logger,
    metricsFactory: any MetricsFactory = MetricsSystem.factory
  ) {
    self.configuration = configuration
    self.logger = logger
    self.metrics = LedgerMetrics(factory: metricsFactory)
  }

  /// The current status.
  public var status: Status { state.withLock { $0 } }

  /// Runs until the task is cancelled (then returns after the batch in
  /// flight committed). Kafka or PostgreSQL unreachable: retries with
  /// backoff. A failed migration throws (the ledger refuses to start).
  public func run() async throws {
    var backoff = configuration.retryInitialBackoff
    while !Task.isCancelled {
      do {
        try await session()
        return
      } catch let error as LedgerStoreError where !error.isRetryable {
        throw error
      } catch is CancellationError {
        return
      } catch {
        let text = PostgresLedgerStore.message(of: error)
        state.withLock {
          $0.running = false
          $0.lastError = text
          $0.partitions = []
        }
        metrics.retries.increment()
        logger.warning("ledger: \(text); retrying in \(backoff)")
        do {
          try await Task.sleep(for: backoff)
        } catch {
          return
        }
        backoff = min(backoff * 2, configuration.retryMaxBackoff)
      }
    }
  }

  /// One connection's life: connect, migrate, seek to the stored offsets
  /// (static assignment) or join the consumer group (each assignment seeks
  /// to them), apply until cancelled or a failure.
  private func session() async throws {
    let topic = configuration.source.topic
    let store = try await PostgresLedgerStore.connect(
      to: configuration.destination, logger: logger)
    do {
      try await store.migrate()
      let feed: RecordFeed
      var readFrom: [Int32: Int64] = [:]
      if let group = configuration.group {
        let reader = try KafkaGroupRecordReader(
          bootstrap: configuration.source.bootstrap, topic: topic, group: group,
          properties: configuration.kafkaProperties)
        feed = .group(reader)
        logger.info(
          "ledger: joining consumer group '\(group)' for \(configuration.source) (\(reader.topicPartitions.count) partitions) into \(configuration.destination); every assignment starts at the offsets stored there"
        )
      } else {
        let offsets = try await store.offsets(topic: topic)
        let reader = try KafkaRecordReader(
          bootstrap: configuration.source.bootstrap, topic: topic,
          properties: configuration.kafkaProperties, onlyPartitions: configuration.partitions,
          startOffsets: offsets)
        feed = .fixed(reader)
        for partition in reader.partitions { readFrom[partition] = offsets[partition] ?? 0 }
        logger.info(
          "ledger: reading \(configuration.source) partitions \(reader.partitions) from stored offsets \(Self.describe(offsets)) into \(configuration.destination)"
        )
      }
      defer { feed.close() }
      state.withLock {
        $0.running = true
        $0.lastError = nil
      }
      var lag = PartitionLag(metrics: metrics)
      defer { lag.forgetAll() }
      try await consume(feed, store: store, topic: topic, readFrom: readFrom, lag: &lag)
      await store.close()
    } catch {
      await store.close()
      throw error
    }
  }

  /// Applies batch after batch until cancelled. `readFrom`: per partition
  /// read, the offset its reading started at (the stored one it was seeked
  /// to, then each batch's next offset), which `apply_deltas_from` checks
  /// against the stored one.
  private func consume(
    _ feed: RecordFeed, store: PostgresLedgerStore, topic: String, readFrom start: [Int32: Int64],
    lag: inout PartitionLag
  ) async throws {
    var readFrom = start
    while !Task.isCancelled {
      var batch = LedgerBatch()
      // Fill a batch with what is there now; wait briefly only for the
      // first record; stop at a rebalance.
      var wait: Int32 = 100
      while batch.recordCount < configuration.maxBatchRecords, !feed.hasPendingRebalance {
        let records = try feed.poll(
          timeoutMilliseconds: wait,
          maxRecords: min(1000, configuration.maxBatchRecords - batch.recordCount))
        if records.isEmpty { break }
        wait = 0
        for record in records {
          if let error = batch.append(record) {
            logger.error(
              "ledger: record \(topic)/\(record.partition)@\(record.offset) does not decode (\(error)); stored in privtrak.rejected_records and skipped"
            )
          }
        }
      }
      var rebalances: [KafkaRebalance] = []
      while let rebalance = feed.takeRebalance() { rebalances.append(rebalance) }
      // Lost partitions may already be another member's: what was read from
      // them is dropped (it is read again from the stored offsets by whoever
      // owns them now). Revoked ones are finished: the batch commits first.
      let lost = Set(
        rebalances.flatMap { rebalance -> [Int32] in
          if case .lost(let partitions) = rebalance { return partitions }
          return []
        })
      if !lost.isEmpty, !batch.isEmpty {
        let before = batch.recordCount
        batch = batch.removing(partitions: lost)
        logger.warning(
          "ledger: partitions \(lost.sorted()) lost (session timed out or fenced): \(before - batch.recordCount) records read from them dropped, not applied"
        )
      }
      if !batch.isEmpty {
        // Not cancelled by a SIGTERM: the statement in flight finishes and its
        // outcome is counted (a cancelled query could commit with nobody
        // knowing); bounded by the apply timeout and the connection's life.
        let outcome = try await store.apply(
          batch, topic: topic, from: readFrom, timeout: configuration.applyTimeout)
        for (partition, next) in batch.nextOffsets { readFrom[partition] = next }
        lag.applied(batch)
        metrics.transactions.increment()
        metrics.applied.increment(by: outcome.applied)
        metrics.duplicates.increment(by: outcome.duplicates)
        metrics.skipped.increment(by: outcome.skipped)
        metrics.rejected.increment(by: batch.rejectedCount)
        state.withLock {
          $0.applied += outcome.applied
          $0.duplicates += outcome.duplicates
          $0.skipped += outcome.skipped
          $0.rejected += Int64(batch.rejectedCount)
          $0.transactions += 1
        }
      }
      for rebalance in rebalances {
        try await handle(
          rebalance, feed: feed, store: store, topic: topic, readFrom: &readFrom, lag: &lag)
      }
      lag.update(partitions: feed.partitions, nowMilliseconds: Self.nowMilliseconds()) {
        feed.lag(of: $0)
      }
      let caughtUp = feed.caughtUp
      let partitions = feed.partitions
      state.withLock {
        $0.caughtUp = caughtUp
        $0.partitions = partitions
        $0.rebalances += Int64(rebalances.count)
        $0.lostAssignments += Int64(
          rebalances.filter { if case .lost = $0 { true } else { false } }.count)
      }
      if batch.isEmpty && rebalances.isEmpty { await Task.yield() }
    }
  }

  /// Acts on a consumer group's decision: an assignment starts at the
  /// offsets PostgreSQL stores now; a revocation or loss gives the
  /// partitions up (the batch read from revoked ones has committed by now,
  /// the one from lost ones was dropped).
  private func handle(
    _ rebalance: KafkaRebalance, feed: RecordFeed, store: PostgresLedgerStore, topic: String,
    readFrom: inout [Int32: Int64], lag: inout PartitionLag
  ) async throws {
    guard case .group(let reader) = feed else { return }
    metrics.rebalances.increment()
    switch rebalance {
    case .assigned(let partitions):
      let stored = try await store.offsets(topic: topic).filter { partitions.contains($0.key) }
      try reader.assign(partitions, startOffsets: stored)
      readFrom = [:]
      for partition in partitions { readFrom[partition] = stored[partition] ?? 0 }
      logger.info(
        "ledger: group '\(reader.group)' assigned partitions \(partitions); reading from stored offsets \(Self.describe(stored)) (others from the beginning)"
      )
    case .revoked(let partitions), .lost(let partitions):
      // Eager assignors: the whole assignment goes.
      let given = Set(reader.assignedPartitions).union(partitions)
      try reader.unassign()
      readFrom = [:]
      lag.forget(given)
      let how =
        if case .lost = rebalance {
          "lost partitions \(partitions): given up, what was read from them dropped"
        } else {
          "revoked partitions \(partitions): given up after the batch in flight committed"
        }
      logger.info("ledger: group '\(reader.group)' \(how)")
    }
  }

  private static func describe(_ offsets: [Int32: Int64]) -> String {
    "\(offsets.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" })"
  }

  private static func nowMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
  }
}

/// Where a ledger's records come from: a static assignment
/// (`ledger.partitions`, or every partition) or a consumer group's.
/// Not `Sendable`: used by the one task that runs a session.
private enum RecordFeed {
  case fixed(KafkaRecordReader)
  case group(KafkaGroupRecordReader)

  /// The partitions read now.
  var partitions: [Int32] {
    switch self {
    case .fixed(let reader): reader.partitions
    case .group(let reader): reader.assignedPartitions
    }
  }

  var hasPendingRebalance: Bool {
    switch self {
    case .fixed: false
    case .group(let reader): reader.hasPendingRebalance
    }
  }

  /// Static: every partition was read up to its end at start. Group: every
  /// assigned partition reported its end after its last record (true with
  /// none assigned).
  var caughtUp: Bool {
    switch self {
    case .fixed(let reader): reader.reachedEndAtStart
    case .group(let reader): Set(reader.assignedPartitions).isSubset(of: reader.partitionsAtEnd)
    }
  }

  func takeRebalance() -> KafkaRebalance? {
    switch self {
    case .fixed: nil
    case .group(let reader): reader.takeRebalance()
    }
  }

  func poll(timeoutMilliseconds: Int32, maxRecords: Int) throws(KafkaDeltaReaderError)
    -> [KafkaRawRecord]
  {
    switch self {
    case .fixed(let reader):
      try reader.poll(timeoutMilliseconds: timeoutMilliseconds, maxRecords: maxRecords)
    case .group(let reader):
      try reader.poll(timeoutMilliseconds: timeoutMilliseconds, maxRecords: maxRecords)
    }
  }

  func lag(of partition: Int32) -> Int64? {
    switch self {
    case .fixed(let reader): reader.lag(of: partition)
    case .group(let reader): reader.lag(of: partition)
    }
  }

  func close() {
    switch self {
    case .fixed(let reader): reader.close()
    case .group(let reader): reader.close()
    }
  }
}
