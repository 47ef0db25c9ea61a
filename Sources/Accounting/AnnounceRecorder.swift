import BitTorrent
import Tracker

/// Records one announce: applies the rules, queues the delta (two for a
/// stop that snatched, with `emitStopped`), advances the baseline — the
/// latter two atomically.
///
/// Why this order, and why it is safe ("no byte is ever lost"):
/// 1. Under the entry's shard lock, the delta is computed from the stored
///    baseline and offered to the batcher with a *non-suspending* append
///    (the batcher's lock nests inside the shard lock; the batcher never
///    takes a shard lock, so there is no lock-order cycle).
/// 2. Only if the append succeeded is the baseline advanced (or the entry
///    inserted/removed) — still under the same lock. A concurrent announce
///    of the same entry is serialised by that lock and sees either the old
///    baseline with nothing queued, or the new baseline with the delta
///    queued; never a mix, so bytes are counted exactly once.
/// 3. If the batcher is full, nothing changed; the lock is released and the
///    announce parks in the batcher's bounded waiter queue. Room freed by a
///    publish is handed to the waiter as a reservation, and the announce
///    goes back to step 1, recomputing from whatever the baseline is *now*
///    (another announce may have advanced it meanwhile) and appending into
///    its reservation, which cannot fail.
/// 4. If `maxWait` passes first, the announce fails with retry-later and
///    the baseline is untouched: the next successful announce of the entry
///    carries the missed bytes.
struct AnnounceRecorder: Sendable {
  let store: StatsStore
  let batcher: DeltaBatcher
  let configuration: AccountingConfiguration
  let metrics: AccountingMetrics

  private enum Attempt: Sendable {
    case recorded(reset: Bool)
    case full
    case closed
  }

  /// One announce's key, computed once.
  struct Key: Sendable {
    var report: AccountingRules.Report
    var hash: StatsKeyHash
    var shard: Int
  }

  /// The fast path, synchronous so the common case costs no extra async
  /// frame: records the announce unless the batcher is full.
  /// - Returns: nil when recorded; the key to pass to
  ///   ``recordAfterWaiting(_:now:nowMilliseconds:)`` when the batcher was
  ///   full (nothing changed).
  func recordWithoutWaiting(
    _ request: AnnounceRequest, userID: UserID, factors: CreditFactors = .unit, now: UInt32,
    nowMilliseconds: Int64
  )
    throws(TrackerFailure) -> Key?
  {
    // After shutdown began nothing may change: the final snapshot must
    // hold every baseline (even an announce that emits no delta).
    guard !batcher.isClosed else { throw shuttingDown }
    let report = AccountingRules.Report(request, userID: userID, factors: factors)
    let hash = StatsKeyHash(userID, report.infoHash, report.peerID)
    let key = Key(report: report, hash: hash, shard: store.shardIndex(hash.shard))
    var reservation: DeltaReservation?
    switch attempt(key, now: now, nowMilliseconds: nowMilliseconds, reservation: &reservation) {
    case .recorded(let reset):
      if reset { metrics.resets.increment() }
      return nil
    case .closed:
      throw shuttingDown
    case .full:
      return key
    }
  }

  /// The slow path: waits (bounded) for room, then records from the
  /// baseline as it is then. Fails with retry-later after `maxWait`.
  func recordAfterWaiting(_ key: Key, now: UInt32, nowMilliseconds: Int64)
    async throws(TrackerFailure)
  {
    metrics.waits.increment()
    var reservation: DeltaReservation?
    switch await batcher.waitForCapacity(priority: false) {
    case .granted(let granted):
      reservation = granted
    case .timedOut:
      metrics.waitTimeouts.increment()
      throw busy
    case .tooManyWaiters:
      metrics.waitersRejected.increment()
      throw busy
    case .closed:
      throw shuttingDown
    case .cancelled:
      throw busy
    }
    // With a reservation the append cannot fail, so this never loops.
    let attempt = attempt(
      key, now: now, nowMilliseconds: nowMilliseconds, reservation: &reservation)
    // Granted room the recomputed decision did not need goes back.
    if let unused = reservation { batcher.release(unused) }
    if case .recorded(reset: true) = attempt { metrics.resets.increment() }
  }

  /// Decides, queues and applies under the shard lock; see the type's
  /// documentation. Consumes `reservation` when it queues a delta with it.
  private func attempt(
    _ key: Key, now: UInt32, nowMilliseconds: Int64, reservation: inout DeltaReservation?
  )
    -> Attempt
  {
    store.withShard(key.shard) { table -> Attempt in
      let report = key.report
      let index = table.find(report.userID, report.infoHash, report.peerID, hash: key.hash.entry)
      let decision = AccountingRules.decide(
        existing: index.map { table[$0] }, report: report, now: now,
        nowMilliseconds: nowMilliseconds,
        configuration: configuration)
      var reset = false
      if var delta = decision.delta {
        let change = batcher.journal == nil ? nil : journalChange(decision.change, key)
        var followUp = decision.followUp
        if let granted = reservation {
          if followUp != nil {
            batcher.append(&delta, then: &followUp!, change: change, using: granted)
          } else {
            batcher.append(&delta, change: change, using: granted)
          }
          reservation = nil
        } else {
          let appended =
            followUp != nil
            ? batcher.tryAppend(&delta, then: &followUp!, change: change)
            : batcher.tryAppend(&delta, change: change)
          switch appended {
          case .appended: break
          case .full: return .full
          case .closed: return .closed
          }
        }
        reset = delta.reset
      }
      // Reached only when the delta (if any) is queued.
      switch decision.change {
      case .none: break
      case .insert(let entry): table.insert(entry, hash: key.hash.entry)
      case .update(let entry): table[index!] = entry
      case .remove: table.remove(at: index!, hash: key.hash.entry)
      }
      return .recorded(reset: reset)
    }
  }

  /// The entry's state after this announce, for the commit journal.
  private func journalChange(_ change: AccountingRules.StoreChange, _ key: Key) -> JournalChange? {
    let shard = UInt32(truncatingIfNeeded: key.shard)
    switch change {
    case .none:
      return nil
    case .insert(let entry), .update(let entry):
      return JournalChange(kind: .upsert, shard: shard, sequence: 0, entry: entry)
    case .remove:
      let report = key.report
      return JournalChange(
        kind: .remove, shard: shard, sequence: 0,
        entry: StatsEntry(
          userID: report.userID, infoHash: report.infoHash, peerID: report.peerID, uploaded: 0,
          downloaded: 0, lastSeen: 0))
    }
  }

  private var busy: TrackerFailure {
    TrackerFailure(
      "tracker busy: accounting is backed up, please retry later", kind: .retryLater,
      retryInMinutes: configuration.retryInMinutes)
  }

  private var shuttingDown: TrackerFailure {
    TrackerFailure(
      "tracker restarting, please retry later", kind: .retryLater,
      retryInMinutes: configuration.retryInMinutes)
  }
}
