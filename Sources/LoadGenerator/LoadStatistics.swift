import Histogram

#if canImport(Glibc)
  import Glibc
#endif

/// Counts outcomes while measuring; confined to the generator's event loop.
struct LoadStatistics {
  private(set) var histogram = Histogram<UInt64>(
    lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000_000,
    numberOfSignificantValueDigits: .three)
  private(set) var succeeded = 0
  private(set) var errors: [String: Int] = [:]
  private(set) var events = LoadReport.Events()
  var udpConnects = 0
  var httpConnections = 0
  var connectFailures = 0

  mutating func recordSuccess(event: AnnounceParameters.Event, nanoseconds: UInt64) {
    succeeded += 1
    _ = histogram.record(max(1, min(nanoseconds, 120_000_000_000)))
    switch event {
    case .none: events.periodic += 1
    case .started: events.started += 1
    case .completed: events.completed += 1
    case .stopped: events.stopped += 1
    }
  }

  mutating func recordError(_ kind: String) {
    errors[kind, default: 0] += 1
  }

  var completed: Int { succeeded + errors.values.reduce(0, +) }

  func report(
    target: String, transport: LoadConfiguration.Transport, seconds: Double, cpuSeconds: Double
  ) -> LoadReport {
    func micros(_ percentile: Double) -> Double {
      histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
    }
    let latency = LoadReport.Latency(
      p50: micros(50), p90: micros(90), p99: micros(99), p999: micros(99.9),
      max: histogram.totalCount == 0 ? 0 : Double(histogram.max) / 1000,
      mean: histogram.totalCount == 0 ? 0 : histogram.mean / 1000)
    return LoadReport(
      target: target, transport: transport, seconds: seconds, succeeded: succeeded,
      errors: errors, events: events, latency: latency, udpConnects: udpConnects,
      httpConnections: httpConnections, connectFailures: connectFailures,
      generatorCPUSeconds: cpuSeconds)
  }
}

/// CPU seconds (user + system) this process has used so far.
func processCPUSeconds() -> Double {
  var usage = rusage()
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
  return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}
