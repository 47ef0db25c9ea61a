import BitTorrent
import OrderedCollections
import Synchronization

/// In-memory swarms, sharded by info hash so that announces on different
/// torrents never contend on one lock.
public final class PeerStore: Sendable {
  private let shards: [Shard]
  private let shardMask: Int

  /// Creates a store with `shardCount` shards (rounded up to a power of two).
  public init(shardCount: Int = 1024) {
    var count = 1
    while count < max(1, shardCount) { count <<= 1 }
    shards = (0..<count).map { _ in Shard() }
    shardMask = count - 1
  }

  /// Number of shards (for incremental garbage collection).
  public var shardCount: Int { shards.count }

  @inline(__always)
  private func shard(for infoHash: InfoHash) -> Shard {
    shards[Int(truncatingIfNeeded: infoHash.raw.shardingKey) & shardMask]
  }

  /// Records the announce and returns swarm figures plus up to `request.numWant`
  /// other peers. A `stopped` event removes the peer. A snatch (the scrape's
  /// `downloaded`) is a stored peer's move from leeching to seeding, whatever
  /// event the client sends: a dual-stack client's second `completed` finds
  /// the peer seeding already, and a client that stops with `left == 0`
  /// without ever saying `completed` (aria2) still counts once.
  public func announce(_ request: AnnounceRequest, now: UInt32) -> AnnounceResult {
    shard(for: request.infoHash).swarms.withLock { swarms in
      if request.event == .stopped {
        guard var swarm = swarms.removeValue(forKey: request.infoHash) else {
          return AnnounceResult(
            stats: ScrapeStats(complete: 0, incomplete: 0, downloaded: 0), peers4: [], peers6: [])
        }
        if swarm.isLeeching(request.peerID) && request.isSeeder { swarm.snatches &+= 1 }
        swarm.remove(request.peerID)
        let stats = swarm.stats
        if !swarm.peers.isEmpty || swarm.snatches > 0 { swarms[request.infoHash] = swarm }
        return AnnounceResult(stats: stats, peers4: [], peers6: [])
      }
      return swarms[request.infoHash, default: Swarm()].announce(request, now: now)
    }
  }

  /// Swarm figures for one torrent (zeros when unknown).
  public func scrape(_ infoHash: InfoHash) -> ScrapeStats {
    shard(for: infoHash).swarms.withLock { swarms in
      swarms[infoHash]?.stats ?? ScrapeStats(complete: 0, incomplete: 0, downloaded: 0)
    }
  }

  /// Drops peers last seen before `cutoff` in one shard; returns how many were
  /// removed. Collecting shard by shard keeps every lock hold short.
  @discardableResult
  public func collectGarbage(shard index: Int, cutoff: UInt32) -> Int {
    shards[index].swarms.withLock { swarms in
      var removed = 0
      for infoHash in Array(swarms.keys) {
        removed += swarms[infoHash]!.removePeers(lastSeenBefore: cutoff)
        if swarms[infoHash]!.peers.isEmpty { swarms.removeValue(forKey: infoHash) }
      }
      return removed
    }
  }

  /// Drops every peer last seen before `cutoff`, one shard at a time.
  @discardableResult
  public func collectGarbage(cutoff: UInt32) -> Int {
    (0..<shards.count).reduce(0) { $0 + collectGarbage(shard: $1, cutoff: cutoff) }
  }

  /// Totals over all shards: swarms, seeders and leechers.
  public func census() -> (swarms: Int, seeders: Int, leechers: Int) {
    var result = (swarms: 0, seeders: 0, leechers: 0)
    for shard in shards {
      shard.swarms.withLock { swarms in
        result.swarms += swarms.count
        for swarm in swarms.values {
          result.seeders += Int(swarm.seeders)
          result.leechers += swarm.peers.count - Int(swarm.seeders)
        }
      }
    }
    return result
  }
}

/// What the store returns for one announce.
public struct AnnounceResult: Sendable {
  /// Swarm figures after the announce.
  public var stats: ScrapeStats
  /// Selected IPv4 peers.
  public var peers4: [PeerListEntry]
  /// Selected IPv6 peers.
  public var peers6: [PeerListEntry]
}

private final class Shard: Sendable {
  let swarms = Mutex<[InfoHash: Swarm]>([:])
}

