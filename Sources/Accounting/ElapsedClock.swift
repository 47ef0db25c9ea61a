/// Any `Clock<Duration>`, read as time elapsed since it was wrapped. Storing
/// deadlines as plain `Duration`s keeps the batcher free of generic clock
/// parameters while tests still inject a clock they drive by hand.
struct ElapsedClock: Sendable {
  private let elapsed: @Sendable () -> Duration
  private let sleeper: @Sendable (Duration) async throws -> Void

  /// Wraps `clock`; time zero is now.
  init<C: Clock<Duration>>(_ clock: C) {
    let origin = clock.now
    elapsed = { origin.duration(to: clock.now) }
    sleeper = { deadline in
      try await clock.sleep(until: origin.advanced(by: deadline), tolerance: nil)
    }
  }

  /// Time since the clock was wrapped.
  func now() -> Duration { elapsed() }

  /// Suspends until `now() >= deadline`; throws `CancellationError` when cancelled.
  func sleep(until deadline: Duration) async throws {
    try await sleeper(deadline)
  }
}
