import Synchronization

/// When retries stop: never until `close` sets it, then `shutdownTimeoutMilliseconds` later.
/// Set by `KafkaSink.close` on any task, read by the producer thread.
final class ShutdownDeadline: Sendable {
  /// Monotonic nanoseconds; `.max` until `request(within:)`.
  private let deadline = Atomic<Int64>(.max)

  /// Retries stop once `milliseconds` have passed.
  func request(within milliseconds: Int) {
    deadline.store(monotonicNanoseconds() + Int64(milliseconds) * 1_000_000, ordering: .relaxed)
  }

  /// Whether the deadline has passed.
  var expired: Bool { monotonicNanoseconds() >= deadline.load(ordering: .relaxed) }

  /// Milliseconds left (0 once passed; at most `Int32.max` while unset).
  var remainingMilliseconds: Int { milliseconds(until: deadline.load(ordering: .relaxed)) }
}

/// Milliseconds from now until the monotonic time `deadline` (ns), 0 once
/// passed, at most `Int32.max` (librdkafka's timeouts are Int32).
func milliseconds(until deadline: Int64) -> Int {
  let nanoseconds = deadline - monotonicNanoseconds()
  return nanoseconds <= 0 ? 0 : Int(min(nanoseconds / 1_000_000, Int64(Int32.max)))
}
