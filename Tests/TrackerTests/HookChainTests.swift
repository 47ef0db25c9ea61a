import BitTorrent
import Synchronization
import Testing

@testable import Tracker

/// Records the order hooks ran in and can refuse a request.
struct RecordingTestHook: PreHook, PostHook {
  let name: String
  let log: SharedLog
  let refuse: Bool

  func beforeAnnounce(_ request: inout AnnounceRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    log.entries.withLock { $0.append("pre:\(name)") }
    if refuse { throw TrackerFailure("refused by \(name)", kind: .forbidden) }
    context.userID = UserID(high: 1, low: 2)
  }

  func afterAnnounce(
    _ request: AnnounceRequest, response: inout AnnounceResponse, context: HookContext
  ) async {
    log.entries.withLock { $0.append("post:\(name):\(context.userID != nil)") }
    response.interval = 42
  }
}

final class SharedLog: Sendable {
  let entries = Mutex<[String]>([])
}

@Suite struct HookChainTests {
  @Test func hooksRunInOrderAndShareContext() async throws {
    let log = SharedLog()
    let first = RecordingTestHook(name: "a", log: log, refuse: false)
    let second = RecordingTestHook(name: "b", log: log, refuse: false)
    let tracker = Tracker(preHooks: [first, second], postHooks: [second])
    let response = try await tracker.announce(makeRequest(peer: 1))
    #expect(response.interval == 42)
    #expect(log.entries.withLock { $0 } == ["pre:a", "pre:b", "post:b:true"])
  }

  @Test func failingPreHookStopsTheChainAndRecordsNothing() async throws {
    let log = SharedLog()
    let refusing = RecordingTestHook(name: "gate", log: log, refuse: true)
    let after = RecordingTestHook(name: "after", log: log, refuse: false)
    let tracker = Tracker(preHooks: [refusing, after], postHooks: [after])
    await #expect(throws: TrackerFailure("refused by gate", kind: .forbidden)) {
      try await tracker.announce(makeRequest(peer: 1))
    }
    #expect(log.entries.withLock { $0 } == ["pre:gate"])
    #expect(tracker.peerStore.census().swarms == 0)
  }
}

/// A hook with a non-suspending form; logs which form ran.
struct ImmediateTestHook: PreHook {
  let name: String
  let log: SharedLog

  func beforeAnnounce(_ request: inout AnnounceRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    log.entries.withLock { $0.append("later:\(name)") }
  }

  func beforeAnnounceWithoutSuspending(
    _ request: inout AnnounceRequest, context: inout HookContext
  ) throws(TrackerFailure) -> PreHookStep {
    log.entries.withLock { $0.append("now:\(name)") }
    return .done
  }
}

@Suite struct AnnounceWithoutSuspendingTests {
  @Test func answersAtOnceWhenEveryHookCan() throws {
    let log = SharedLog()
    let tracker = Tracker(preHooks: [
      ImmediateTestHook(name: "a", log: log), ImmediateTestHook(name: "b", log: log),
    ])
    guard case .answered(let response) = try tracker.announceWithoutSuspending(makeRequest(peer: 1))
    else {
      Issue.record("expected an immediate answer")
      return
    }
    #expect(response.incomplete == 1)
    #expect(log.entries.withLock { $0 } == ["now:a", "now:b"])
    #expect(tracker.peerStore.census().swarms == 1)
  }

  @Test func aSuspendingHookLeavesTheRestPendingAndNothingRecorded() async throws {
    let log = SharedLog()
    let tracker = Tracker(preHooks: [
      ImmediateTestHook(name: "a", log: log),
      RecordingTestHook(name: "b", log: log, refuse: false),
      ImmediateTestHook(name: "c", log: log),
    ])
    guard case .pending(let pending) = try tracker.announceWithoutSuspending(makeRequest(peer: 1))
    else {
      Issue.record("expected a pending announce")
      return
    }
    // Only the hook before the suspending one ran; the peer store is untouched.
    #expect(log.entries.withLock { $0 } == ["now:a"])
    #expect(tracker.peerStore.census().swarms == 0)
    let response = try await pending.response()
    #expect(response.incomplete == 1)
    // The suspended hook, then the later ones in their suspending form, each once.
    #expect(log.entries.withLock { $0 } == ["now:a", "pre:b", "later:c"])
    #expect(tracker.peerStore.census().swarms == 1)
  }

  @Test func aFailureOfTheSuspendedRestRecordsNothing() async throws {
    let log = SharedLog()
    let tracker = Tracker(preHooks: [RecordingTestHook(name: "gate", log: log, refuse: true)])
    guard case .pending(let pending) = try tracker.announceWithoutSuspending(makeRequest(peer: 1))
    else {
      Issue.record("expected a pending announce")
      return
    }
    await #expect(throws: TrackerFailure("refused by gate", kind: .forbidden)) {
      try await pending.response()
    }
    #expect(tracker.peerStore.census().swarms == 0)
  }

  @Test func postHooksRunAfterTheAnswerOffTheLoop() async throws {
    let log = SharedLog()
    let post = RecordingTestHook(name: "p", log: log, refuse: false)
    let tracker = Tracker(preHooks: [ImmediateTestHook(name: "a", log: log)], postHooks: [post])
    guard case .pending(let pending) = try tracker.announceWithoutSuspending(makeRequest(peer: 1))
    else {
      Issue.record("expected a pending announce")
      return
    }
    // The peer store already answered; only the post-hook is left.
    #expect(tracker.peerStore.census().swarms == 1)
    let response = try await pending.response()
    #expect(response.interval == 42)
    #expect(log.entries.withLock { $0 } == ["now:a", "post:p:false"])
  }
}
