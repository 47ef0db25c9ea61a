/// Which tracker instance owns a torrent when several share the load.
///
/// Every announce and scrape of a torrent must reach the one instance that
/// owns it, so that its swarm is whole and each accounting entry keeps one
/// baseline. The function is deliberately one that a proxy and a site can
/// compute without privtrak's code:
///
///     shard = CRC-32(the 20 raw bytes of the torrent's key) mod shardCount
///
/// with the zlib CRC-32 (``CRC32``): HAProxy's
/// `url_param(info_hash),url_dec(1),crc32,mod(N)`, PHP's
/// `crc32(hex2bin($infoHash)) % N`, Python's `zlib.crc32(bytes) % N`.
/// A torrent's key is its v1 info hash (v1 and hybrid torrents) or the first
/// 20 bytes of its v2 hash (v2-only torrents): what clients announce.
public struct TrackerShard: Sendable, Hashable, CustomStringConvertible {
  /// This instance's shard, `0..<count`.
  public let index: Int
  /// How many shards share the torrents.
  public let count: Int

  /// The only shard of an unsharded tracker: it owns every torrent.
  public static let whole = TrackerShard(uncheckedIndex: 0, count: 1)

  /// Creates a shard; nil unless `count >= 1` and `0 <= index < count`.
  public init?(index: Int, count: Int) {
    guard count >= 1, (0..<count).contains(index) else { return nil }
    self.init(uncheckedIndex: index, count: count)
  }

  private init(uncheckedIndex index: Int, count: Int) {
    self.index = index
    self.count = count
  }

  /// The shard, `0..<count`, that owns the torrent whose key is `key`.
  public static func owner(of key: InfoHash, count: Int) -> Int {
    precondition(count >= 1, "a shard count is at least 1")
    var checksum = CRC32()
    // The 20 bytes in order, without an array: this runs on every announce.
    let inOrder = (key.raw.high.bigEndian, key.raw.middle.bigEndian, key.raw.low.bigEndian)
    withUnsafeBytes(of: inOrder) { checksum.update($0) }
    return Int(checksum.value % UInt32(count))
  }

  /// Whether this shard owns the torrent whose key is `key`.
  public func owns(_ key: InfoHash) -> Bool {
    count == 1 || Self.owner(of: key, count: count) == index
  }

  public var description: String { "shard \(index) of \(count)" }
}
