import DeltaModel
internal import DequeModule
import Logging
import Metrics
import Synchronization

/// A snapshot of the batcher's counters.
public struct BatcherStatistics: Sendable, Equatable {
  /// Deltas held and not yet durably published (open, sealed, in flight).
  public var pendingDeltas: Int
  /// Summed `estimatedSize` of those deltas, in bytes.
  public var pendingBytes: Int
  /// Room held for granted waiters that have not appended yet, in deltas.
  public var reservedDeltas: Int
  /// Sealed batches waiting for (or in) publication.
  public var sealedBatches: Int
  /// Announces suspended waiting for room.
  public var waiters: Int
  /// Highest `pendingDeltas + reservedDeltas` ever observed.
  public var highWaterDeltas: Int
  /// Highest pending plus reserved bytes ever observed.
  public var highWaterBytes: Int
  /// The sequence the next delta will get.
  public var nextSequence: UInt64
  /// Whether the batcher stopped accepting deltas (shutdown).
  public var isClosed: Bool
}

/// Room for one delta, held for a waiter that was granted it.
struct DeltaReservation: Sendable {
  /// Bytes held (the configuration's `maxDeltaSize`).
  let bytes: Int
}

/// How a wait for room ended.
enum CapacityWait: Sendable {
  /// Room for one delta is now held for the waiter.
  case granted(DeltaReservation)
  /// `maxWait` passed.
  case timedOut
  /// `maxWaiters` announces were already waiting.
  case tooManyWaiters
  /// The batcher is shutting down.
  case closed
  /// The waiting task was cancelled.
  case cancelled
}

/// How a non-blocking append ended.
enum AppendResult: Sendable {
  /// The delta is queued and has its origin.
  case appended
  /// No room, or others wait ahead.
  case full
  /// The batcher is shutting down.
  case closed
}

/// The bounded batcher between the accounting hook and a ``DeltaSink``.
///
/// Deltas get their ``DeltaOrigin`` when appended (so sequence order is
/// queue order), collect in an open batch, and are sealed at `batchSize` or
/// after `flushInterval`, whichever comes first. One publisher hands sealed
/// batches to the sink oldest first, one in flight at a time; a failed
/// batch stays at the head and is retried with capped exponential backoff,
/// so order is preserved and nothing is skipped.
///
/// Everything not yet durably published counts against `maxPendingDeltas`
/// and `maxPendingBytes`. When full, appends fail fast and callers park in a
/// bounded FIFO of waiters (a stored continuation each: no thread blocked,
/// no task per waiter). Freed room is *handed* to waiters in FIFO order as a
/// reservation, and new arrivals queue behind existing waiters, so nobody
/// starves. One loop expires waiters at their `maxWait` deadline (deadlines
/// are monotonic in queue order, so it only ever looks at the head).
public final class DeltaBatcher: Sendable {
  /// This process's `DeltaOrigin.instance`.
  public let instance: UInt64
  let configuration: AccountingConfiguration
  private let sink: any DeltaSink
  private let clock: ElapsedClock
  private let metrics: AccountingMetrics
  private let logger: Logger
  private let state: Mutex<State>
  private let waiterIDs = Atomic<UInt64>(0)
  private let closed = Atomic<Bool>(false)
  /// Where published batches' entry changes are recorded; nil when off.
  let journal: CommitJournal?

  /// Creates a batcher.
  /// - Parameters:
  ///   - clock: drives flush timing, `maxWait` and retry backoff
  ///     (`ContinuousClock` in production; tests inject one they advance).
  ///   - metricsFactory: where metrics go (the bootstrapped backend by default).
  public convenience init(
    configuration: AccountingConfiguration, sink: any DeltaSink,
    clock: any Clock<Duration> = ContinuousClock(),
    metricsFactory: any MetricsFactory = MetricsSystem.factory,
    logger: Logger = Logger(label: "privtrak.accounting")
  ) {
    self.init(
      configuration: configuration, sink: sink, clock: ElapsedClock(clock),
      metrics: AccountingMetrics(factory: metricsFactory), logger: logger)
  }

