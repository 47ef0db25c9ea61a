import BitTorrent
import Metrics

/// The pre-hook that keeps an instance to its own torrents when several
/// instances share the load (``TrackerShard``): a request for a torrent
/// another shard owns is refused, never served, so every swarm stays whole
/// on its owner and every accounting entry has one baseline.
///
/// Placed after the registry's approval, which replaces a hybrid torrent's
/// v2 hash by the torrent's key: ownership is decided on the key, so both
/// hashes of a hybrid torrent belong to the key's shard. A proxy routes by
/// the hash it sees, so a hybrid's v2 announce can reach a non-owner; it
/// gets an empty success there (no peer stored, no delta), because the
/// client sends its v1 announce, with the same counters, to the same URL,
/// and that one reaches the owner.
///
/// - `privtrak_requests_total{result="wrong_shard"}` (by the frontends)
///   counts refused requests.
/// - `privtrak_shard_alias_announces_total` counts the empty successes.
/// - `privtrak_tracker_shard_index` and `privtrak_tracker_shard_count`
///   say which shard this instance is.
public struct ShardOwnership: PreHook {
  /// This instance's shard.
  public let shard: TrackerShard
  /// Interval of the empty success a hybrid's misrouted v2 announce gets.
  public let announceInterval: UInt32
  private let aliasAnnounces: Counter

  /// Creates the hook and publishes the shard gauges.
  public init(
    shard: TrackerShard, announceInterval: UInt32,
    metricsFactory: any MetricsFactory = MetricsSystem.factory
  ) {
    self.shard = shard
    self.announceInterval = announceInterval
    self.aliasAnnounces = Counter(
      label: "privtrak_shard_alias_announces_total", factory: metricsFactory)
    Gauge(label: "privtrak_tracker_shard_index", factory: metricsFactory).record(shard.index)
    Gauge(label: "privtrak_tracker_shard_count", factory: metricsFactory).record(shard.count)
  }

  /// The refusal a misrouted request gets.
  public var wrongShard: TrackerFailure {
    TrackerFailure(
      "wrong shard: this tracker instance is \(shard) and does not serve this torrent;"
        + " use the announce URL your tracker's site gave you",
      kind: .wrongShard)
  }

  public func beforeAnnounceWithoutSuspending(
    _ request: inout AnnounceRequest, context: inout HookContext
  ) throws(TrackerFailure) -> PreHookStep {
    if shard.owns(request.infoHash) { return .done }
    guard context.announcedInfoHash != nil else { throw wrongShard }
    aliasAnnounces.increment()
    context.earlyResponse = AnnounceResponse(
      interval: announceInterval, minInterval: announceInterval, complete: 0, incomplete: 0,
      downloaded: 0)
    return .done
  }

  public func beforeAnnounce(_ request: inout AnnounceRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    _ = try beforeAnnounceWithoutSuspending(&request, context: &context)
  }

  /// Reports only owned torrents: HTTP leaves the others out, UDP (whose
  /// answers are positional) reports them as unknown. A scrape of no owned
  /// torrent is refused as misrouted.
  public func beforeScrape(_ request: inout ScrapeRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    let owned = request.infoHashes.filter { hash in
      shard.owns(context.scrapeTorrentKeys[hash] ?? hash)
    }
    if owned.count == request.infoHashes.count { return }
    guard !owned.isEmpty else { throw wrongShard }
    if request.transport == .udp {
      context.scrapeAsUnknown.formUnion(Set(request.infoHashes).subtracting(owned))
    } else {
      request.infoHashes = owned
    }
  }
}
