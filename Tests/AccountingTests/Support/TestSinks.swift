import Accounting
import DeltaModel
import Synchronization

/// A real ``DeltaSink`` whose destination is memory: every published batch
/// is kept, in order.
final class CollectingTestSink: DeltaSink {
  private let state = Mutex<(batches: [DeltaBatch], closed: Bool)>(([], false))

  func publish(_ batch: DeltaBatch) async throws {
    state.withLock { $0.batches.append(batch) }
  }

  func close() async throws {
    state.withLock { $0.closed = true }
  }

  /// Batches published so far.
  var batches: [DeltaBatch] { state.withLock { $0.batches } }
  /// Deltas published so far, in publication order.
  var deltas: [Delta] { batches.flatMap(\.deltas) }
  /// Whether `close()` was called.
  var isClosed: Bool { state.withLock { $0.closed } }
}

/// Test double for a stalled destination (an unreachable broker): `publish`
/// parks until the test opens the gate, then delivers. Honours cancellation.
final class GatedTestSink: DeltaSink {
  private struct State {
    var isOpen = false
    var parked: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    var nextID = 0
    var delivered: [DeltaBatch] = []
    var attempts = 0
  }

  private let state = Mutex(State())

  init(open: Bool = false) {
    state.withLock { $0.isOpen = open }
  }

  func publish(_ batch: DeltaBatch) async throws {
    let id = state.withLock { state -> Int in
      state.attempts += 1
      state.nextID += 1
      return state.nextID
    }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation {
        (continuation: CheckedContinuation<Void, any Error>) in
        let immediate = state.withLock { state -> Result<Void, any Error>? in
          if Task.isCancelled { return .failure(CancellationError()) }
          if state.isOpen { return .success(()) }
          state.parked.append((id, continuation))
          return nil
        }
        if let immediate { continuation.resume(with: immediate) }
      }
    } onCancel: {
      let parked = state.withLock { state -> CheckedContinuation<Void, any Error>? in
        guard let index = state.parked.firstIndex(where: { $0.id == id }) else { return nil }
        return state.parked.remove(at: index).continuation
      }
      parked?.resume(throwing: CancellationError())
    }
    state.withLock { $0.delivered.append(batch) }
  }

  func close() async throws {}

  /// Lets every parked and future publish through.
  func open() {
    let parked = state.withLock { state in
      state.isOpen = true
      defer { state.parked = [] }
      return state.parked
    }
    for entry in parked { entry.continuation.resume() }
  }

  /// Publishes parked at the gate right now.
  var parkedCount: Int { state.withLock { $0.parked.count } }
  /// Batches delivered (after the gate opened).
  var delivered: [DeltaBatch] { state.withLock { $0.delivered } }
  /// Deltas delivered, in order.
  var deliveredDeltas: [Delta] { delivered.flatMap(\.deltas) }
}

/// Test double for a destination that fails transiently: the first
/// `failures` publishes throw, the rest deliver.
final class FlakyTestSink: DeltaSink {
  struct InjectedFailure: Error {}

  private let state: Mutex<(remainingFailures: Int, attempts: Int, delivered: [DeltaBatch])>

  init(failures: Int) {
    state = Mutex((failures, 0, []))
  }

  func publish(_ batch: DeltaBatch) async throws {
    let fail = state.withLock { state -> Bool in
      state.attempts += 1
      guard state.remainingFailures > 0 else {
        state.delivered.append(batch)
        return false
      }
      state.remainingFailures -= 1
      return true
    }
    if fail { throw InjectedFailure() }
  }

  func close() async throws {}

  /// Publish calls so far, failed or not.
  var attempts: Int { state.withLock { $0.attempts } }
  /// Batches delivered.
  var delivered: [DeltaBatch] { state.withLock { $0.delivered } }
  /// Deltas delivered, in order.
  var deliveredDeltas: [Delta] { delivered.flatMap(\.deltas) }
}