  init(
    configuration: AccountingConfiguration, sink: any DeltaSink, clock: ElapsedClock,
    metrics: AccountingMetrics,
    logger: Logger, journal: CommitJournal? = nil
  ) {
    self.journal = journal
    self.configuration = configuration.validated()
    self.instance = configuration.instance ?? UInt64.random(in: 1...UInt64.max)
    self.sink = sink
    self.clock = clock
    self.metrics = metrics
    self.logger = logger
    self.state = Mutex(State(openCapacity: min(self.configuration.batchSize, 4096)))
  }

  // MARK: Producing

  /// Appends `delta` (assigning its origin) if there is room and nobody
  /// waits ahead. Non-suspending, so callers may hold a shard lock.
  /// - Parameter bypassingWaiters: GC passes true: expiry records are few
  ///   and must not queue behind announces.
  /// - Parameter change: what the delta does to its entry, for the commit
  ///   journal (pass it only when ``journal`` is set).
  func tryAppend(
    _ delta: inout Delta, change: JournalChange? = nil, bypassingWaiters: Bool = false
  ) -> AppendResult {
    let size = delta.estimatedSize
    let (result, wakeups) = state.withLock { state -> (AppendResult, Wakeups) in
      if state.isClosed { return (.closed, Wakeups()) }
      if !bypassingWaiters, !state.waiters.isEmpty || !state.priorityWaiters.isEmpty {
        return (.full, Wakeups())
      }
      guard state.hasRoom(deltas: 1, bytes: size, configuration) else { return (.full, Wakeups()) }
      return (
        .appended,
        state.append(
          &delta, change: change, size: size, instance: instance, configuration, clock)
      )
    }
    if wakeups.sealed { recordPendingGauges() }
    wakeups.resume()
    return result
  }

  /// Appends `first` then `second` (consecutive sequences) if there is
  /// room for both and nobody waits ahead; all or nothing, like
  /// ``tryAppend(_:change:bypassingWaiters:)``. For the one announce that
  /// emits two deltas (a stop that snatched, with `emitStopped`). `change`
  /// goes with `first`: it carries the bytes and the snatch, and the
  /// journal must not let either be counted twice.
  func tryAppend(_ first: inout Delta, then second: inout Delta, change: JournalChange? = nil)
    -> AppendResult
  {
    let firstSize = first.estimatedSize
    let secondSize = second.estimatedSize
    let (result, wakeups) = state.withLock { state -> (AppendResult, Wakeups) in
      if state.isClosed { return (.closed, Wakeups()) }
      if !state.waiters.isEmpty || !state.priorityWaiters.isEmpty { return (.full, Wakeups()) }
      guard state.hasRoom(deltas: 2, bytes: firstSize + secondSize, configuration) else {
        return (.full, Wakeups())
      }
      var wakeups = state.append(
        &first, change: change, size: firstSize, instance: instance, configuration, clock)
      wakeups.merge(
        state.append(
          &second, change: nil, size: secondSize, instance: instance, configuration, clock))
      return (.appended, wakeups)
    }
    if wakeups.sealed { recordPendingGauges() }
    wakeups.resume()
    return result
  }

  /// Appends `first` then `second` into room a waiter was granted for one
  /// delta. Never fails: the second may take the pending count one past
  /// `maxPendingDeltas` (its bytes usually fit in the reservation's
  /// `maxDeltaSize`); only a snatching stop with `emitStopped` gets here,
  /// and a waiter cannot hand its turn back without losing its place.
  func append(
    _ first: inout Delta, then second: inout Delta, change: JournalChange? = nil,
    using reservation: DeltaReservation
  ) {
    let firstSize = first.estimatedSize
    let secondSize = second.estimatedSize
    let (wakeups, grants) = state.withLock { state -> (Wakeups, [Grant]) in
      state.reservedDeltas -= 1
      state.reservedBytes -= reservation.bytes
      var wakeups = state.append(
        &first, change: change, size: firstSize, instance: instance, configuration, clock)
      wakeups.merge(
        state.append(
          &second, change: nil, size: secondSize, instance: instance, configuration, clock))
      return (wakeups, state.grantWaiters(configuration))
    }
    wakeups.resume()
    grants.resumeAll()
  }

