/// Turns the live store and batcher into a ``StatsSnapshot`` and back.
///
/// Consistency without stopping the world: shards are copied one at a
/// time, each under its own lock, and while that lock is held the batcher's
/// last assigned sequence S is read. Every delta of that shard's entries
/// with a sequence ≤ S is already reflected in the copied baselines; every
/// later one is not. After all shards, the pending deltas are read and a
/// delta of this instance is kept only if its sequence ≤ S of its shard.
/// So after a restore each kept delta is redelivered and each dropped one is
/// recounted from the older baseline — exact either way. (Deltas *published*
/// after their shard was copied are counted again if the process later
/// crashes and restarts from this snapshot; the graceful shutdown snapshot,
/// taken after draining, has no such window.)
struct StatsSnapshotter: Sendable {
  let store: StatsStore
  let batcher: DeltaBatcher

  func capture(createdAtMilliseconds: Int64) -> StatsSnapshot {
    var entries: [StatsEntry] = []
    entries.reserveCapacity(store.count + store.count / 16 + 16)
    var shardSequences = [UInt64](repeating: 0, count: store.shardCount)
    for index in 0..<store.shardCount {
      store.withShard(index) { table in
        table.appendEntries(to: &entries)
        shardSequences[index] = batcher.lastAssignedSequence()
      }
    }
    let nextSequence = batcher.lastAssignedSequence() + 1
    let pending = batcher.pendingDeltas().filter { delta in
      delta.origin.instance != batcher.instance
        || delta.origin.sequence <= shardSequences[store.shardIndex(delta.userID, delta.infoHash)]
    }
    return StatsSnapshot(
      instance: batcher.instance, nextSequence: nextSequence,
      createdAtMilliseconds: createdAtMilliseconds,
      entries: entries, pendingDeltas: pending)
  }

  /// Loads a snapshot into an empty store and batcher. Entries keep their
  /// baselines; pending deltas are queued first with their original
  /// origins; a snapshot of this same instance continues its sequence.
  func restore(_ snapshot: StatsSnapshot) {
    for entry in snapshot.entries {
      let hash = StatsKeyHash(entry.userID, entry.infoHash, entry.peerID)
      store.withShard(store.shardIndex(hash.shard)) { table in
        if table.find(entry.userID, entry.infoHash, entry.peerID, hash: hash.entry) == nil {
          table.insert(entry, hash: hash.entry)
        }
      }
    }
    batcher.restore(
      snapshot.pendingDeltas,
      nextSequence: snapshot.instance == batcher.instance ? snapshot.nextSequence : nil)
  }
}
