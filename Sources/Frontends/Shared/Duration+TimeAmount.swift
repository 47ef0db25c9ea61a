import NIOCore

extension Duration {
  /// The same span as NIO's `TimeAmount` (nanosecond precision, saturating).
  var timeAmount: TimeAmount {
    let (seconds, attoseconds) = components
    let (wholeNanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    guard !overflow else { return .nanoseconds(seconds < 0 ? .min : .max) }
    return .nanoseconds(wholeNanos &+ attoseconds / 1_000_000_000)
  }
}
