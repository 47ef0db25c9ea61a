import Synchronization
import Testing
import Tracker

/// Test double for time: a `Clock` that only moves when the test calls
/// ``advance(by:)``. Sleepers are parked continuations, resumed when the
/// clock passes their deadline, so tests never sleep for real.
final class ManualTestClock: Clock, Sendable {
  struct Instant: InstantProtocol {
    var offset: Swift.Duration

    func advanced(by duration: Swift.Duration) -> Instant { Instant(offset: offset + duration) }
    func duration(to other: Instant) -> Swift.Duration { other.offset - offset }
    static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
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

  var now: Instant { state.withLock { $0.now } }
  var minimumResolution: Swift.Duration { .zero }

  func sleep(until deadline: Instant, tolerance: Swift.Duration?) async throws {
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

  /// Moves time forward and wakes every sleeper whose deadline passed.
  func advance(by duration: Swift.Duration) {
    let due = state.withLock { state -> [Sleeper] in
      state.now = state.now.advanced(by: duration)
      let now = state.now
      let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
      state.sleepers.removeAll { $0.deadline <= now }
      return due
    }
    for sleeper in due { sleeper.continuation.resume() }
  }

  /// Time since the clock was created.
  var elapsed: Swift.Duration { now.offset }

  /// How far in the future each parked sleeper's deadline lies, soonest first.
  var pendingSleeps: [Swift.Duration] {
    state.withLock { state in state.sleepers.map { state.now.duration(to: $0.deadline) }.sorted() }
  }
}

/// Test double for the wall clock the tracker stamps requests with.
final class ManualTrackerClock: TrackerClock, Sendable {
  private let milliseconds: Mutex<Int64>

  /// Starts at a fixed, realistic time (2024-01-01T00:00:00Z).
  init(milliseconds: Int64 = 1_704_067_200_000) {
    self.milliseconds = Mutex(milliseconds)
  }

  func nowMilliseconds() -> Int64 { milliseconds.withLock { $0 } }

  /// Moves the clock forward.
  func advance(seconds: Int64) {
    milliseconds.withLock { $0 += seconds * 1000 }
  }
}

struct WaitTimedOut: Error, CustomStringConvertible {
  var description: String
}

/// Polls a real condition until it holds, failing after a generous bound.
/// Only to synchronise with other tasks; the outcome never depends on timing.
func waitUntil(
  _ what: String, timeout: Duration = .seconds(30),
  sourceLocation: SourceLocation = #_sourceLocation,
  _ condition: () -> Bool
) async throws {
  let start = ContinuousClock.now
  while !condition() {
    if ContinuousClock.now - start > timeout {
      Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
      throw WaitTimedOut(description: what)
    }
    try await Task.sleep(for: .milliseconds(1))
  }
}
