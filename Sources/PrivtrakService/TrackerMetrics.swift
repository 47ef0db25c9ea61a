import Metrics
import Tracker

/// Swarm gauges, refreshed after every peer GC sweep (a census walks every
/// shard, so it is not done per announce):
/// `privtrak_swarms`, `privtrak_peers{role="seeder"|"leecher"}`, and
/// `privtrak_peers_expired_total`, `privtrak_peer_gc_duration_seconds`.
struct TrackerMetrics: Sendable {
  let swarms: Gauge
  let seeders: Gauge
  let leechers: Gauge
  let expired: Counter
  let gcDuration: Timer

  init(factory: any MetricsFactory) {
    swarms = Gauge(label: "privtrak_swarms", factory: factory)
    seeders = Gauge(label: "privtrak_peers", dimensions: [("role", "seeder")], factory: factory)
    leechers = Gauge(label: "privtrak_peers", dimensions: [("role", "leecher")], factory: factory)
    expired = Counter(label: "privtrak_peers_expired_total", factory: factory)
    gcDuration = Timer(
      label: "privtrak_peer_gc_duration_seconds", preferredDisplayUnit: .seconds, factory: factory)
  }

  /// Records the current swarm census of `tracker`.
  func recordCensus(of tracker: Tracker) {
    let census = tracker.peerStore.census()
    swarms.record(census.swarms)
    seeders.record(census.seeders)
    leechers.record(census.leechers)
  }
}

extension Timer {
  /// Records the time from `start` until now.
  func recordInterval(since start: ContinuousClock.Instant) {
    let (seconds, attoseconds) = start.duration(to: .now).components
    recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
  }
}
