import Logging

/// The pause before the next attempt at a batch (or at `init_transactions`
/// after a replacement): doubling from `retryBackoffMilliseconds` up to
/// `maxRetryBackoffMilliseconds`.
struct RetryBackoff: Sendable {
  private let initialMilliseconds: Int
  private let maxMilliseconds: Int

  init(configuration: KafkaSinkConfiguration) {
    initialMilliseconds = configuration.retryBackoffMilliseconds
    maxMilliseconds = configuration.maxRetryBackoffMilliseconds
  }

  /// The pause after failed attempt number `attempt` (1-based).
  func milliseconds(afterAttempt attempt: Int) -> Int {
    let doublings = min(attempt - 1, 20)  // no shift overflow; the cap is reached long before
    return min(initialMilliseconds << doublings, maxMilliseconds)
  }

  /// How loudly to log failed attempt `attempt`: every attempt up to 3,
  /// then powers of two as warnings, the rest at debug (visible, not a flood).
  static func logLevel(afterAttempt attempt: Int) -> Logger.Level {
    attempt <= 3 || attempt & (attempt - 1) == 0 ? .warning : .debug
  }
}
