import Synchronization
import Testing

@testable import KafkaSink

/// Drives an `AdmissionQueue` by hand: dispatching a job only records its
/// name, so each test decides when a job finishes (releases its usage).
private final class AdmissionHarness: Sendable {
  let queue: AdmissionQueue<@Sendable () -> Void>
  private let sink = RecordSink()

  init(deltas: Int, bytes: Int = 1_000_000, maxWaiters: Int = 100) {
    queue = AdmissionQueue(
      limit: InFlightUsage(deltas: deltas, bytes: bytes), maxWaiters: maxWaiters,
      dispatch: { job in
        job()
        return true
      })
  }

  /// Enqueues a job named `name`; its dispatch and failure are recorded.
  func enqueue(_ name: String, deltas: Int, bytes: Int = 1, id: UInt64? = nil) {
    let sink = sink
    queue.enqueue(
      id: id ?? queue.reserveID(), usage: InFlightUsage(deltas: deltas, bytes: bytes),
      job: { sink.dispatched(name) }, fail: { sink.failed(name, $0) })
  }

  /// The job holding this usage finished.
  func finish(deltas: Int, bytes: Int = 1) {
    queue.release(InFlightUsage(deltas: deltas, bytes: bytes))
  }

  var dispatched: [String] { sink.snapshot.dispatched }
  var failures: [String: String] { sink.snapshot.failed }
}

/// What the harness's jobs and failure callbacks reported.
private final class RecordSink: Sendable {
  struct Snapshot {
    var dispatched: [String] = []
    var failed: [String: String] = [:]
  }
  private let state = Mutex(Snapshot())
  var snapshot: Snapshot { state.withLock { $0 } }
  func dispatched(_ name: String) { state.withLock { $0.dispatched.append(name) } }
  func failed(_ name: String, _ error: any Error) {
    state.withLock { $0.failed[name] = error is CancellationError ? "cancelled" : "\(error)" }
  }
}

@Suite struct AdmissionQueueTests {
  @Test func admitsInArrivalOrderWithinTheBound() {
    let harness = AdmissionHarness(deltas: 10)
    harness.enqueue("a", deltas: 4)
    harness.enqueue("b", deltas: 4)
    harness.enqueue("c", deltas: 4)
    #expect(harness.dispatched == ["a", "b"])
    #expect(harness.queue.inFlight.deltas == 8)
    #expect(harness.queue.waiting == 1)
    harness.finish(deltas: 4)
    #expect(harness.dispatched == ["a", "b", "c"])
    #expect(harness.queue.inFlight.deltas == 8)
    #expect(harness.queue.peak.deltas <= 10)
  }

  @Test func boundsBytesToo() {
    let harness = AdmissionHarness(deltas: 1000, bytes: 100)
    harness.enqueue("a", deltas: 1, bytes: 60)
    harness.enqueue("b", deltas: 1, bytes: 60)
    #expect(harness.dispatched == ["a"])
    harness.finish(deltas: 1, bytes: 60)
    #expect(harness.dispatched == ["a", "b"])
    #expect(harness.queue.peak.bytes == 60)
  }

  @Test func smallerJobsDoNotOvertakeAWaitingOne() {
    let harness = AdmissionHarness(deltas: 10)
    harness.enqueue("a", deltas: 8)
    harness.enqueue("big", deltas: 5)
    harness.enqueue("small", deltas: 1)  // would fit, but order is kept
    #expect(harness.dispatched == ["a"])
    harness.finish(deltas: 8)
    #expect(harness.dispatched == ["a", "big", "small"])
  }

  @Test func aJobLargerThanTheBoundRunsAlone() {
    let harness = AdmissionHarness(deltas: 10)
    harness.enqueue("huge", deltas: 25)
    harness.enqueue("next", deltas: 1)
    #expect(harness.dispatched == ["huge"])
    harness.finish(deltas: 25)
    #expect(harness.dispatched == ["huge", "next"])
  }

  @Test func oneWaiterTooManyIsRejectedAsSaturated() {
    let harness = AdmissionHarness(deltas: 1, maxWaiters: 2)
    harness.enqueue("running", deltas: 1)
    harness.enqueue("w1", deltas: 1)
    harness.enqueue("w2", deltas: 1)
    harness.enqueue("w3", deltas: 1)
    #expect(harness.failures == ["w3": "\(KafkaSinkError.saturated(waitingPublishers: 2))"])
    #expect(harness.queue.waiting == 2)
  }

  @Test func cancellingAWaiterFailsItAndLetsTheNextIn() {
    let harness = AdmissionHarness(deltas: 2)
    harness.enqueue("a", deltas: 1)
    let id = harness.queue.reserveID()
    harness.enqueue("b", deltas: 2, id: id)
    harness.enqueue("c", deltas: 1)
    #expect(harness.dispatched == ["a"])
    harness.queue.cancel(id: id)
    #expect(harness.failures == ["b": "cancelled"])
    #expect(harness.dispatched == ["a", "c"])
  }

  @Test func aCancelBeforeEnqueueFailsTheEnqueue() {
    let harness = AdmissionHarness(deltas: 2)
    let id = harness.queue.reserveID()
    harness.queue.cancel(id: id)
    harness.enqueue("late", deltas: 1, id: id)
    #expect(harness.failures == ["late": "cancelled"])
    #expect(harness.dispatched.isEmpty)
    #expect(harness.queue.inFlight == .zero)
  }

  @Test func rejectionFailsWaitersAndNewJobsButNotAdmittedOnes() {
    let harness = AdmissionHarness(deltas: 1)
    harness.enqueue("running", deltas: 1)
    harness.enqueue("waiting", deltas: 1)
    harness.queue.reject(with: .closed)
    harness.enqueue("new", deltas: 1)
    #expect(harness.dispatched == ["running"])
    #expect(
      harness.failures == [
        "waiting": "\(KafkaSinkError.closed)", "new": "\(KafkaSinkError.closed)",
      ])
    harness.finish(deltas: 1)
    #expect(harness.queue.inFlight == .zero)
  }
}
