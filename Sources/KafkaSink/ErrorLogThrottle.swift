/// Rate-limits the log lines of librdkafka's client errors: an outage
/// repeats the same error many times a second, so each kind is logged at
/// most once per interval, with the count of repeats left out.
struct ErrorLogThrottle {
  private let intervalNanoseconds: Int64
  /// Per error code: when it was last logged, and how many repeats were not.
  private var entries: [Int32: (loggedAt: Int64, suppressed: Int)] = [:]

  init(intervalNanoseconds: Int64 = 10_000_000_000) {
    self.intervalNanoseconds = intervalNanoseconds
  }

  /// Whether an error with `code` seen at `now` (monotonic ns) should be
  /// logged: nil to leave it out, else the repeats left out since the last line.
  mutating func admit(code: Int32, now: Int64 = monotonicNanoseconds()) -> Int? {
    if var entry = entries[code], now - entry.loggedAt < intervalNanoseconds {
      entry.suppressed += 1
      entries[code] = entry
      return nil
    }
    let repeats = entries[code]?.suppressed ?? 0
    entries[code] = (now, 0)
    return repeats
  }
}
