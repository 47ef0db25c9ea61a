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
/// are never used); after any failure the reader is reopened at the stored
/// offsets, so a batch whose commit was lost is read and applied again, and
/// one that did commit is skipped by `apply_deltas` (offset check) — nothing
/// is lost and nothing counts twice. Memory is bounded by one batch.
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
    /// Rejected records stored since start.
    public var rejected: Int64 = 0
    /// Transactions committed since start.
    public var transactions: Int64 = 0
    /// True once every assigned partition was read up to where it ended
    /// when the current reader opened.
    public var caughtUp = false
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

  /// One connection's life: connect, migrate, seek to the stored offsets,
  /// apply until cancelled or a failure.
  private func session() async throws {
    let topic = configuration.source.topic
    let store = try await PostgresLedgerStore.connect(
      to: configuration.destination, logger: logger)
    do {
      try await store.migrate()
      let offsets = try await store.offsets(topic: topic)
      let reader = try KafkaRecordReader(
        bootstrap: configuration.source.bootstrap, topic: topic,
        properties: configuration.kafkaProperties, onlyPartitions: configuration.partitions,
        startOffsets: offsets)
      defer { reader.close() }
      logger.info(
        "ledger: reading \(configuration.source) partitions \(reader.partitions) from stored offsets \(offsets.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }) into \(configuration.destination)"
      )
      state.withLock {
        $0.running = true
        $0.lastError = nil
      }
      try await consume(reader, store: store, topic: topic)
      await store.close()
    } catch {
      await store.close()
      throw error
    }
  }

  private func consume(_ reader: KafkaRecordReader, store: PostgresLedgerStore, topic: String)
    async throws
  {
    while !Task.isCancelled {
      var batch = LedgerBatch()
      // Fill a batch with what is there now; wait briefly only for the first record.
      var wait: Int32 = 100
      while batch.recordCount < configuration.maxBatchRecords {
        let records = try reader.poll(
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
      let caughtUp = reader.reachedEndAtStart
      let lag = reader.lag()
      metrics.lagRecords.record(lag)
      if batch.isEmpty {
        state.withLock { $0.caughtUp = caughtUp }
        metrics.lagSeconds.record(0)
        await Task.yield()
        continue
      }
      // Not cancelled by a SIGTERM: the statement in flight finishes and its
      // outcome is counted (a cancelled query could commit with nobody
      // knowing); bounded by the apply timeout and the connection's life.
      let outcome = try await store.apply(
        batch, topic: topic, timeout: configuration.applyTimeout)
      metrics.transactions.increment()
      metrics.applied.increment(by: outcome.applied)
      metrics.duplicates.increment(by: outcome.duplicates)
      metrics.skipped.increment(by: outcome.skipped)
      metrics.rejected.increment(by: batch.rejectedCount)
      if let newest = batch.newestReportedAtMilliseconds {
        metrics.lagSeconds.record(max(0, Double(Self.nowMilliseconds() - newest) / 1000))
      }
      state.withLock {
        $0.applied += outcome.applied
        $0.duplicates += outcome.duplicates
        $0.rejected += Int64(batch.rejectedCount)
        $0.transactions += 1
        $0.caughtUp = caughtUp
      }
    }
  }

  private static func nowMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
  }
}
