import BitTorrent
import Synchronization

/// The accounting entries, keyed by (user, info hash, peer id) and sharded
/// by (user, info hash) so that announces on different keys rarely share a
/// lock and all clients of one user on one torrent share a shard.
final class StatsStore: Sendable {
  private let shards: [StatsShard]
  private let shardMask: Int
  private let entryCount = Atomic<Int>(0)

  /// Creates a store with `shardCount` shards (a power of two).
  init(shardCount: Int) {
    precondition(
      shardCount > 0 && shardCount & (shardCount - 1) == 0, "shardCount must be a power of two")
    shards = (0..<shardCount).map { _ in StatsShard() }
    shardMask = shardCount - 1
  }

  /// Number of shards.
  var shardCount: Int { shards.count }

  /// Number of entries over all shards.
  var count: Int { entryCount.load(ordering: .relaxed) }

  /// The shard of a key, from its shard hash.
  @inline(__always)
  func shardIndex(_ shardHash: UInt64) -> Int { Int(truncatingIfNeeded: shardHash) & shardMask }

  /// The shard holding every entry of (user, torrent).
  func shardIndex(_ userID: UserID, _ infoHash: InfoHash) -> Int {
    shardIndex(StatsKeyHash.shard(userID, infoHash))
  }

  /// Runs `body` with the shard's table under its lock. Keep the body short
  /// and non-suspending; it may take the batcher's lock (always in that
  /// order: shard, then batcher — the batcher never takes a shard lock).
  @inline(__always)
  func withShard<Result: Sendable>(_ index: Int, _ body: (inout StatsTable) -> Result) -> Result {
    shards[index].table.withLock { table in
      let before = table.count
      let result = body(&table)
      let change = table.count - before
      if change != 0 { entryCount.add(change, ordering: .relaxed) }
      return result
    }
  }

  /// Whether any client of `userID` has an entry on `infoHash`.
  func knows(_ userID: UserID, _ infoHash: InfoHash) -> Bool {
    withShard(shardIndex(userID, infoHash)) { $0.contains(userID, infoHash) }
  }

  /// Bytes reserved by all tables (without allocator overhead), for diagnostics.
  func reservedBytes() -> Int {
    (0..<shards.count).reduce(0) { total, index in total + withShard(index) { $0.reservedBytes } }
  }
}

private final class StatsShard: Sendable {
  let table = Mutex(StatsTable())
  // Keeps neighbouring shards' locks off one cache line (false sharing).
  private let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
}
