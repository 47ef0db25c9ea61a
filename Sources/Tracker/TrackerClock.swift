#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Where the tracker reads the time; tests supply their own to drive expiry
/// without sleeping.
public protocol TrackerClock: Sendable {
  /// Milliseconds since the Unix epoch.
  func nowMilliseconds() -> Int64
}

extension TrackerClock {
  /// Whole seconds since the Unix epoch.
  public func nowSeconds() -> UInt32 { UInt32(clamping: nowMilliseconds() / 1000) }
}

/// The system's real-time clock.
public struct SystemClock: TrackerClock {
  /// Creates the clock.
  public init() {}

  public func nowMilliseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
  }
}
