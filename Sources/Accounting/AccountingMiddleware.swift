import BitTorrent
import DeltaModel
import Logging
import Metrics
import Synchronization
import Tracker

/// How start-up restoration went.
public enum RestoreOutcome: Sendable, Equatable {
  /// No snapshot store was configured.
  case noSnapshotStore
  /// The snapshot was loaded.
  case restored(entries: Int, pendingDeltas: Int)
  /// The snapshot was missing or unreadable (the error names the file and
  /// the problem); the middleware started empty.
  case startedEmpty(SnapshotError)
}

/// Counters of the whole middleware.
public struct AccountingStatistics: Sendable, Equatable {
  /// Entries in the stats store.
  public var entries: Int
  /// The batcher's counters.
  public var batcher: BatcherStatistics
}

/// The privtrak accounting middleware: a pre-hook that identifies the user
/// of every announce and turns it into an exact delta, plus the long-lived
/// work behind it (publishing, GC, snapshots).
///
/// Wiring, in the executable:
/// ```swift
/// let accounting = await AccountingMiddleware(
///     configuration: config, sink: kafkaSink,
///     snapshotStore: FileSnapshotStore(path: "/var/lib/privtrak/stats.snap"))
/// let tracker = Tracker(preHooks: [accounting])
/// // swift-service-lifecycle: a Service whose run() is
/// //   await cancelWhenGracefulShutdown { await accounting.run() }
/// // placed after the frontends, so they stop accepting first.
/// ```
/// `run()` returns after graceful shutdown (task cancellation): it stops
/// accepting announces, publishes what is pending, writes the final
/// snapshot (with whatever could not be delivered) and closes the sink.
public final class AccountingMiddleware: PreHook, Sendable {
  /// The effective (validated) configuration.
  public let configuration: AccountingConfiguration
  /// The bounded batcher (for `drain`, `pendingDeltas`, statistics).
  public let batcher: DeltaBatcher
  /// Derives users from requests.
  public let identifier: any UserIdentifier
  /// What happened to the snapshot at start-up.
  public let restoreOutcome: RestoreOutcome

  let store: StatsStore
  private let recorder: AnnounceRecorder
  private let collector: StatsCollector
  private let snapshotter: StatsSnapshotter
  private let snapshotStore: (any StatsSnapshotStore)?
  private let journal: CommitJournal?
  /// Snapshots must not overlap: each rotates the commit journal.
  private let snapshotInProgress = Mutex(false)
  private let sink: any DeltaSink
  private let trackerClock: any TrackerClock
  private let clock: ElapsedClock
  private let metrics: AccountingMetrics
  private let logger: Logger

  /// Creates the middleware and restores the snapshot, if any (a missing,
  /// truncated or corrupt one is logged and the middleware starts empty).
  /// - Parameters:
  ///   - sink: where sealed batches go.
  ///   - identifier: derives users (passkeys by default).
  ///   - snapshotStore: where snapshots live; nil disables snapshots.
  ///   - journal: where published batches' baseline changes are logged
  ///     between snapshots, so a killed process recounts nothing it had
  ///     published (see ``CommitJournal``); nil disables it.
  ///   - trackerClock: timestamps of deltas and entries (wall clock).
  ///   - clock: drives flushes, `maxWait`, backoff, GC pacing and
  ///     snapshot intervals (`ContinuousClock` in production).
  ///   - metricsFactory: where metrics go (the bootstrapped backend by default).
  public init(
    configuration: AccountingConfiguration = AccountingConfiguration(), sink: any DeltaSink,
    identifier: any UserIdentifier = PasskeyUserIdentifier(),
    snapshotStore: (any StatsSnapshotStore)? = nil, journal: CommitJournal? = nil,
    trackerClock: any TrackerClock = SystemClock(), clock: any Clock<Duration> = ContinuousClock(),
    metricsFactory: any MetricsFactory = MetricsSystem.factory,
    logger: Logger = Logger(label: "privtrak.accounting")
  ) async {
    let configuration = configuration.validated()
    // The journal only means something relative to a snapshot.
    let journal = snapshotStore == nil ? nil : journal
    let metrics = AccountingMetrics(factory: metricsFactory)
    let elapsedClock = ElapsedClock(clock)
    let store = StatsStore(shardCount: configuration.shardCount)
    let batcher = DeltaBatcher(
      configuration: configuration, sink: sink, clock: elapsedClock, metrics: metrics,
      logger: logger, journal: journal)
    self.configuration = configuration
    self.batcher = batcher
    self.identifier = identifier
    self.store = store
    self.recorder = AnnounceRecorder(
      store: store, batcher: batcher, configuration: configuration, metrics: metrics)
    self.collector = StatsCollector(
      store: store, batcher: batcher, configuration: configuration, metrics: metrics)
    self.snapshotter = StatsSnapshotter(store: store, batcher: batcher)
    self.snapshotStore = snapshotStore
    self.journal = journal
    self.sink = sink
    self.trackerClock = trackerClock
    self.clock = elapsedClock
    self.metrics = metrics
    self.logger = logger
    self.restoreOutcome = await Self.restore(
      from: snapshotStore, journal: journal, into: snapshotter, logger: logger)
    journal?.rotate(instance: batcher.instance)
    metrics.entries.record(store.count)
  }

