import BitTorrent

/// The tracker core: runs the pre-hook chain, updates the peer store, builds
/// the response and runs the post-hook chain. Frontends call it; it does no I/O.
public final class Tracker: Sendable {
  /// Swarm policy.
  public let configuration: TrackerConfiguration
  /// The swarms.
  public let peerStore: PeerStore
  /// Hooks run before the peer store, in order.
  public let preHooks: [any PreHook]
  /// Hooks run after the peer store, in order.
  public let postHooks: [any PostHook]
  /// The time source.
  public let clock: any TrackerClock

  /// Creates a tracker.
  public init(
    configuration: TrackerConfiguration = TrackerConfiguration(),
    preHooks: [any PreHook] = [], postHooks: [any PostHook] = [],
    clock: any TrackerClock = SystemClock()
  ) {
    self.configuration = configuration
    self.peerStore = PeerStore(shardCount: configuration.shardCount)
    self.preHooks = preHooks
    self.postHooks = postHooks
    self.clock = clock
  }

  /// Handles one announce. Throws a ``TrackerFailure`` that the frontend
  /// shows to the client; nothing is recorded in the peer store then.
  public func announce(_ request: AnnounceRequest) async throws(TrackerFailure) -> AnnounceResponse
  {
    var request = request
    request.numWant = Self.clamp(
      request.numWant, default: configuration.defaultNumWant, max: configuration.maxNumWant)
    let milliseconds = clock.nowMilliseconds()
    var context = HookContext(
      receivedAt: UInt32(clamping: milliseconds / 1000), receivedAtMilliseconds: milliseconds)
    for hook in preHooks {
      try await hook.beforeAnnounce(&request, context: &context)
    }
    let result = peerStore.announce(request, now: context.receivedAt)
    var response = AnnounceResponse(
      interval: configuration.announceInterval, minInterval: configuration.minAnnounceInterval,
      complete: result.stats.complete, incomplete: result.stats.incomplete,
      downloaded: result.stats.downloaded,
      peers4: result.peers4, peers6: result.peers6)
    for hook in postHooks {
      await hook.afterAnnounce(request, response: &response, context: context)
    }
    return response
  }

  /// Handles one scrape (several info hashes allowed, BEP 48).
  public func scrape(_ request: ScrapeRequest) async throws(TrackerFailure) -> ScrapeResponse {
    guard !request.infoHashes.isEmpty else {
      throw TrackerFailure("scrape needs at least one info_hash")
    }
    guard request.infoHashes.count <= configuration.maxScrapeInfoHashes else {
      throw TrackerFailure(
        "too many info_hash values in one scrape (at most \(configuration.maxScrapeInfoHashes))")
    }
    var request = request
    let milliseconds = clock.nowMilliseconds()
    var context = HookContext(
      receivedAt: UInt32(clamping: milliseconds / 1000), receivedAtMilliseconds: milliseconds)
    for hook in preHooks {
      try await hook.beforeScrape(&request, context: &context)
    }
    var response = ScrapeResponse(files: request.infoHashes.map { ($0, peerStore.scrape($0)) })
    for hook in postHooks {
      await hook.afterScrape(request, response: &response, context: context)
    }
    return response
  }

  /// Drops peers silent longer than the configured lifetime; returns how many.
  @discardableResult
  public func collectGarbage() -> Int {
    let now = clock.nowSeconds()
    let cutoff = now > configuration.peerLifetime ? now - configuration.peerLifetime : 0
    return peerStore.collectGarbage(cutoff: cutoff)
  }

  /// Negative means "client default"; anything above `max` is clamped.
  static func clamp(_ numWant: Int, default defaultValue: Int, max maximum: Int) -> Int {
    numWant < 0 ? min(defaultValue, maximum) : min(numWant, maximum)
  }
}
