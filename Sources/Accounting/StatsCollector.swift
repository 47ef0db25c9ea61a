/// Garbage collection of silent entries, one shard per step so no lock is
/// held for long and no sweep stops the world.
struct StatsCollector: Sendable {
  let store: StatsStore
  let batcher: DeltaBatcher
  let configuration: AccountingConfiguration
  let metrics: AccountingMetrics

  private enum Step: Sendable {
    case done
    case blocked
    case closed
  }

  /// Expires every entry of one shard silent for `peerLifetime`: an
  /// `expired` delta is queued and the entry removed, atomically under the
  /// shard lock. When the batcher is full, GC waits for room (ahead of
  /// announces) rather than drop an expiry; it gives up only when the
  /// batcher closes or the task is cancelled, leaving the rest for later.
  /// Surviving entries' users are fed to `users`.
  /// - Returns: the number of entries expired.
  func collect(
    shard index: Int, now: UInt32, nowMilliseconds: Int64, users: inout UserCountEstimator
  ) async -> Int {
    let lifetime = configuration.peerLifetimeSeconds
    // Entries last seen before the cutoff expire.
    let cutoff = now > lifetime ? now - lifetime : 0
    var expired = 0
    var reservation: DeltaReservation?
    while true {
      let step = store.withShard(index) { table -> Step in
        var position = 0
        while position < table.count {
          let entry = table[position]
          guard entry.lastSeen < cutoff else {
            users.add(entry.userID)
            position += 1
            continue
          }
          var delta = AccountingRules.expiredDelta(
            for: entry, now: now, nowMilliseconds: nowMilliseconds, configuration: configuration)
          let change =
            batcher.journal == nil
            ? nil
            : JournalChange(
              kind: .remove, shard: UInt32(truncatingIfNeeded: index), sequence: 0, entry: entry)
          if let granted = reservation {
            batcher.append(&delta, change: change, using: granted)
            reservation = nil
          } else {
            switch batcher.tryAppend(&delta, change: change, bypassingWaiters: true) {
            case .appended: break
            case .full: return .blocked
            case .closed: return .closed
            }
          }
          // The last entry moves into `position`; look at it next.
          table.remove(at: position, hash: StatsKeyHash.entry(of: entry))
          expired += 1
        }
        table.compact()
        return .done
      }
      switch step {
      case .done, .closed:
        if let unused = reservation { batcher.release(unused) }
        metrics.gcExpired.increment(by: expired)
        return expired
      case .blocked:
        guard case .granted(let granted) = await batcher.waitForCapacity(priority: true) else {
          metrics.gcExpired.increment(by: expired)
          return expired
        }
        reservation = granted
      }
    }
  }
}
