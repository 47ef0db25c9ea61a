import Metrics

/// The accounting middleware's metrics (swift-metrics; the service layer
/// bootstraps the backend). Names are stable; every one starts with
/// `privtrak_accounting_`.
final class AccountingMetrics: Sendable {
  /// Entries in the stats store (exact).
  let entries: Gauge
  /// Distinct users with at least one entry — approximate: a HyperLogLog
  /// estimate (≈ 1.6 % standard error) refreshed after every full GC sweep.
  let users: Gauge
  /// Deltas not yet durably published (open, sealed, in flight).
  let pendingDeltas: Gauge
  /// Summed estimated size of those deltas, in bytes.
  let pendingBytes: Gauge
  /// Announces currently suspended waiting for room.
  let waiters: Gauge
  /// Deltas durably published.
  let deltasPublished: Counter
  /// Batches durably published.
  let batchesPublished: Counter
  /// Failed publish attempts (each is retried).
  let publishFailures: Counter
  /// Announces that had to wait for room in the batcher.
  let waits: Counter
  /// Announces failed with retry-later after waiting `maxWait`.
  let waitTimeouts: Counter
  /// Announces failed with retry-later at once because `maxWaiters` were already waiting.
  let waitersRejected: Counter
  /// Announces or scrapes refused because they did not identify a user.
  let identificationFailures: Counter
  /// Deltas flagged `reset` (a client's counters went backwards).
  let resets: Counter
  /// Duration of one full GC sweep over all shards.
  let gcDuration: Timer
  /// Entries expired by GC.
  let gcExpired: Counter
  /// Snapshots written.
  let snapshotsWritten: Counter
  /// Snapshot writes that failed.
  let snapshotFailures: Counter
  /// Duration of one snapshot write.
  let snapshotDuration: Timer

  /// Creates the metrics through `factory`.
  init(factory: any MetricsFactory) {
    func name(_ suffix: String) -> String { "privtrak_accounting_" + suffix }
    entries = Gauge(label: name("entries"), factory: factory)
    users = Gauge(label: name("users"), factory: factory)
    pendingDeltas = Gauge(label: name("pending_deltas"), factory: factory)
    pendingBytes = Gauge(label: name("pending_bytes"), factory: factory)
    waiters = Gauge(label: name("waiters"), factory: factory)
    deltasPublished = Counter(label: name("deltas_published_total"), factory: factory)
    batchesPublished = Counter(label: name("batches_published_total"), factory: factory)
    publishFailures = Counter(label: name("publish_failures_total"), factory: factory)
    waits = Counter(label: name("waits_total"), factory: factory)
    waitTimeouts = Counter(label: name("wait_timeouts_total"), factory: factory)
    waitersRejected = Counter(label: name("waiters_rejected_total"), factory: factory)
    identificationFailures = Counter(label: name("identification_failures_total"), factory: factory)
    resets = Counter(label: name("resets_total"), factory: factory)
    gcDuration = Timer(label: name("gc_duration_seconds"), factory: factory)
    gcExpired = Counter(label: name("gc_expired_total"), factory: factory)
    snapshotsWritten = Counter(label: name("snapshots_written_total"), factory: factory)
    snapshotFailures = Counter(label: name("snapshot_failures_total"), factory: factory)
    snapshotDuration = Timer(label: name("snapshot_duration_seconds"), factory: factory)
  }
}
