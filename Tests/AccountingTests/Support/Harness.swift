import Accounting
import BitTorrent
import DeltaModel
import Logging
import Metrics
import PrivtrakTestSupport
import Synchronization
import Testing
import Tracker

/// One BitTorrent client of one user on one torrent, as the frontends would
/// present it to the tracker.
struct TestClient: Sendable {
  var userID: UserID
  var infoHash: InfoHash
  var peerID: PeerID
  var endpoint: PeerEndpoint

  /// Deterministic client number `peer` of user `user` on torrent `torrent`.
  init(user: Int, torrent: Int, peer: Int = 0) {
    userID = UserID(
      high: 0xA11C_E000_0000_0000 | UInt64(user), low: 0x5EED_0000_0000_0000 | UInt64(user))
    infoHash = InfoHash(Self.bytes20(tag: 0x1F, value: UInt64(torrent)))!
    peerID = PeerID(Self.bytes20(tag: 0x9E, value: UInt64(user) << 24 | UInt64(peer)))!
    endpoint = PeerEndpoint(
      address: .v4(0x0A00_0000 | UInt32(truncatingIfNeeded: user)), port: 6881)
  }

  private static func bytes20(tag: UInt8, value: UInt64) -> [UInt8] {
    [tag] + [UInt8](repeating: 0x42, count: 11)
      + (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
  }

  /// The passkey in the announce URL: the user id in hex.
  var passkey: Substring { Substring(userID.hex) }

  /// An announce of this client.
  func request(
    uploaded: UInt64, downloaded: UInt64, left: UInt64 = 1000, event: AnnounceEvent = .none,
    key: UInt32? = nil, passkey: Substring?? = .none
  ) -> AnnounceRequest {
    AnnounceRequest(
      infoHash: infoHash, peerID: peerID, endpoint: endpoint, uploaded: uploaded,
      downloaded: downloaded,
      left: left, event: event, key: key, passkey: passkey ?? self.passkey)
  }
}

extension AccountingConfiguration {
  /// Defaults for tests: small shards, no periodic snapshot, GC steps far apart.
  static func forTesting(
    batchSize: Int = 1000, maxPendingDeltas: Int = 100_000, maxWait: Duration = .seconds(2),
    maxWaiters: Int = 10_000, emitStopped: Bool = false, recordClientIP: Bool = false,
    recordPeerID: Bool = false, instance: UInt64? = nil
  ) -> AccountingConfiguration {
    AccountingConfiguration(
      batchSize: batchSize, flushInterval: .seconds(1), maxPendingDeltas: maxPendingDeltas,
      maxWait: maxWait,
      maxWaiters: maxWaiters, peerLifetime: .seconds(3900), gcInterval: .seconds(16 * 3600),
      emitStopped: emitStopped, recordClientIP: recordClientIP, recordPeerID: recordPeerID,
      instance: instance,
      shardCount: 16, publishRetryInitialBackoff: .milliseconds(100),
      publishRetryMaxBackoff: .seconds(1),
      snapshotInterval: nil, shutdownDrainTimeout: .seconds(5))
  }
}

/// The accounting middleware wired into a real ``Tracker`` hook chain, with
/// clocks the test drives.
struct AccountingHarness: Sendable {
  let middleware: AccountingMiddleware
  let tracker: Tracker
  let clock: ManualTestClock
  let trackerClock: ManualTestClock
  let contexts: ContextRecordingPostHook

  init(
    configuration: AccountingConfiguration = .forTesting(), sink: any DeltaSink,
    identifier: any UserIdentifier = PasskeyUserIdentifier(),
    snapshotStore: (any StatsSnapshotStore)? = nil, journal: CommitJournal? = nil,
    trackerClock: ManualTestClock = ManualTestClock(milliseconds: 1_704_067_200_000),
    clock: ManualTestClock = ManualTestClock(),
    metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance
  ) async {
    self.clock = clock
    self.trackerClock = trackerClock
    middleware = await AccountingMiddleware(
      configuration: configuration, sink: sink, identifier: identifier,
      snapshotStore: snapshotStore, journal: journal,
      trackerClock: trackerClock, clock: clock, metricsFactory: metricsFactory, logger: .quiet)
    contexts = ContextRecordingPostHook()
    tracker = Tracker(preHooks: [middleware], postHooks: [contexts], clock: trackerClock)
  }

  /// Announces through the whole tracker (hooks, peer store, response).
  @discardableResult
  func announce(
    _ client: TestClient, uploaded: UInt64, downloaded: UInt64, left: UInt64 = 1000,
    event: AnnounceEvent = .none, key: UInt32? = nil
  ) async throws(TrackerFailure) -> AnnounceResponse {
    try await tracker.announce(
      client.request(
        uploaded: uploaded, downloaded: downloaded, left: left, event: event, key: key))
  }

  /// Announces and returns the outcome instead of throwing (for tasks).
  func announceResult(
    _ client: TestClient, uploaded: UInt64, downloaded: UInt64, left: UInt64 = 1000,
    event: AnnounceEvent = .none
  ) async -> Result<AnnounceResponse, TrackerFailure> {
    do throws(TrackerFailure) {
      return .success(
        try await announce(
          client, uploaded: uploaded, downloaded: downloaded, left: left, event: event))
    } catch {
      return .failure(error)
    }
  }

  /// Runs the middleware's long-lived work in the background.
  func start() -> Task<Void, Never> {
    Task { await middleware.run() }
  }
}

/// A real post-hook that remembers the contexts it saw (to check what the
/// pre-hook put there).
final class ContextRecordingPostHook: PostHook {
  private let seen = Mutex<(announces: [HookContext], scrapes: [HookContext])>(([], []))

  func afterAnnounce(
    _ request: AnnounceRequest, response: inout AnnounceResponse, context: HookContext
  ) async {
    seen.withLock { $0.announces.append(context) }
  }

  func afterScrape(_ request: ScrapeRequest, response: inout ScrapeResponse, context: HookContext)
    async
  {
    seen.withLock { $0.scrapes.append(context) }
  }

  var announceContexts: [HookContext] { seen.withLock { $0.announces } }
  var scrapeContexts: [HookContext] { seen.withLock { $0.scrapes } }
}

/// Runs `body` expecting a ``TrackerFailure``; returns it (nil, with a
/// recorded issue, if nothing was thrown).
func expectFailure(
  sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws(TrackerFailure) -> Void
) async -> TrackerFailure? {
  do throws(TrackerFailure) {
    try await body()
    Issue.record(
      "expected a TrackerFailure, but the call succeeded", sourceLocation: sourceLocation)
    return nil
  } catch {
    return error
  }
}

extension Result {
  /// The error, if this is a failure.
  var failure: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
}

extension Logger {
  /// Discards everything: the tests assert on outcomes, not log lines.
  static let quiet = Logger(
    label: "privtrak.accounting.tests", factory: { _ in SwiftLogNoOpLogHandler() })
}