  /// Appends `delta` into room a waiter was granted. Never fails.
  func append(
    _ delta: inout Delta, change: JournalChange? = nil, using reservation: DeltaReservation
  ) {
    let size = delta.estimatedSize
    let (wakeups, grants) = state.withLock { state -> (Wakeups, [Grant]) in
      state.reservedDeltas -= 1
      state.reservedBytes -= reservation.bytes
      let wakeups = state.append(
        &delta, change: change, size: size, instance: instance, configuration, clock)
      return (wakeups, state.grantWaiters(configuration))
    }
    wakeups.resume()
    grants.resumeAll()
  }

  /// Gives back room a waiter was granted but did not need.
  func release(_ reservation: DeltaReservation) {
    let grants = state.withLock { state -> [Grant] in
      state.reservedDeltas -= 1
      state.reservedBytes -= reservation.bytes
      return state.grantWaiters(configuration)
    }
    grants.resumeAll()
  }

  /// Suspends until room for one delta is granted, `maxWait` passes
  /// (unless `priority`), the batcher closes or the task is cancelled.
  /// - Parameter priority: GC waits without deadline and ahead of announces.
  func waitForCapacity(priority: Bool) async -> CapacityWait {
    let id = waiterIDs.add(1, ordering: .relaxed).newValue
    let outcome = await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<CapacityWait, Never>) in
        let (immediate, grants, expiryWakeup) = state.withLock {
          state -> (CapacityWait?, [Grant], CheckedContinuation<Void, Never>?) in
          if state.isClosed { return (.closed, [], nil) }
          if Task.isCancelled { return (.cancelled, [], nil) }
          var expiryWakeup: CheckedContinuation<Void, Never>?
          if priority {
            state.priorityWaiters.append(Waiter(id: id, deadline: nil, continuation: continuation))
          } else {
            guard state.waiters.count < configuration.maxWaiters else {
              return (.tooManyWaiters, [], nil)
            }
            let deadline = clock.now() + configuration.maxWait
            state.waiters.append(Waiter(id: id, deadline: deadline, continuation: continuation))
            if state.waiters.count == 1 { expiryWakeup = state.take(.waiterExpiry) }
          }
          // Room may have freed between the failed append and now.
          return (nil, state.grantWaiters(configuration), expiryWakeup)
        }
        expiryWakeup?.resume()
        grants.resumeAll()
        if let immediate { continuation.resume(returning: immediate) }
        recordPendingGauges()
      }
    } onCancel: {
      let waiter = state.withLock { state in
        state.priorityWaiters.removeFirstWaiter(id: id) ?? state.waiters.removeFirstWaiter(id: id)
      }
      waiter?.continuation.resume(returning: .cancelled)
    }
    recordPendingGauges()
    return outcome
  }

  // MARK: Running

  /// Runs the publisher, the flush timer and the waiter-expiry loop until
  /// the task is cancelled; then stops accepting deltas (waiting announces
  /// fail with retry-later), seals and publishes everything pending within
  /// `shutdownDrainTimeout`, and returns. What could not be delivered stays
  /// in ``pendingDeltas()`` for the snapshot. Call it once.
  public func run() async {
    guard claimPublisher() else {
      logger.error(
        "DeltaBatcher.run() called while another run, flush or drain is publishing; ignored")
      return
    }
    await withDiscardingTaskGroup { group in
      group.addTask { await self.publishLoop() }
      group.addTask { await self.sealTimerLoop() }
      group.addTask { await self.waiterExpiryLoop() }
    }
    close()
    // The drain must outlive the cancellation that brought us here.
    let delivered = await Task {
      await self.drainClaimed(timeout: self.configuration.shutdownDrainTimeout)
    }.value
    releasePublisher()
    let left = statistics().pendingDeltas
    if delivered {
      logger.info("accounting batcher drained: every delta was published")
    } else {
      logger.warning(
        "accounting batcher stopped with undelivered deltas; they belong in the snapshot",
        metadata: ["pending_deltas": "\(left)"])
    }
  }

  /// Seals the open batch and publishes every sealed batch once, oldest
  /// first, stopping at the first failure (that batch is kept). For tests
  /// and tools that do not call ``run()``; while `run()` is active this
  /// only seals and wakes its publisher.
  /// - Returns: true when every sealed batch was published.
  @discardableResult
  public func flush() async -> Bool {
    let (claimed, wakeup) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
      state.sealOpen()
      if state.publisherClaimed { return (false, state.take(.publisher)) }
      state.publisherClaimed = true
      return (true, nil)
    }
    wakeup?.resume()
    guard claimed else { return false }
    defer { releasePublisher() }
    while let head = state.withLock({ $0.sealed.first }) {
      do {
        try await sink.publish(head.batch)
        completePublish(head.number)
      } catch {
        metrics.publishFailures.increment()
        logger.warning("publishing a batch failed; it is kept", metadata: ["error": "\(error)"])
        return false
      }
    }
    return true
  }

  /// Seals and publishes everything pending, retrying failures with
  /// backoff, for at most `timeout`. Returns false (leaving the rest in
  /// ``pendingDeltas()``) when time ran out or another publisher (``run()``)
  /// is active. A sink must honour cancellation for the timeout to hold.
  public func drain(timeout: Duration) async -> Bool {
    guard claimPublisher() else { return false }
    defer { releasePublisher() }
    return await drainClaimed(timeout: timeout)
  }

  /// Stops accepting new deltas; waiting announces fail with retry-later.
  /// Room already granted may still be used.
  public func close() {
    closed.store(true, ordering: .releasing)
    let waiters = state.withLock { state in
      state.isClosed = true
      let all = Array(state.priorityWaiters) + Array(state.waiters)
      state.priorityWaiters.removeAll()
      state.waiters.removeAll()
      return all
    }
    for waiter in waiters { waiter.continuation.resume(returning: .closed) }
  }

  // MARK: Inspecting

  /// Whether ``close()`` was called (shutdown began). Lock-free.
  public var isClosed: Bool { closed.load(ordering: .acquiring) }

  /// Every delta not yet durably published, in origin order within this
  /// instance (restored deltas first). For the shutdown snapshot.
  public func pendingDeltas() -> [Delta] {
    state.withLock { state in
      var all: [Delta] = []
      all.reserveCapacity(state.pendingDeltas)
      for sealed in state.sealed { all.append(contentsOf: sealed.batch.deltas) }
      all.append(contentsOf: state.open)
      return all
    }
  }

  /// Current counters.
  public func statistics() -> BatcherStatistics {
    state.withLock { state in
      BatcherStatistics(
        pendingDeltas: state.pendingDeltas, pendingBytes: state.pendingBytes,
        reservedDeltas: state.reservedDeltas, sealedBatches: state.sealed.count,
        waiters: state.waiters.count + state.priorityWaiters.count,
        highWaterDeltas: state.highWaterDeltas,
        highWaterBytes: state.highWaterBytes, nextSequence: state.nextSequence,
        isClosed: state.isClosed)
    }
  }

  /// The sequence of the last delta appended (0 before the first). Read
  /// under a shard lock by the snapshot to know which deltas that shard's
  /// baselines already include.
  func lastAssignedSequence() -> UInt64 {
    state.withLock { $0.nextSequence - 1 }
  }

  /// Puts deltas from a snapshot back in front of everything, keeping
  /// their origins; `nextSequence` continues a restored instance's numbering.
  func restore(_ deltas: [Delta], nextSequence: UInt64?) {
    let wakeup = state.withLock { state -> CheckedContinuation<Void, Never>? in
      var restored: [SealedBatch] = []
      var start = 0
      while start < deltas.count {
        let chunk = Array(deltas[start..<min(deltas.count, start + configuration.batchSize)])
        let bytes = chunk.reduce(0) { $0 + $1.estimatedSize }
        restored.append(SealedBatch(number: 0, batch: DeltaBatch(deltas: chunk), bytes: bytes))
        state.pendingDeltas += chunk.count
        state.pendingBytes += bytes
        start += configuration.batchSize
      }
      // Number every sealed batch again so restored ones come first.
      var queue = Deque<SealedBatch>()
      for var batch in restored + Array(state.sealed) {
        batch.number = state.nextBatchNumber
        state.nextBatchNumber += 1
        queue.append(batch)
      }
      state.sealed = queue
      if let nextSequence { state.nextSequence = max(state.nextSequence, nextSequence) }
      state.noteHighWater()
      return state.sealed.isEmpty ? nil : state.take(.publisher)
    }
    wakeup?.resume()
  }

  // MARK: Loops

  private func publishLoop() async {
    while await park(.publisher, until: { !$0.sealed.isEmpty }) {
      guard await publishHead(deadline: nil) else { return }
    }
  }

  private func sealTimerLoop() async {
    while await park(.sealTimer, until: { !$0.open.isEmpty }) {
      let (number, openedAt) = state.withLock { ($0.nextBatchNumber, $0.openedAt) }
      do {
        try await clock.sleep(until: openedAt + configuration.flushInterval)
      } catch {
        return
      }
      let wakeup = state.withLock { state -> CheckedContinuation<Void, Never>? in
        // Only seal the batch this timer was started for.
        guard state.nextBatchNumber == number, !state.open.isEmpty else { return nil }
        state.sealOpen()
        return state.take(.publisher)
      }
      recordPendingGauges()
      wakeup?.resume()
    }
  }

  private func waiterExpiryLoop() async {
    while await park(.waiterExpiry, until: { !$0.waiters.isEmpty }) {
      guard let deadline = state.withLock({ $0.waiters.first?.deadline }) else { continue }
      do {
        try await clock.sleep(until: deadline)
      } catch {
        return
      }
      let now = clock.now()
      let expired = state.withLock { state in
        var expired: [Waiter] = []
        while let head = state.waiters.first, let deadline = head.deadline, deadline <= now {
          _ = state.waiters.popFirst()
          expired.append(head)
        }
        return expired
      }
      for waiter in expired { waiter.continuation.resume(returning: .timedOut) }
    }
  }

  private func drainClaimed(timeout: Duration) async -> Bool {
    let deadline = clock.now() + timeout
    while true {
      let done = state.withLock { state -> Bool in
        state.sealOpen()
        return state.sealed.isEmpty
      }
      if done { return true }
      guard await publishHead(deadline: deadline) else { return false }
    }
  }

  /// Publishes the oldest sealed batch, retrying with capped exponential
  /// backoff until it is durable. False when cancelled or past `deadline`.
  private func publishHead(deadline: Duration?) async -> Bool {
    guard let head = state.withLock({ $0.sealed.first }) else { return true }
    var backoff = configuration.publishRetryInitialBackoff
    while true {
      switch await attemptPublish(head.batch, deadline: deadline) {
      case .published:
        completePublish(head.number)
        return true
      case .deadlinePassed:
        return false
      case .failed(let error):
        metrics.publishFailures.increment()
        logger.warning(
          "publishing a batch failed; it is kept and retried",
          metadata: [
            "error": "\(error)", "deltas": "\(head.batch.deltas.count)", "retry_in": "\(backoff)",
          ])
        let retryAt = clock.now() + backoff
        if let deadline, retryAt > deadline { return false }
        do {
          try await clock.sleep(until: retryAt)
        } catch {
          return false
        }
        backoff = min(backoff * 2, configuration.publishRetryMaxBackoff)
      }
    }
  }

  private enum PublishAttempt: Sendable {
    case published
    case failed(any Error)
    case deadlinePassed
  }

  private func attemptPublish(_ batch: DeltaBatch, deadline: Duration?) async -> PublishAttempt {
    guard let deadline else {
      do {
        try await sink.publish(batch)
        return .published
      } catch {
        return .failed(error)
      }
    }
    // Race the publish against the deadline; a publish that did complete wins.
    return await withTaskGroup(of: PublishAttempt?.self) { group in
      group.addTask {
        do {
          try await self.sink.publish(batch)
          return .published
        } catch {
          return .failed(error)
        }
      }
      group.addTask {
        do {
          try await self.clock.sleep(until: deadline)
          return .deadlinePassed
        } catch {
          return nil
        }
      }
      var outcome: PublishAttempt?
      for await result in group {
        guard let result else { continue }
        if case .published = result {
          outcome = .published
        } else if outcome == nil {
          outcome = result
        }
        group.cancelAll()
      }
      return outcome ?? .deadlinePassed
    }
  }

  private func completePublish(_ number: UInt64) {
    let outcome = state.withLock {
      state -> (head: SealedBatch, grants: [Grant], deltas: Int, bytes: Int)? in
      guard let head = state.sealed.first, head.number == number else { return nil }
      _ = state.sealed.popFirst()
      state.pendingDeltas -= head.batch.deltas.count
      state.pendingBytes -= head.bytes
      return (head, state.grantWaiters(configuration), state.pendingDeltas, state.pendingBytes)
    }
    guard let outcome else { return }
    // Only one publisher runs at a time, so journal records keep publish order.
    journal?.recordCommit(outcome.head.changes, of: outcome.head.batch)
    outcome.grants.resumeAll()
    metrics.batchesPublished.increment()
    metrics.deltasPublished.increment(by: outcome.head.batch.deltas.count)
    recordPendingGauges()
  }

  /// Publishes the pending and waiter gauges. Called when batches seal or
  /// publish and when announces wait — often enough while deltas flow, and
  /// exactly when a stalled sink makes them grow.
  private func recordPendingGauges() {
    let (deltas, bytes, waiters) = state.withLock {
      ($0.pendingDeltas, $0.pendingBytes, $0.waiters.count)
    }
    metrics.pendingDeltas.record(deltas)
    metrics.pendingBytes.record(bytes)
    metrics.waiters.record(waiters)
  }

  private func claimPublisher() -> Bool {
    state.withLock { state in
      if state.publisherClaimed { return false }
      state.publisherClaimed = true
      return true
    }
  }

  private func releasePublisher() {
    state.withLock { $0.publisherClaimed = false }
  }

  /// Suspends until `ready` holds (checked under the lock, so a wakeup is
  /// never lost) or the task is cancelled; false when cancelled.
  private func park(_ slot: WakeupSlot, until ready: (State) -> Bool) async -> Bool {
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let resumeNow = state.withLock { state -> Bool in
          if Task.isCancelled || ready(state) { return true }
          state.store(continuation, in: slot)
          return false
        }
        if resumeNow { continuation.resume() }
      }
      return !Task.isCancelled
    } onCancel: {
      state.withLock { $0.take(slot) }?.resume()
    }
  }
}