  private static func restore(
    from snapshotStore: (any StatsSnapshotStore)?, journal: CommitJournal?,
    into snapshotter: StatsSnapshotter, logger: Logger
  ) async -> RestoreOutcome {
    guard let snapshotStore else { return .noSnapshotStore }
    var snapshot: StatsSnapshot?
    var outcome: RestoreOutcome
    do throws(SnapshotError) {
      let loaded = try await snapshotStore.load()
      snapshot = loaded
      outcome = .restored(entries: loaded.entries.count, pendingDeltas: loaded.pendingDeltas.count)
    } catch {
      if error.kind == .missing {
        logger.notice("\(error); starting with empty accounting state")
      } else {
        logger.error("\(error); starting with empty accounting state")
      }
      outcome = .startedEmpty(error)
    }
    let recovery = journal?.recover(after: snapshot)
    snapshotter.restore(snapshot, journal: recovery)
    if let snapshot {
      logger.info(
        "restored accounting snapshot",
        metadata: [
          "entries": "\(snapshot.entries.count)",
          "pending_deltas": "\(snapshot.pendingDeltas.count)",
          "instance": "\(snapshot.instance)",
        ])
    }
    if let recovery, recovery.files > 0 {
      for problem in recovery.problems { logger.warning("commit journal: \(problem)") }
      let requeued = snapshot.map { snapshot in
        snapshot.pendingDeltas.filter {
          $0.origin.sequence > recovery.published[$0.origin.instance, default: 0]
        }.count
      }
      logger.notice(
        "replayed the commit journal over the snapshot: baselines of deltas published after it restored",
        metadata: [
          "files": "\(recovery.files)", "changes": "\(recovery.changes.count)",
          "snapshot_cut_found": "\(recovery.cutFound)",
          "pending_deltas_requeued": "\(requeued ?? 0)",
        ])
    }
    return outcome
  }

  /// Commit-journal size that triggers a snapshot before its interval.
  public static let journalBytesBeforeSnapshot = 256 << 20

  /// This process's `DeltaOrigin.instance`.
  public var instance: UInt64 { batcher.instance }

  // MARK: PreHook

  /// Identifies the user unless an earlier hook did (`context.userID`;
  /// `.forbidden` failure, nothing recorded, when the request does not
  /// identify one), sets `context.userID` and records the
  /// announce. Suspends while the batcher is full; fails with retry-later
  /// after `maxWait` without advancing the baseline.
  public func beforeAnnounce(_ request: inout AnnounceRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    if case .suspend(let rest) = try beforeAnnounceWithoutSuspending(&request, context: &context) {
      try await rest(&request, &context)
    }
  }

