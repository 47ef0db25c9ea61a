import BitTorrent

/// One accounting entry: a (user, torrent, client) key plus the counters of
/// its last recorded announce (the baseline the next delta is computed from).
///
/// Fields are declared in this order on purpose: Swift lays stored
/// properties out in declaration order, and this order packs the 56 bytes of
/// key material, 23 bytes of value and padding into an 80-byte stride
/// (`lastSeen` fills the gap after the 20-byte info hash, `flags` and
/// `sessionTag` the gap after the 20-byte peer id).
public struct StatsEntry: Sendable, Hashable {
  /// Bits describing the entry. They live in the byte that fills the gap
  /// after the peer id, so new bits cost no memory; snapshots and the
  /// commit journal store the whole byte.
  public struct Flags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    /// Creates flags from their raw bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The client reported `left == 0` at its last announce.
    public static let seeding = Flags(rawValue: 1 << 0)
    /// The entry's one snatch is spent: it snatched (its first move from
    /// `left > 0` to `left == 0`), or its first announce already reported
    /// `left == 0` (a client that starts as a seeder never snatches).
    /// Snapshots written before this bit existed lack it; that reads as
    /// "not spent", which together with ``seeding`` still lets only a
    /// leeching entry snatch.
    public static let snatchSpent = Flags(rawValue: 1 << 1)
  }

  /// The user.
  public var userID: UserID
  /// The torrent.
  public var infoHash: InfoHash
  /// `TrackerClock` seconds of the last recorded announce.
  public var lastSeen: UInt32
  /// The client.
  public var peerID: PeerID
  /// State of the last announce.
  public var flags: Flags
  /// ``sessionTag(of:)`` of the client's `key` at the last recorded
  /// announce; 0 when unknown (no key, or an entry restored from a
  /// snapshot). It fills the two bytes after ``flags``: no memory cost.
  public var sessionTag: UInt16
  /// Baseline: the client's `uploaded` total at the last recorded announce.
  public var uploaded: UInt64
  /// Baseline: the client's `downloaded` total at the last recorded announce.
  public var downloaded: UInt64

  /// Creates an entry.
  public init(
    userID: UserID, infoHash: InfoHash, peerID: PeerID, uploaded: UInt64, downloaded: UInt64,
    lastSeen: UInt32, flags: Flags = [], sessionTag: UInt16 = 0
  ) {
    self.userID = userID
    self.infoHash = infoHash
    self.lastSeen = lastSeen
    self.peerID = peerID
    self.flags = flags
    self.sessionTag = sessionTag
    self.uploaded = uploaded
    self.downloaded = downloaded
  }

  /// A 16-bit tag of a client's announce `key`, never 0 for a key; 0 for
  /// none (and for key 0, which clients without keys send over UDP).
  ///
  /// One client session announces with one key, over every address family
  /// and to every tracker (libtorrent; a restarted client picks a new one),
  /// so counters below the baseline under the same tag are a late announce
  /// of the same session, not a restart. Two different keys share a tag
  /// once in 65 535.
  @inline(__always)
  public static func sessionTag(of key: UInt32?) -> UInt16 {
    guard let key, key != 0 else { return 0 }
    let folded = UInt16(truncatingIfNeeded: key ^ key >> 16)
    return folded == 0 ? 1 : folded
  }

  /// Whether this entry has the given key.
  @inline(__always)
  func matches(_ userID: UserID, _ infoHash: InfoHash, _ peerID: PeerID) -> Bool {
    self.peerID == peerID && self.infoHash == infoHash && self.userID == userID
  }
}

/// The two hashes of an entry key. Both come from the standard library's
/// `Hasher`, which is seeded randomly per process, so clients cannot craft
/// peer ids or info hashes that collide on purpose (hash flooding).
struct StatsKeyHash {
  /// Hash of (user, info hash): picks the shard, so every client of one
  /// user on one torrent lives in one shard (`knows(user:infoHash:)` reads one shard).
  var shard: UInt64
  /// Hash of the full key: places the entry inside its shard's table.
  var entry: UInt64

  @inline(__always)
  init(_ userID: UserID, _ infoHash: InfoHash, _ peerID: PeerID) {
    var hasher = Hasher()
    hasher.combine(userID.high)
    hasher.combine(userID.low)
    hasher.combine(infoHash.raw)
    let prefix = hasher
    hasher.combine(peerID.raw)
    shard = UInt64(UInt(bitPattern: prefix.finalize()))
    entry = UInt64(UInt(bitPattern: hasher.finalize()))
  }

  /// The shard hash alone (for queries that know no peer id).
  @inline(__always)
  static func shard(_ userID: UserID, _ infoHash: InfoHash) -> UInt64 {
    var hasher = Hasher()
    hasher.combine(userID.high)
    hasher.combine(userID.low)
    hasher.combine(infoHash.raw)
    return UInt64(UInt(bitPattern: hasher.finalize()))
  }

  /// The entry hash of a stored entry.
  @inline(__always)
  static func entry(of entry: StatsEntry) -> UInt64 {
    var hasher = Hasher()
    hasher.combine(entry.userID.high)
    hasher.combine(entry.userID.low)
    hasher.combine(entry.infoHash.raw)
    hasher.combine(entry.peerID.raw)
    return UInt64(UInt(bitPattern: hasher.finalize()))
  }
}
