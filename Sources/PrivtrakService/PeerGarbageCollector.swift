import Logging
import ServiceLifecycle
import Tracker

/// Periodically drops peers silent for longer than the peer lifetime, one
/// shard at a time so no lock is held for long, then refreshes the swarm
/// gauges.
struct PeerGarbageCollector: Service {
  let tracker: Tracker
  let interval: Duration
  let metrics: TrackerMetrics
  let logger: Logger

  /// Runs until graceful shutdown or cancellation.
  func run() async throws {
    metrics.recordCensus(of: tracker)
    while !Task.isCancelled && !Task.isShuttingDownGracefully {
      do {
        try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
      } catch {
        return
      }
      let start = ContinuousClock.now
      let removed = tracker.collectGarbage()
      metrics.gcDuration.recordInterval(since: start)
      metrics.expired.increment(by: removed)
      metrics.recordCensus(of: tracker)
      if removed > 0 {
        logger.debug("peer GC removed silent peers", metadata: ["removed": "\(removed)"])
      }
    }
  }
}
