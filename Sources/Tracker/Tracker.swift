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
    switch try announceWithoutSuspending(request) {
    case .answered(let response): return response
    case .pending(let pending): return try await pending.response()
    }
  }

  /// Handles one announce as far as it can without suspending — all of it
  /// unless a hook must wait (back-pressure) or a hook or post-hook has no
  /// non-suspending form. Frontends call this on their event loop and hop
  /// off it only for a ``AnnounceOutcome/pending(_:)`` answer.
  public func announceWithoutSuspending(_ request: AnnounceRequest) throws(TrackerFailure)
    -> AnnounceOutcome
  {
    var request = request
    request.numWant = Self.clamp(
      request.numWant, default: configuration.defaultNumWant, max: configuration.maxNumWant)
    let milliseconds = clock.nowMilliseconds()
    var context = HookContext(
      receivedAt: UInt32(clamping: milliseconds / 1000), receivedAtMilliseconds: milliseconds)
    for index in preHooks.indices {
      let step = try preHooks[index].beforeAnnounceWithoutSuspending(&request, context: &context)
      if let early = context.earlyResponse { return .answered(early) }
      if case .suspend(let rest) = step {
        return .pending(
          PendingAnnounce(
            tracker: self, request: request, context: context,
            stage: .preHook(rest, next: index + 1)))
      }
    }
    let response = answer(request, context: context)
    guard postHooks.isEmpty else {
      return .pending(
        PendingAnnounce(
          tracker: self, request: request, context: context, stage: .postHooks(response)))
    }
    return .answered(response)
  }

  /// The peer store's part: records the peer and builds the answer.
  fileprivate func answer(_ request: AnnounceRequest, context: HookContext) -> AnnounceResponse {
    let result = peerStore.announce(request, now: context.receivedAt)
    return AnnounceResponse(
      interval: configuration.announceInterval, minInterval: configuration.minAnnounceInterval,
      complete: result.stats.complete, incomplete: result.stats.incomplete,
      downloaded: result.stats.downloaded,
      peers4: result.peers4, peers6: result.peers6)
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
    let unknown = ScrapeStats(complete: 0, incomplete: 0, downloaded: 0)
    var response = ScrapeResponse(
      files: request.infoHashes.map { hash in
        (
          hash,
          context.scrapeAsUnknown.contains(hash)
            ? unknown : peerStore.scrape(context.scrapeTorrentKeys[hash] ?? hash)
        )
      })
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

/// How far ``Tracker/announceWithoutSuspending(_:)`` got.
public enum AnnounceOutcome: Sendable {
  /// Fully handled: the answer.
  case answered(AnnounceResponse)
  /// A hook must suspend: await ``PendingAnnounce/response()`` off the event loop.
  case pending(PendingAnnounce)
}

/// The rest of an announce that could not finish without suspending.
public struct PendingAnnounce: Sendable {
  fileprivate enum Stage: Sendable {
    /// A pre-hook's suspended rest, then the pre-hooks from `next` on.
    case preHook(
      @Sendable (inout AnnounceRequest, inout HookContext) async throws(TrackerFailure) -> Void,
      next: Int)
    /// Only the post-hooks are left.
    case postHooks(AnnounceResponse)
  }

  fileprivate let tracker: Tracker
  fileprivate let request: AnnounceRequest
  fileprivate let context: HookContext
  fileprivate let stage: Stage

  /// Finishes the announce (pre-hooks, peer store, post-hooks as left).
  public func response() async throws(TrackerFailure) -> AnnounceResponse {
    var request = request
    var context = context
    var response: AnnounceResponse
    switch stage {
    case .preHook(let rest, let next):
      try await rest(&request, &context)
      if let early = context.earlyResponse { return early }
      for hook in tracker.preHooks[next...] {
        try await hook.beforeAnnounce(&request, context: &context)
        if let early = context.earlyResponse { return early }
      }
      response = tracker.answer(request, context: context)
    case .postHooks(let answered):
      response = answered
    }
    for hook in tracker.postHooks {
      await hook.afterAnnounce(request, response: &response, context: context)
    }
    return response
  }
}