// MARK: - State

extension DeltaBatcher {
  struct SealedBatch: Sendable {
    var number: UInt64
    var batch: DeltaBatch
    var bytes: Int
    /// What the batch's deltas did to their entries, for the commit journal.
    var changes: [JournalChange] = []
  }

  struct Waiter: Sendable {
    var id: UInt64
    /// nil for GC, which waits as long as it takes.
    var deadline: Duration?
    var continuation: CheckedContinuation<CapacityWait, Never>
  }

  /// A grant decided under the lock, resumed after it.
  struct Grant: Sendable {
    var continuation: CheckedContinuation<CapacityWait, Never>
    var reservation: DeltaReservation
  }

  enum WakeupSlot: Sendable {
    case publisher
    case sealTimer
    case waiterExpiry
  }

  /// Loop wakeups decided under the lock, resumed after it.
  struct Wakeups: Sendable {
    var sealTimer: CheckedContinuation<Void, Never>?
    var publisher: CheckedContinuation<Void, Never>?
    /// The append sealed a batch.
    var sealed = false

    func resume() {
      sealTimer?.resume()
      publisher?.resume()
    }

    /// Adds a later append's wakeups (a slot is taken once, so at most
    /// one of the two holds each continuation).
    mutating func merge(_ other: Wakeups) {
      sealTimer = sealTimer ?? other.sealTimer
      publisher = publisher ?? other.publisher
      sealed = sealed || other.sealed
    }
  }

