import Metrics
import Synchronization

/// A metrics backend that keeps every value in memory, so tests can read
/// what the sink reported (counters: totals; gauges: last value; timers: count).
final class RecordingMetricsFactory: MetricsFactory {
  private final class Handler: CounterHandler, FloatingPointCounterHandler, RecorderHandler,
    MeterHandler,
    TimerHandler, Sendable
  {
    private let state = Mutex<(total: Double, last: Double, count: Int)>((0, 0, 0))
    var total: Double { state.withLock { $0.total } }
    var last: Double { state.withLock { $0.last } }
    var count: Int { state.withLock { $0.count } }
    private func add(_ value: Double) {
      state.withLock {
        $0.total += value
        $0.last = value
        $0.count += 1
      }
    }
    func increment(by amount: Int64) { add(Double(amount)) }
    func increment(by amount: Double) { add(amount) }
    func reset() { state.withLock { $0 = (0, 0, 0) } }
    func record(_ value: Int64) { add(Double(value)) }
    func record(_ value: Double) { add(value) }
    func set(_ value: Int64) { add(Double(value)) }
    func set(_ value: Double) { add(value) }
    func decrement(by amount: Double) { add(-amount) }
    func recordNanoseconds(_ duration: Int64) { add(Double(duration)) }
    func preferDisplayUnit(_ unit: TimeUnit) {}
  }

  private let handlers = Mutex<[String: Handler]>([:])

  private func handler(_ label: String, _ dimensions: [(String, String)]) -> Handler {
    let key = Self.key(label, dimensions)
    return handlers.withLock { handlers in
      if let existing = handlers[key] { return existing }
      let created = Handler()
      handlers[key] = created
      return created
    }
  }

  private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
    let labels = dimensions.filter { $0.0 != "topic" }.sorted { $0.0 < $1.0 }.map {
      "\($0.0)=\($0.1)"
    }
    return labels.isEmpty ? label : "\(label){\(labels.joined(separator: ","))}"
  }

  /// A counter's total, e.g. `counter("privtrak_kafka_publish_failures_total", ["reason": "fenced"])`
  /// (the topic dimension is ignored); 0 when never reported.
  func counter(_ label: String, _ dimensions: [String: String] = [:]) -> Double {
    handlers.withLock { $0[Self.key(label, dimensions.map { ($0.key, $0.value) })]?.total } ?? 0
  }

  /// A gauge's last value; nil when never reported.
  func gauge(_ label: String) -> Double? {
    handlers.withLock { $0[label].flatMap { $0.count > 0 ? $0.last : nil } }
  }

  /// How many values a timer recorded.
  func timerCount(_ label: String) -> Int {
    handlers.withLock { $0[label]?.count } ?? 0
  }

  func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
    handler(label, dimensions)
  }
  func makeFloatingPointCounter(label: String, dimensions: [(String, String)])
    -> any FloatingPointCounterHandler
  {
    handler(label, dimensions)
  }
  func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
    handler(label, dimensions)
  }
  func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool)
    -> any RecorderHandler
  {
    handler(label, dimensions)
  }
  func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
    handler(label, dimensions)
  }
  func destroyCounter(_ handler: any CounterHandler) {}
  func destroyMeter(_ handler: any MeterHandler) {}
  func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
  func destroyRecorder(_ handler: any RecorderHandler) {}
  func destroyTimer(_ handler: any TimerHandler) {}
}
