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