  struct State: Sendable {
    var open: [Delta] = []
    var openChanges: [JournalChange] = []
    var openBytes = 0
    /// When the open batch got its first delta (clock time).
    var openedAt: Duration = .zero
    let openCapacity: Int
    var sealed = Deque<SealedBatch>()
    /// The number the open batch will have when sealed.
    var nextBatchNumber: UInt64 = 1
    var nextSequence: UInt64 = 1
    var pendingDeltas = 0
    var pendingBytes = 0
    var reservedDeltas = 0
    var reservedBytes = 0
    var highWaterDeltas = 0
    var highWaterBytes = 0
    var waiters = Deque<Waiter>()
    var priorityWaiters = Deque<Waiter>()
    var publisherWakeup: CheckedContinuation<Void, Never>?
    var sealTimerWakeup: CheckedContinuation<Void, Never>?
    var waiterExpiryWakeup: CheckedContinuation<Void, Never>?
    var isClosed = false
    var publisherClaimed = false

    init(openCapacity: Int) {
      self.openCapacity = openCapacity
      open.reserveCapacity(openCapacity)
    }

    func hasRoom(deltas: Int, bytes: Int, _ configuration: AccountingConfiguration) -> Bool {
      pendingDeltas + reservedDeltas + deltas <= configuration.maxPendingDeltas
        && pendingBytes + reservedBytes + bytes <= configuration.maxPendingBytes
    }

