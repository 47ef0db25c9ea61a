import BitTorrent

/// A failure the client sees: an HTTP bencoded `failure reason` or a UDP error packet.
public struct TrackerFailure: Error, Sendable, Equatable, CustomStringConvertible {
  /// Broad class of the failure, for metrics and status mapping.
  public enum Kind: String, Sendable {
    /// The request was malformed.
    case badRequest = "bad_request"
    /// The client is not allowed (unknown or malformed passkey, unregistered torrent).
    case forbidden
    /// The tracker is temporarily unable to record the announce; try again later.
    case retryLater = "retry_later"
    /// The torrent belongs to another tracker instance (``ShardOwnership``):
    /// the request was misrouted.
    case wrongShard = "wrong_shard"
  }

  /// The text shown to the client; never contains secrets.
  public var reason: String
  /// Broad class of the failure.
  public var kind: Kind
  /// BEP 31 `retry in` minutes suggested to the client, if any.
  public var retryInMinutes: Int?

  /// Creates a failure.
  public init(_ reason: String, kind: Kind = .badRequest, retryInMinutes: Int? = nil) {
    self.reason = reason
    self.kind = kind
    self.retryInMinutes = retryInMinutes
  }

  public var description: String { reason }
}

/// Per-request state shared along the hook chain.
public struct HookContext: Sendable {
  /// The user the request belongs to, once a hook has identified it.
  public var userID: UserID?
  /// The tracker's clock reading for this request (seconds since the Unix epoch).
  public var receivedAt: UInt32
  /// Milliseconds since the Unix epoch when the request was received.
  public var receivedAtMilliseconds: Int64
  /// The credit factors in force, once a hook (the registry's approval)
  /// resolved them; ``CreditFactors/unit`` otherwise.
  public var factors: CreditFactors
  /// Set by a hook that ends the announce with this answer: later
  /// pre-hooks, the peer store and the post-hooks do not run (a refused
  /// `stopped` gets a silent success this way: no peer, no delta).
  public var earlyResponse: AnnounceResponse?
  /// Info hashes a scrape must report as unknown torrents (all zeros)
  /// while keeping their place: UDP scrape answers are matched to the
  /// request by position, so a hook cannot drop them from a UDP request.
  public var scrapeAsUnknown: Set<InfoHash> = []
  /// Scraped hashes that name a torrent kept under another key (a hybrid
  /// torrent's v2 hash → its key): the scrape reports that key's swarm
  /// under the hash the client asked for.
  public var scrapeTorrentKeys: [InfoHash: InfoHash] = [:]
  /// The hash the client announced, when a hook replaced the request's
  /// info hash by the torrent's key (a hybrid torrent's v2 announce); nil
  /// when the request carries the hash the client sent.
  public var announcedInfoHash: InfoHash?

  /// Creates a context.
  public init(
    userID: UserID? = nil, receivedAt: UInt32, receivedAtMilliseconds: Int64,
    factors: CreditFactors = .unit
  ) {
    self.userID = userID
    self.receivedAt = receivedAt
    self.receivedAtMilliseconds = receivedAtMilliseconds
    self.factors = factors
    self.earlyResponse = nil
  }
}

/// Runs before the peer store sees a request (chihaya's pre-hook). A hook may
/// rewrite the request, fill the context, suspend (for back-pressure), or
/// throw a ``TrackerFailure`` to fail the request — in which case later hooks
/// and the peer store do not run.
public protocol PreHook: Sendable {
  /// Called for every announce, in chain order.
  func beforeAnnounce(_ request: inout AnnounceRequest, context: inout HookContext)
    async throws(TrackerFailure)
  /// The same work without suspending when the hook can: frontends call
  /// this on their event loop so that the common case costs no task hop.
  /// Returns ``PreHookStep/done`` when finished, or the rest of the work
  /// (which the tracker then awaits off the loop). The default defers all
  /// of it to ``beforeAnnounce(_:context:)``.
  func beforeAnnounceWithoutSuspending(_ request: inout AnnounceRequest, context: inout HookContext)
    throws(TrackerFailure) -> PreHookStep
  /// Called for every scrape, in chain order.
  func beforeScrape(_ request: inout ScrapeRequest, context: inout HookContext)
    async throws(TrackerFailure)
}

/// What a pre-hook's non-suspending attempt left to do.
public enum PreHookStep: Sendable {
  /// The hook is finished with this request.
  case done
  /// The hook needs to suspend: the tracker awaits this, off the event
  /// loop, with the request and context as the attempt left them.
  case suspend(
    @Sendable (inout AnnounceRequest, inout HookContext) async throws(TrackerFailure) -> Void)
}

extension PreHook {
  /// Defers everything to ``beforeAnnounce(_:context:)``.
  public func beforeAnnounceWithoutSuspending(
    _ request: inout AnnounceRequest, context: inout HookContext
  ) throws(TrackerFailure) -> PreHookStep {
    .suspend { request, context throws(TrackerFailure) in
      try await self.beforeAnnounce(&request, context: &context)
    }
  }

  /// Scrapes pass through by default.
  public func beforeScrape(_ request: inout ScrapeRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {}
}

/// Runs after the peer store answered (chihaya's post-hook); may adjust the response.
public protocol PostHook: Sendable {
  /// Called for every successful announce, in chain order.
  func afterAnnounce(
    _ request: AnnounceRequest, response: inout AnnounceResponse, context: HookContext) async
  /// Called for every successful scrape, in chain order.
  func afterScrape(_ request: ScrapeRequest, response: inout ScrapeResponse, context: HookContext)
    async
}

extension PostHook {
  /// Announces pass through by default.
  public func afterAnnounce(
    _ request: AnnounceRequest, response: inout AnnounceResponse, context: HookContext
  ) async {}
  /// Scrapes pass through by default.
  public func afterScrape(
    _ request: ScrapeRequest, response: inout ScrapeResponse, context: HookContext
  ) async {}
}
