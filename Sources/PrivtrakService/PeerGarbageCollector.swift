import Logging
import ServiceLifecycle
import Tracker

/// Periodically drops peers silent for longer than the peer lifetime, one
/// shard at a time so no lock is held for long.
public struct PeerGarbageCollector: Service {
  let tracker: Tracker
  let interval: Duration
  let logger: Logger

  /// Creates the collector.
  public init(tracker: Tracker, interval: Duration, logger: Logger) {
    self.tracker = tracker
    self.interval = interval
    self.logger = logger
  }

  /// Runs until graceful shutdown or cancellation.
  public func run() async throws {
    while !Task.isCancelled && !Task.isShuttingDownGracefully {
      do {
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
      } catch {
        return
      }
      let removed = tracker.collectGarbage()
      if removed > 0 {
        logger.debug("peer GC removed silent peers", metadata: ["removed": "\(removed)"])
      }
    }
  }
}
