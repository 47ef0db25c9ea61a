import DeltaModel

/// Every knob of the accounting middleware. Durations are `Duration` values;
/// sizes say their unit in the name or the doc comment.
public struct AccountingConfiguration: Sendable, Equatable {
  /// Deltas per batch: a batch is sealed as soon as it holds this many
  /// (or when `flushInterval` passes, whichever comes first). Count, ≥ 1.
  public var batchSize: Int
  /// Longest time the first delta of an open batch waits before the batch
  /// is sealed and handed to the sink. Measured on the injected `Clock`.
  public var flushInterval: Duration
  /// Upper bound on deltas held in memory and not yet durably published
  /// (open, sealed and in-flight batches, plus reservations). Count, ≥ 1.
  public var maxPendingDeltas: Int
  /// Upper bound on the summed `Delta.estimatedSize` of those deltas. Bytes.
  public var maxPendingBytes: Int
  /// Longest time an announce is suspended waiting for room in a full
  /// batcher before it fails with a retry-later reason. Measured on the injected `Clock`.
  public var maxWait: Duration
  /// Most announces suspended at once waiting for room; announces beyond it
  /// fail immediately with a retry-later reason. Count, ≥ 0.
  public var maxWaiters: Int
  /// BEP 31 `retry in` hint, in minutes, sent with retry-later failures.
  public var retryInMinutes: Int
  /// An entry without an announce for this long is expired by GC (an
  /// `expired` delta, then removed). Compared with `TrackerClock` time at
  /// one-second resolution.
  public var peerLifetime: Duration
  /// Time for one full garbage-collection sweep over all shards; the sweep
  /// visits one shard per step, spread evenly over this interval.
  public var gcInterval: Duration
  /// When true, `stopped` always emits a final delta, even with zero bytes.
  public var emitStopped: Bool
  /// When true, every announce of a known entry emits a delta, even one
  /// that moved no bytes: a consumer then sees every interval, so seed time
  /// (and hit-and-run) counts an idle seeder. Off, idle announces emit
  /// nothing (fewer deltas; seed time then sees only moving intervals).
  public var emitIdleAnnounces = false
  /// When true, deltas carry the announcing client's IP address.
  public var recordClientIP: Bool
  /// When true, deltas carry the announcing client's peer id.
  public var recordPeerID: Bool
  /// When true, scrapes need a valid passkey too (a private tracker does
  /// not answer strangers); when false a valid passkey still identifies the
  /// user and an absent or malformed one is ignored.
  public var requirePasskeyForScrape: Bool
  /// The `DeltaOrigin.instance` of this process; nil picks a random non-zero
  /// value at every start. Configure it only if every process gets its own
  /// value: a restart from a snapshot of the same instance continues its
  /// sequence, a restart without one starts again at 1.
  public var instance: UInt64?
  /// Independently locked shards of the stats store (rounded up to a power of two).
  public var shardCount: Int
  /// First wait after a failed publish; doubles per consecutive failure.
  public var publishRetryInitialBackoff: Duration
  /// Longest wait between two publish attempts of the same batch.
  public var publishRetryMaxBackoff: Duration
  /// Time between periodic snapshots; nil writes snapshots only at shutdown.
  public var snapshotInterval: Duration?
  /// Longest time shutdown spends publishing what is pending before the
  /// rest goes into the snapshot.
  public var shutdownDrainTimeout: Duration

  /// Creates a configuration; the defaults suit a production tracker.
  public init(
    batchSize: Int = 1000,
    flushInterval: Duration = .seconds(1),
    maxPendingDeltas: Int = 100_000,
    maxPendingBytes: Int = 16 << 20,
    maxWait: Duration = .seconds(2),
    maxWaiters: Int = 10_000,
    retryInMinutes: Int = 1,
    peerLifetime: Duration = .seconds(3900),
    gcInterval: Duration = .seconds(60),
    emitStopped: Bool = false,
    recordClientIP: Bool = false,
    recordPeerID: Bool = false,
    requirePasskeyForScrape: Bool = true,
    instance: UInt64? = nil,
    shardCount: Int = 1024,
    publishRetryInitialBackoff: Duration = .milliseconds(100),
    publishRetryMaxBackoff: Duration = .seconds(30),
    snapshotInterval: Duration? = .seconds(300),
    shutdownDrainTimeout: Duration = .seconds(10)
  ) {
    self.batchSize = batchSize
    self.flushInterval = flushInterval
    self.maxPendingDeltas = maxPendingDeltas
    self.maxPendingBytes = maxPendingBytes
    self.maxWait = maxWait
    self.maxWaiters = maxWaiters
    self.retryInMinutes = retryInMinutes
    self.peerLifetime = peerLifetime
    self.gcInterval = gcInterval
    self.emitStopped = emitStopped
    self.recordClientIP = recordClientIP
    self.recordPeerID = recordPeerID
    self.requirePasskeyForScrape = requirePasskeyForScrape
    self.instance = instance
    self.shardCount = shardCount
    self.publishRetryInitialBackoff = publishRetryInitialBackoff
    self.publishRetryMaxBackoff = publishRetryMaxBackoff
    self.snapshotInterval = snapshotInterval
    self.shutdownDrainTimeout = shutdownDrainTimeout
  }

  /// The largest `Delta.estimatedSize` a delta can have under this
  /// configuration; each waiting announce reserves this much.
  public var maxDeltaSize: Int {
    96 + (recordClientIP ? 18 : 0) + (recordPeerID ? 22 : 0)
  }

  /// `peerLifetime` in whole seconds (at least 1).
  var peerLifetimeSeconds: UInt32 {
    UInt32(clamping: max(1, peerLifetime.components.seconds))
  }

  /// A copy with every value forced into its valid range, so the rest of
  /// the code never re-checks.
  func validated() -> AccountingConfiguration {
    var copy = self
    copy.batchSize = max(1, batchSize)
    copy.maxPendingDeltas = max(1, maxPendingDeltas)
    copy.maxPendingBytes = max(maxDeltaSize, maxPendingBytes)
    copy.maxWaiters = max(0, maxWaiters)
    copy.retryInMinutes = max(1, retryInMinutes)
    copy.maxWait = max(.zero, maxWait)
    copy.flushInterval = max(.zero, flushInterval)
    copy.gcInterval = max(.zero, gcInterval)
    var shards = 1
    while shards < max(1, shardCount) { shards <<= 1 }
    copy.shardCount = shards
    copy.publishRetryInitialBackoff = max(.zero, publishRetryInitialBackoff)
    copy.publishRetryMaxBackoff = max(copy.publishRetryInitialBackoff, publishRetryMaxBackoff)
    copy.shutdownDrainTimeout = max(.zero, shutdownDrainTimeout)
    return copy
  }
}
