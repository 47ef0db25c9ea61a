/// Swarm policy knobs of the tracker core.
public struct TrackerConfiguration: Sendable, Equatable {
  /// Seconds between regular announces asked of clients.
  public var announceInterval: UInt32
  /// Minimum seconds between announces.
  public var minAnnounceInterval: UInt32
  /// Seconds without an announce after which a peer is dropped.
  public var peerLifetime: UInt32
  /// Peers returned when the client does not say.
  public var defaultNumWant: Int
  /// Most peers ever returned.
  public var maxNumWant: Int
  /// Most info hashes in one scrape.
  public var maxScrapeInfoHashes: Int
  /// Number of independently locked peer-store shards (a power of two).
  public var shardCount: Int

  /// Creates a configuration; defaults suit a private tracker.
  public init(
    announceInterval: UInt32 = 1800, minAnnounceInterval: UInt32 = 900, peerLifetime: UInt32 = 3900,
    defaultNumWant: Int = 50, maxNumWant: Int = 200, maxScrapeInfoHashes: Int = 100,
    shardCount: Int = 1024
  ) {
    self.announceInterval = announceInterval
    self.minAnnounceInterval = minAnnounceInterval
    self.peerLifetime = peerLifetime
    self.defaultNumWant = defaultNumWant
    self.maxNumWant = maxNumWant
    self.maxScrapeInfoHashes = maxScrapeInfoHashes
    self.shardCount = shardCount
  }
}