  /// The same, without suspending unless the batcher is full: identifies
  /// the user and records the announce at once; only the bounded wait for
  /// room is left to the returned step.
  public func beforeAnnounceWithoutSuspending(
    _ request: inout AnnounceRequest, context: inout HookContext
  ) throws(TrackerFailure) -> PreHookStep {
    let userID: UserID
    if let approved = context.userID {
      // An earlier hook (the registry's approval) identified the user.
      userID = approved
    } else {
      do throws(TrackerFailure) {
        userID = try identifier.identify(request)
      } catch {
        metrics.identificationFailures.increment()
        throw error
      }
      context.userID = userID
    }
    guard
      let waitingKey = try recorder.recordWithoutWaiting(
        request, userID: userID, factors: context.factors, now: context.receivedAt,
        nowMilliseconds: context.receivedAtMilliseconds)
    else { return .done }
    let recorder = recorder
    return .suspend { _, context throws(TrackerFailure) in
      try await recorder.recordAfterWaiting(
        waitingKey, now: context.receivedAt, nowMilliseconds: context.receivedAtMilliseconds)
    }
  }

  /// Identifies the user of a scrape: required when
  /// `requirePasskeyForScrape`, otherwise taken when valid and ignored when not.
  public func beforeScrape(_ request: inout ScrapeRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    // An earlier hook (the registry's approval) identified the user.
    if context.userID != nil { return }
    if configuration.requirePasskeyForScrape {
      do throws(TrackerFailure) {
        context.userID = try identifier.identify(request)
      } catch {
        metrics.identificationFailures.increment()
        throw error
      }
    } else if let userID = try? identifier.identify(request) {
      context.userID = userID
    }
  }

  // MARK: Queries

  /// Whether any client of `user` has a live entry on `infoHash` (reads one shard).
  public func knows(user: UserID, infoHash: InfoHash) -> Bool {
    store.knows(user, infoHash)
  }

  /// Current counters.
  public func statistics() -> AccountingStatistics {
    AccountingStatistics(entries: store.count, batcher: batcher.statistics())
  }

  // MARK: Long-lived work

  /// Runs publishing, GC and periodic snapshots until cancelled, then shuts
  /// down gracefully (see the type's documentation) and returns.
  public func run() async {
    await withDiscardingTaskGroup { group in
      group.addTask { await self.batcher.run() }
      group.addTask { await self.garbageCollectionLoop() }
      // Without an interval the journal's size still triggers snapshots.
      let interval =
        configuration.snapshotInterval ?? (journal == nil ? nil : .seconds(100 * 365 * 86_400))
      if let interval, snapshotStore != nil {
        group.addTask { await self.snapshotLoop(every: interval) }
      }
    }
    // The batcher has closed and drained what it could.
    if snapshotStore != nil {
      do throws(SnapshotError) {
        try await writeSnapshot()
      } catch {
        // Logged by writeSnapshot.
      }
    } else {
      let undelivered = batcher.statistics().pendingDeltas
      if undelivered > 0 {
        logger.error(
          "shutting down with undelivered deltas and no snapshot store: they are lost",
          metadata: ["pending_deltas": "\(undelivered)"])
      }
    }
    do {
      try await sink.close()
    } catch {
      logger.error("closing the delta sink failed", metadata: ["error": "\(error)"])
    }
  }

  /// Seals the open batch and publishes sealed batches once (for tests and
  /// tools that do not call ``run()``). True when everything was published.
  @discardableResult
  public func flush() async -> Bool {
    await batcher.flush()
  }

  /// One full GC sweep over all shards, now. Waits for room rather than
  /// drop an expiry. Returns how many entries expired.
  @discardableResult
  public func collectGarbage() async -> Int {
    var users = UserCountEstimator()
    let started = ContinuousClock.now
    var expired = 0
    for shard in 0..<store.shardCount {
      let milliseconds = trackerClock.nowMilliseconds()
      expired += await collector.collect(
        shard: shard, now: UInt32(clamping: milliseconds / 1000), nowMilliseconds: milliseconds,
        users: &users)
    }
    finishSweep(duration: ContinuousClock.now - started, users: users)
    return expired
  }

