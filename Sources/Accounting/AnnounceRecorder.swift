import BitTorrent
import Tracker

/// Records one announce: applies the rules, queues the delta, advances the
/// baseline — the latter two atomically.
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

    func record(_ request: AnnounceRequest, userID: UserID, now: UInt32, nowMilliseconds: Int64)
        async throws(TrackerFailure)
    {
        // After shutdown began nothing may change: the final snapshot must
        // hold every baseline (even an announce that emits no delta).
        guard !batcher.isClosed else { throw shuttingDown }
        let hash = StatsKeyHash(userID, request.infoHash, request.peerID)
        let shard = store.shardIndex(hash.shard)
        var reservation: DeltaReservation?
        while true {
            let attempt = store.withShard(shard) { table -> Attempt in
                let index = table.find(userID, request.infoHash, request.peerID, hash: hash.entry)
                let decision = AccountingRules.decide(
                    existing: index.map { table[$0] }, request: request, userID: userID, now: now,
                    nowMilliseconds: nowMilliseconds, configuration: configuration)
                var reset = false
                if var delta = decision.delta {
                    if let granted = reservation {
                        batcher.append(&delta, using: granted)
                        reservation = nil
                    } else {
                        switch batcher.tryAppend(&delta) {
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
                case .insert(let entry): table.insert(entry, hash: hash.entry)
                case .update(let entry): table[index!] = entry
                case .remove: table.remove(at: index!, hash: hash.entry)
                }
                return .recorded(reset: reset)
            }

            switch attempt {
            case .recorded(let reset):
                // Granted room the recomputed decision did not need goes back.
                if let unused = reservation { batcher.release(unused) }
                if reset { metrics.resets.increment() }
                return
            case .closed:
                throw shuttingDown
            case .full:
                metrics.waits.increment()
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
            }
        }
    }

    private var busy: TrackerFailure {
        TrackerFailure(
            "tracker busy: accounting is backed up, please retry later", kind: .retryLater,
            retryInMinutes: configuration.retryInMinutes)
    }

    private var shuttingDown: TrackerFailure {
        TrackerFailure(
            "tracker restarting, please retry later", kind: .retryLater, retryInMinutes: configuration.retryInMinutes)
    }
}
