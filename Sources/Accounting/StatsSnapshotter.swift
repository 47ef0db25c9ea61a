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
    captureWithCut(createdAtMilliseconds: createdAtMilliseconds).snapshot
  }

  /// The snapshot, and per shard the last sequence its baselines fold in
  /// (the commit journal's cut).
  func captureWithCut(createdAtMilliseconds: Int64) -> (
    snapshot: StatsSnapshot, shardSequences: [UInt64]
  ) {
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
    let snapshot = StatsSnapshot(
      instance: batcher.instance, nextSequence: nextSequence,
      createdAtMilliseconds: createdAtMilliseconds,
      entries: entries, pendingDeltas: pending)
    return (snapshot, shardSequences)
  }

  /// Loads a snapshot into an empty store and batcher. Entries keep their
  /// baselines; pending deltas are queued first with their original
  /// origins; a snapshot of this same instance continues its sequence.
  func restore(_ snapshot: StatsSnapshot) {
    restore(snapshot, journal: nil)
  }

  /// Loads a snapshot (if any) and then the commit journal's changes over
  /// it. Pending deltas the journal shows as published are not queued
  /// again, and this instance's numbering continues after every sequence
  /// the journal shows as published (so consumers deduplicating by origin
  /// never drop a new delta).
  func restore(_ snapshot: StatsSnapshot?, journal: CommitJournal.Recovery?) {
    for entry in snapshot?.entries ?? [] {
      let hash = StatsKeyHash(entry.userID, entry.infoHash, entry.peerID)
      store.withShard(store.shardIndex(hash.shard)) { table in
        if table.find(entry.userID, entry.infoHash, entry.peerID, hash: hash.entry) == nil {
          table.insert(entry, hash: hash.entry)
        }
      }
    }
    for change in journal?.changes ?? [] {
      let entry = change.entry
      let hash = StatsKeyHash(entry.userID, entry.infoHash, entry.peerID)
      store.withShard(store.shardIndex(hash.shard)) { table in
        let index = table.find(entry.userID, entry.infoHash, entry.peerID, hash: hash.entry)
        switch (change.kind, index) {
        case (.upsert, let index?): table[index] = entry
        case (.upsert, nil): table.insert(entry, hash: hash.entry)
        case (.remove, let index?): table.remove(at: index, hash: hash.entry)
        case (.remove, nil): break
        }
      }
    }
    let published = journal?.published ?? [:]
    let pending = (snapshot?.pendingDeltas ?? []).filter { delta in
      delta.origin.sequence > published[delta.origin.instance, default: 0]
    }
    var nextSequence: UInt64?
    if let snapshot, snapshot.instance == batcher.instance { nextSequence = snapshot.nextSequence }
    if let last = published[batcher.instance] { nextSequence = max(nextSequence ?? 1, last + 1) }
    batcher.restore(pending, nextSequence: nextSequence)
  }
}
