import Synchronization
import Tracker

/// A test double for time: a `Clock` (for code that sleeps, such as the
/// batcher's flush timer) and a `TrackerClock` (for code that stamps
/// requests) that only moves when the test calls ``advance(by:)``.
///
/// Sleepers are parked continuations, resumed when the clock passes their
/// deadline, so tests never sleep for real and never depend on timing.
public final class ManualTestClock: Clock, TrackerClock, Sendable {
  /// A point on this clock: the time since the clock was created.
  public struct Instant: InstantProtocol, Sendable {
    /// Time since the clock was created.
    public var offset: Duration

    /// Creates an instant at `offset` from the clock's start.
    public init(offset: Duration) { self.offset = offset }

    public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
    public func duration(to other: Instant) -> Duration { other.offset - offset }
    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
  }

  private struct Sleeper {
    var id: UInt64
    var deadline: Instant
    var continuation: CheckedContinuation<Void, any Error>
  }

  private struct State {
    var now = Instant(offset: .zero)
    var sleepers: [Sleeper] = []
    var nextID: UInt64 = 0
  }

  private let state = Mutex(State())
  private let startMilliseconds: Int64

  /// Creates a clock whose wall time (``nowMilliseconds()``) starts at
  /// `milliseconds` since the Unix epoch (default 2023-11-14T22:13:20Z, a
  /// realistic and round value).
  public init(milliseconds: Int64 = 1_700_000_000_000) {
    startMilliseconds = milliseconds
  }

  public var now: Instant { state.withLock { $0.now } }
  public var minimumResolution: Duration { .zero }

  /// Wall time, for the tracker: the start time plus what the test advanced.
  public func nowMilliseconds() -> Int64 {
    let offset = now.offset.components
    return startMilliseconds + offset.seconds * 1000 + offset.attoseconds / 1_000_000_000_000_000
  }

  public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
    let id = state.withLock { state -> UInt64 in
      state.nextID += 1
      return state.nextID
    }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation {
        (continuation: CheckedContinuation<Void, any Error>) in
        let immediate = state.withLock { state -> Result<Void, any Error>? in
          if Task.isCancelled { return .failure(CancellationError()) }
          if deadline <= state.now { return .success(()) }
          state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
          return nil
        }
        if let immediate { continuation.resume(with: immediate) }
      }
    } onCancel: {
      let sleeper = state.withLock { state -> Sleeper? in
        guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
        return state.sleepers.remove(at: index)
      }
      sleeper?.continuation.resume(throwing: CancellationError())
    }
  }

  /// Moves time forward and wakes every sleeper whose deadline passed, soonest first.
  public func advance(by duration: Duration) {
    // Decided under the lock, resumed after it: a woken task may call back in.
    let due = state.withLock { state -> [Sleeper] in
      state.now = state.now.advanced(by: duration)
      let now = state.now
      let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
      state.sleepers.removeAll { $0.deadline <= now }
      return due
    }
    for sleeper in due { sleeper.continuation.resume() }
  }

  /// Moves time forward by whole seconds.
  public func advance(seconds: Int64) { advance(by: .seconds(seconds)) }

  /// Time since the clock was created.
  public var elapsed: Duration { now.offset }

  /// How many tasks are sleeping on this clock.
  public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

  /// How far in the future each parked sleeper's deadline lies, soonest first.
  public var pendingSleeps: [Duration] {
    state.withLock { state in state.sleepers.map { state.now.duration(to: $0.deadline) }.sorted() }
  }
}