    mutating func append(
      _ delta: inout Delta, change: JournalChange?, size: Int, instance: UInt64,
      _ configuration: AccountingConfiguration, _ clock: ElapsedClock
    ) -> Wakeups {
      delta.origin = DeltaOrigin(instance: instance, sequence: nextSequence)
      if var change {
        change.sequence = nextSequence
        openChanges.append(change)
      }
      nextSequence += 1
      var wakeups = Wakeups()
      if open.isEmpty {
        openedAt = clock.now()
        wakeups.sealTimer = take(.sealTimer)
      }
      open.append(delta)
      openBytes += size
      pendingDeltas += 1
      pendingBytes += size
      noteHighWater()
      if open.count >= configuration.batchSize {
        sealOpen()
        wakeups.sealed = true
        wakeups.publisher = take(.publisher)
      }
      return wakeups
    }

    mutating func sealOpen() {
      guard !open.isEmpty else { return }
      sealed.append(
        SealedBatch(
          number: nextBatchNumber, batch: DeltaBatch(deltas: open), bytes: openBytes,
          changes: openChanges))
      openChanges = []
      nextBatchNumber += 1
      open = []
      open.reserveCapacity(openCapacity)
      openBytes = 0
    }

    mutating func noteHighWater() {
      highWaterDeltas = max(highWaterDeltas, pendingDeltas + reservedDeltas)
      highWaterBytes = max(highWaterBytes, pendingBytes + reservedBytes)
    }

