import BitTorrent
import Metrics
import Tracker

/// The approval pre-hook: placed first in the chain, it admits or refuses
/// every announce and scrape by the registry (the design's refusal table)
/// and hands the user and the factors in force to the hooks after it
/// (`HookContext.userID`, `HookContext.factors`).
///
/// A refused announce stores no peer and emits no delta: the hook throws
/// before the accounting hook and the peer store run. A refused `stopped`
/// gets a silent success instead (the client is leaving anyway; an error
/// would only make it retry): ``HookContext/earlyResponse`` ends the
/// announce without touching anything.
public struct RegistryApproval: PreHook {
  /// The registry consulted.
  public let registry: Registry
  /// Who and what gets in.
  public let modes: RegistryModes
  /// Interval of the silent success a refused `stopped` gets.
  public let announceInterval: UInt32
  /// BEP 31 `retry in` minutes for a pending torrent.
  public let pendingRetryMinutes: Int
  private let metrics: RegistryMetrics

  /// Creates the hook.
  /// - Parameters:
  ///   - announceInterval: the tracker's announce interval (seconds).
  ///   - pendingRetryMinutes: how long a client should wait before it
  ///     announces a pending torrent again.
  public init(
    registry: Registry, modes: RegistryModes, announceInterval: UInt32,
    pendingRetryMinutes: Int = 10, metricsFactory: any MetricsFactory = MetricsSystem.factory
  ) {
    self.registry = registry
    self.modes = modes
    self.announceInterval = announceInterval
    self.pendingRetryMinutes = pendingRetryMinutes
    self.metrics = RegistryMetrics(factory: metricsFactory)
  }

  /// The verdict for one announce (no side effects besides nothing).
  public func verdict(for request: AnnounceRequest) -> ApprovalVerdict {
    guard let text = request.passkey, !text.isEmpty else {
      return .refused(
        .malformedPasskey(
          message: "missing passkey: use the personal announce URL from your account"))
    }
    guard let passkey = Passkey(hex: text) else {
      return .refused(
        .malformedPasskey(message: "malformed passkey: expected 32 hexadecimal characters"))
    }
    return registry.evaluate(
      passkey: passkey, infoHash: request.infoHash, peerID: request.peerID,
      isLeeching: request.left > 0, modes: modes)
  }

  public func beforeAnnounceWithoutSuspending(
    _ request: inout AnnounceRequest, context: inout HookContext
  ) throws(TrackerFailure) -> PreHookStep {
    switch verdict(for: request) {
    case .approved(let userID, let factors, let torrentKey):
      context.userID = userID
      context.factors = factors
      // A hybrid torrent's v2 announce joins the swarm, the accounting
      // entry and the deltas of the torrent's key.
      if let torrentKey {
        context.announcedInfoHash = request.infoHash
        request.infoHash = torrentKey
      }
    case .refused(let refusal):
      metrics.refused(refusal)
      if request.event == .stopped {
        context.earlyResponse = AnnounceResponse(
          interval: announceInterval, minInterval: announceInterval, complete: 0, incomplete: 0,
          downloaded: 0)
        return .done
      }
      throw failure(refusal)
    }
    return .done
  }

  public func beforeAnnounce(_ request: inout AnnounceRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    _ = try beforeAnnounceWithoutSuspending(&request, context: &context)
  }

  /// In `registered` user mode a scrape needs a registered, enabled user's
  /// passkey; with a passkey in the other mode a disabled user is refused.
  /// Only torrents the registry lets announce are reported: HTTP leaves the
  /// others out, UDP (whose answers are positional) reports them as unknown.
  public func beforeScrape(_ request: inout ScrapeRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    if let text = request.passkey, !text.isEmpty {
      guard let passkey = Passkey(hex: text) else {
        let refusal = Refusal.malformedPasskey(
          message: "malformed passkey: expected 32 hexadecimal characters")
        metrics.refused(refusal)
        throw failure(refusal)
      }
      if let refusal = registry.scrapeRefusal(passkey: passkey, modes: modes) {
        metrics.refused(refusal)
        throw failure(refusal)
      }
      if modes.users == .passkeyIsUserID {
        context.userID = passkey.asUserID
      } else if let user = registry.user(passkey: passkey) {
        context.userID = user.id
      }
    } else if modes.users == .registered {
      let refusal = Refusal.malformedPasskey(
        message: "missing passkey: use the personal announce URL from your account")
      metrics.refused(refusal)
      throw failure(refusal)
    }
    let reportable = registry.scrapeable(request.infoHashes, modes: modes)
    context.scrapeTorrentKeys = registry.torrentKeys(ofAlternateHashes: reportable)
    if request.transport == .udp {
      // Positional answers: keep every slot, report the others as unknown.
      context.scrapeAsUnknown = Set(request.infoHashes).subtracting(reportable)
    } else {
      request.infoHashes = reportable
    }
  }

  private func failure(_ refusal: Refusal) -> TrackerFailure {
    switch refusal {
    case .pendingTorrent:
      TrackerFailure(refusal.message, kind: .forbidden, retryInMinutes: pendingRetryMinutes)
    default:
      TrackerFailure(refusal.message, kind: .forbidden)
    }
  }
}