/// A peer as stored: 23 bytes of payload beside its 20-byte id key. The
/// address is kept as IPv6 (IPv4 mapped as ::ffff:a.b.c.d) to avoid an enum tag.
struct StoredPeer {
  var addressHigh: UInt64
  var addressLow: UInt64
  var lastSeen: UInt32
  var port: UInt16
  var isSeeder: Bool

  init(endpoint: PeerEndpoint, lastSeen: UInt32, isSeeder: Bool) {
    switch endpoint.address {
    case .v4(let value):
      addressHigh = 0
      addressLow = 0xffff_0000_0000 | UInt64(value)
    case .v6(let high, let low):
      addressHigh = high
      addressLow = low
    }
    self.port = endpoint.port
    self.lastSeen = lastSeen
    self.isSeeder = isSeeder
  }

  var isIPv4: Bool { addressHigh == 0 && addressLow >> 32 == 0xffff }

  var endpoint: PeerEndpoint {
    let address: IPAddress =
      isIPv4 ? .v4(UInt32(truncatingIfNeeded: addressLow)) : .v6(high: addressHigh, low: addressLow)
    return PeerEndpoint(address: address, port: port)
  }
}

struct Swarm {
  /// Insertion-ordered so a window of peers can be read in O(numwant).
  var peers: OrderedDictionary<PeerID, StoredPeer> = [:]
  var seeders: Int32 = 0
  var snatches: UInt32 = 0
  /// Where the next answer's window of peers starts: windows rotate, so
  /// every peer is handed out equally often (without a random-number
  /// system call per announce).
  var windowStart: UInt32 = 0

  var stats: ScrapeStats {
    ScrapeStats(
      complete: UInt32(seeders), incomplete: UInt32(peers.count - Int(seeders)),
      downloaded: snatches)
  }

  /// Whether `peerID` is stored and was leeching at its last announce.
  func isLeeching(_ peerID: PeerID) -> Bool {
    guard let index = peers.index(forKey: peerID) else { return false }
    return !peers.values[index].isSeeder
  }

  mutating func announce(_ request: AnnounceRequest, now: UInt32) -> AnnounceResult {
    let updated = StoredPeer(endpoint: request.endpoint, lastSeen: now, isSeeder: request.isSeeder)
    if let index = peers.index(forKey: request.peerID) {
      if peers.values[index].isSeeder != updated.isSeeder {
        seeders += updated.isSeeder ? 1 : -1
        // Leeching → seeding: the download finished (see PeerStore.announce).
        if updated.isSeeder { snatches &+= 1 }
      }
      peers.values[index] = updated
    } else {
      peers[request.peerID] = updated
      if updated.isSeeder { seeders += 1 }
    }
    var peers4: [PeerListEntry] = []
    var peers6: [PeerListEntry] = []
    let wanted = min(request.numWant, peers.count - 1)
    if wanted > 0 {
      // Seeders only need leechers; everyone else gets anybody.
      let candidates = request.isSeeder ? peers.count - Int(seeders) : peers.count - 1
      let target = min(wanted, candidates)
      if target > 0 {
        peers4.reserveCapacity(target)
        let start = Int(windowStart % UInt32(peers.count))
        windowStart &+= UInt32(target)
        var offset = 0
        while peers4.count + peers6.count < target, offset < peers.count {
          let index = (start + offset) % peers.count
          offset += 1
          let candidate = peers.values[index]
          if request.isSeeder && candidate.isSeeder { continue }
          let peerID = peers.keys[index]
          if peerID == request.peerID { continue }
          let entry = PeerListEntry(peerID: peerID, endpoint: candidate.endpoint)
          if candidate.isIPv4 { peers4.append(entry) } else { peers6.append(entry) }
        }
      }
    }
    return AnnounceResult(stats: stats, peers4: peers4, peers6: peers6)
  }

  mutating func remove(_ peerID: PeerID) {
    guard let index = peers.index(forKey: peerID) else { return }
    removePeer(at: index)
  }

  /// O(1) removal: swap with the last peer, then drop the last.
  private mutating func removePeer(at index: Int) {
    if peers.values[index].isSeeder { seeders -= 1 }
    let last = peers.count - 1
    if index != last { peers.swapAt(index, last) }
    peers.removeLast()
  }

  mutating func removePeers(lastSeenBefore cutoff: UInt32) -> Int {
    var removed = 0
    var index = 0
    while index < peers.count {
      if peers.values[index].lastSeen < cutoff {
        removePeer(at: index)
        removed += 1
      } else {
        index += 1
      }
    }
    return removed
  }
}
