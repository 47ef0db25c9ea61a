import Synchronization

/// Deltas and encoded bytes of batches admitted but not yet durable (or failed).
public struct InFlightUsage: Sendable, Hashable, CustomStringConvertible {
  /// Deltas.
  public var deltas: Int
  /// Encoded record bytes: keys, values, header names and values.
  public var bytes: Int

  /// Creates a usage.
  public init(deltas: Int, bytes: Int) {
    self.deltas = deltas
    self.bytes = bytes
  }

  /// Nothing in flight.
  public static let zero = InFlightUsage(deltas: 0, bytes: 0)

  public var description: String { "\(deltas) deltas, \(bytes) bytes" }
}

/// Admits publish jobs in arrival order while the in-flight bound has room,
/// and parks the rest as callbacks (no thread blocked, no task spawned) in a
/// queue of bounded length. Admission hands the job to `dispatch` under the
/// lock, so jobs reach the producer thread in admission order. The queue
/// never runs a job itself, so `Job` is whatever `dispatch` takes (for the
/// sink, a `ProducerThread` job).
final class AdmissionQueue<Job: Sendable>: Sendable {
  typealias Failure = @Sendable (any Error) -> Void

  /// A parked job.
  private struct Waiter {
    var id: UInt64
    var usage: InFlightUsage
    var job: Job
    var fail: Failure
  }

  /// What `enqueue` did with a job.
  private enum Outcome {
    case admitted, parked
    case failed(any Error)
  }

  private struct State {
    var inFlight = InFlightUsage.zero
    var peak = InFlightUsage.zero
    var waiters: [Waiter] = []
    var nextID: UInt64 = 1
    /// Reserved ids not enqueued yet; true once cancelled (the cancel came first).
    var reserved: [UInt64: Bool] = [:]
    var rejection: KafkaSinkError?
  }

  /// The bound. A job larger than it is admitted alone, when nothing else is in flight.
  let limit: InFlightUsage
  /// How many jobs may wait; one more is rejected with `KafkaSinkError.saturated`.
  let maxWaiters: Int
  private let dispatch: @Sendable (Job) -> Bool
  private let observe: @Sendable (InFlightUsage, Int) -> Void
  private let state = Mutex(State())

  /// - Parameters:
  ///   - dispatch: runs an admitted job (hands it to the producer thread);
  ///     returns false when that is no longer possible.
  ///   - observe: told the in-flight usage and the waiter count after each
  ///     change (for gauges); called outside the lock.
  init(
    limit: InFlightUsage, maxWaiters: Int, dispatch: @escaping @Sendable (Job) -> Bool,
    observe: @escaping @Sendable (InFlightUsage, Int) -> Void = { _, _ in }
  ) {
    self.limit = limit
    self.maxWaiters = max(0, maxWaiters)
    self.dispatch = dispatch
    self.observe = observe
  }

  /// Deltas and bytes admitted and not yet released.
  var inFlight: InFlightUsage { state.withLock { $0.inFlight } }
  /// The most deltas and bytes ever in flight at once (each the maximum on its own).
  var peak: InFlightUsage { state.withLock { $0.peak } }
  /// Jobs parked waiting for room.
  var waiting: Int { state.withLock { $0.waiters.count } }

  /// A fresh id for `enqueue`/`cancel`; reserve it before installing a cancellation handler.
  func reserveID() -> UInt64 {
    state.withLock { state in
      let id = state.nextID
      state.nextID += 1
      state.reserved[id] = false
      return id
    }
  }

  /// Runs `job` now if `usage` fits and nobody waits ahead, else parks it.
  /// `fail` is called instead of `job` when the job is cancelled, rejected
  /// (closed, fenced, saturated) or cannot be dispatched.
  func enqueue(id: UInt64, usage: InFlightUsage, job: Job, fail: @escaping Failure) {
    let (outcome, snapshot) = state.withLock { state -> (Outcome, (InFlightUsage, Int)) in
      let cancelledEarly = state.reserved.removeValue(forKey: id) ?? false
      let outcome: Outcome
      if cancelledEarly {
        outcome = .failed(CancellationError())
      } else if let rejection = state.rejection {
        outcome = .failed(rejection)
      } else if state.waiters.isEmpty && fits(usage, in: state.inFlight) {
        outcome = admit(usage, job: job, state: &state) ? .admitted : .failed(KafkaSinkError.closed)
      } else if state.waiters.count >= maxWaiters {
        outcome = .failed(KafkaSinkError.saturated(waitingPublishers: state.waiters.count))
      } else {
        state.waiters.append(Waiter(id: id, usage: usage, job: job, fail: fail))
        outcome = .parked
      }
      return (outcome, (state.inFlight, state.waiters.count))
    }
    if case .failed(let error) = outcome { fail(error) }
    observe(snapshot.0, snapshot.1)
  }