    /// Hands freed room to waiters: GC first, then announces in FIFO order.
    mutating func grantWaiters(_ configuration: AccountingConfiguration) -> [Grant] {
      var grants: [Grant] = []
      let bytes = configuration.maxDeltaSize
      while !priorityWaiters.isEmpty || !waiters.isEmpty,
        hasRoom(deltas: 1, bytes: bytes, configuration)
      {
        let waiter = priorityWaiters.popFirst() ?? waiters.popFirst()!
        reservedDeltas += 1
        reservedBytes += bytes
        noteHighWater()
        grants.append(
          Grant(continuation: waiter.continuation, reservation: DeltaReservation(bytes: bytes)))
      }
      return grants
    }

    mutating func store(_ continuation: CheckedContinuation<Void, Never>, in slot: WakeupSlot) {
      switch slot {
      case .publisher: publisherWakeup = continuation
      case .sealTimer: sealTimerWakeup = continuation
      case .waiterExpiry: waiterExpiryWakeup = continuation
      }
    }

    mutating func take(_ slot: WakeupSlot) -> CheckedContinuation<Void, Never>? {
      switch slot {
      case .publisher:
        defer { publisherWakeup = nil }
        return publisherWakeup
      case .sealTimer:
        defer { sealTimerWakeup = nil }
        return sealTimerWakeup
      case .waiterExpiry:
        defer { waiterExpiryWakeup = nil }
        return waiterExpiryWakeup
      }
    }
  }
}

extension [DeltaBatcher.Grant] {
  func resumeAll() {
    for grant in self { grant.continuation.resume(returning: .granted(grant.reservation)) }
  }
}

extension Deque<DeltaBatcher.Waiter> {
  /// Removes and returns the waiter `id` (a cancelled wait), wherever it queues.
  fileprivate mutating func removeFirstWaiter(id: UInt64) -> Element? {
    guard let index = firstIndex(where: { $0.id == id }) else { return nil }
    return remove(at: index)
  }
}