  /// Captures the current state as a snapshot (without writing it).
  public func captureSnapshot() -> StatsSnapshot {
    snapshotter.capture(createdAtMilliseconds: trackerClock.nowMilliseconds())
  }

  /// Captures and saves a snapshot. Returns false when no snapshot store
  /// is configured; throws (and logs) when saving failed.
  @discardableResult
  public func writeSnapshot() async throws(SnapshotError) -> Bool {
    guard let snapshotStore else { return false }
    let started = ContinuousClock.now
    // Only a snapshot that owns the journal rotation may cut it; an
    // overlapping one is saved without a cut (a crash after it would
    // replay nothing and recount, as without a journal).
    let ownsJournal =
      journal != nil
      && snapshotInProgress.withLock { busy in
        defer { busy = true }
        return !busy
      }
    defer { if ownsJournal { snapshotInProgress.withLock { $0 = false } } }
    let generation = ownsJournal ? journal?.rotate(instance: batcher.instance) : nil
    let (snapshot, shardSequences) = snapshotter.captureWithCut(
      createdAtMilliseconds: trackerClock.nowMilliseconds())
    if generation != nil { journal?.recordCut(of: snapshot, shardSequences: shardSequences) }
    do throws(SnapshotError) {
      try await snapshotStore.save(snapshot)
      if let generation { journal?.removeGenerations(before: generation) }
    } catch {
      metrics.snapshotFailures.increment()
      logger.error("\(error)")
      throw error
    }
    metrics.snapshotsWritten.increment()
    metrics.snapshotDuration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
    logger.info(
      "accounting snapshot written",
      metadata: [
        "entries": "\(snapshot.entries.count)", "pending_deltas": "\(snapshot.pendingDeltas.count)",
      ])
    return true
  }

  /// One shard per step, steps spread evenly over `gcInterval`.
  private func garbageCollectionLoop() async {
    let pause = configuration.gcInterval / store.shardCount
    var users = UserCountEstimator()
    var sweepDuration = Duration.zero
    var shard = 0
    while !Task.isCancelled {
      let started = ContinuousClock.now
      let milliseconds = trackerClock.nowMilliseconds()
      _ = await collector.collect(
        shard: shard, now: UInt32(clamping: milliseconds / 1000), nowMilliseconds: milliseconds,
        users: &users)
      sweepDuration += ContinuousClock.now - started
      // An atomic load: cheap enough to keep the gauge fresh at every step.
      metrics.entries.record(store.count)
      shard += 1
      if shard == store.shardCount {
        finishSweep(duration: sweepDuration, users: users)
        users = UserCountEstimator()
        sweepDuration = .zero
        shard = 0
      }
      do {
        try await clock.sleep(until: clock.now() + pause)
      } catch {
        return
      }
    }
  }

  private func finishSweep(duration: Duration, users: UserCountEstimator) {
    metrics.gcDuration.recordNanoseconds(duration.nanoseconds)
    metrics.users.record(users.estimate)
    metrics.entries.record(store.count)
  }

  /// Snapshots every `interval`, or sooner once the commit journal holds
  /// ``journalBytesBeforeSnapshot`` (a snapshot starts a new journal).
  private func snapshotLoop(every interval: Duration) async {
    let poll = journal == nil ? interval : min(interval, .seconds(5))
    while true {
      let due = clock.now() + interval
      while true {
        do {
          try await clock.sleep(until: min(due, clock.now() + poll))
        } catch {
          return
        }
        if clock.now() >= due { break }
        if let journal, journal.bytesSinceRotation >= Self.journalBytesBeforeSnapshot { break }
      }
      do throws(SnapshotError) {
        try await writeSnapshot()
      } catch {
        // Logged by writeSnapshot; the next interval tries again.
      }
    }
  }
}

extension Duration {
  /// Whole nanoseconds, saturating.
  var nanoseconds: Int64 {
    let (seconds, attoseconds) = components
    let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return seconds < 0 ? .min : .max }
    return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow
      ? .max : scaled + attoseconds / 1_000_000_000
  }
}