  /// Fails the job with `CancellationError` if it still waits; an admitted job runs on.
  func cancel(id: UInt64) {
    let (cancelled, undispatched, snapshot) = state.withLock {
      state -> (Waiter?, [Waiter], (InFlightUsage, Int)) in
      if state.reserved[id] != nil {
        state.reserved[id] = true
        return (nil, [], (state.inFlight, state.waiters.count))
      }
      guard let index = state.waiters.firstIndex(where: { $0.id == id }) else {
        return (nil, [], (state.inFlight, state.waiters.count))
      }
      let waiter = state.waiters.remove(at: index)
      // The head leaving may let the next ones in.
      let undispatched = admitWaiters(state: &state)
      return (waiter, undispatched, (state.inFlight, state.waiters.count))
    }
    cancelled?.fail(CancellationError())
    for waiter in undispatched { waiter.fail(KafkaSinkError.closed) }
    observe(snapshot.0, snapshot.1)
  }

  /// Returns a finished job's usage and admits waiters that now fit.
  func release(_ usage: InFlightUsage) {
    let (undispatched, snapshot) = state.withLock { state -> ([Waiter], (InFlightUsage, Int)) in
      state.inFlight.deltas -= usage.deltas
      state.inFlight.bytes -= usage.bytes
      let undispatched = admitWaiters(state: &state)
      return (undispatched, (state.inFlight, state.waiters.count))
    }
    for waiter in undispatched { waiter.fail(KafkaSinkError.closed) }
    observe(snapshot.0, snapshot.1)
  }

  /// From now on every new job fails with `error`, and so do all waiting ones.
  /// Admitted jobs are not affected. The first rejection wins.
  func reject(with error: KafkaSinkError) {
    let (rejected, reason, snapshot) = state.withLock {
      state -> ([Waiter], KafkaSinkError, (InFlightUsage, Int)) in
      if state.rejection == nil { state.rejection = error }
      let waiters = state.waiters
      state.waiters.removeAll()
      return (waiters, state.rejection ?? error, (state.inFlight, 0))
    }
    for waiter in rejected { waiter.fail(reason) }
    observe(snapshot.0, snapshot.1)
  }

  private func fits(_ usage: InFlightUsage, in inFlight: InFlightUsage) -> Bool {
    if inFlight == .zero { return true }
    return inFlight.deltas + usage.deltas <= limit.deltas
      && inFlight.bytes + usage.bytes <= limit.bytes
  }

  /// Counts the usage in and dispatches; undoes the count when dispatch fails.
  private func admit(_ usage: InFlightUsage, job: Job, state: inout State) -> Bool {
    state.inFlight.deltas += usage.deltas
    state.inFlight.bytes += usage.bytes
    state.peak.deltas = max(state.peak.deltas, state.inFlight.deltas)
    state.peak.bytes = max(state.peak.bytes, state.inFlight.bytes)
    if dispatch(job) { return true }
    state.inFlight.deltas -= usage.deltas
    state.inFlight.bytes -= usage.bytes
    return false
  }

  /// Admits waiters from the head while they fit (strict FIFO: a large head
  /// waiter holds back smaller ones behind it, which keeps batch order).
  /// Returns the ones whose dispatch failed.
  private func admitWaiters(state: inout State) -> [Waiter] {
    var undispatched: [Waiter] = []
    while let head = state.waiters.first, fits(head.usage, in: state.inFlight) {
      state.waiters.removeFirst()
      if !admit(head.usage, job: head.job, state: &state) { undispatched.append(head) }
    }
    return undispatched
  }
}
