import Accounting
import BitTorrent
import DeltaModel
import Testing
import Tracker

@Suite("Delta fields and ordering ids")
struct DeltaFieldsTests {
  let client = TestClient(user: 11, torrent: 5)

  @Test("origins: configured instance, sequence starts at 1 and increments per delta")
  func originsAreSequential() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(configuration: .forTesting(instance: 42), sink: sink)
    let other = TestClient(user: 12, torrent: 5)
    try await harness.announce(client, uploaded: 0, downloaded: 0)
    try await harness.announce(other, uploaded: 0, downloaded: 0)
    for step in 1...3 {
      try await harness.announce(client, uploaded: UInt64(step) * 10, downloaded: 0)
      try await harness.announce(other, uploaded: UInt64(step) * 20, downloaded: 0)
    }
    await harness.middleware.flush()
    #expect(harness.middleware.instance == 42)
    #expect(
      sink.deltas.map(\.origin) == (1...6).map { DeltaOrigin(instance: 42, sequence: UInt64($0)) })
  }

  @Test("without a configured instance each process start picks its own random, non-zero one")
  func randomInstance() async {
    let first = await AccountingHarness(sink: CollectingTestSink())
    let second = await AccountingHarness(sink: CollectingTestSink())
    #expect(first.middleware.instance != 0)
    #expect(first.middleware.instance != second.middleware.instance)
  }

  @Test("client IP and peer id are absent by default")
  func optionalFieldsOffByDefault() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 0, downloaded: 0)
    try await harness.announce(client, uploaded: 1, downloaded: 0)
    await harness.middleware.flush()
    #expect(sink.deltas.first?.clientIP == nil)
    #expect(sink.deltas.first?.peerID == nil)
  }

  @Test("recordClientIP and recordPeerID put them on deltas (and on expiries, the peer id)")
  func optionalFieldsWhenConfigured() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(
      configuration: .forTesting(recordClientIP: true, recordPeerID: true), sink: sink)
    var v6 = client
    v6.endpoint = PeerEndpoint(address: IPAddress("2001:db8::1")!, port: 51413)
    try await harness.announce(v6, uploaded: 0, downloaded: 0)
    try await harness.announce(v6, uploaded: 1, downloaded: 0)
    harness.trackerClock.advance(seconds: 4000)
    await harness.middleware.collectGarbage()
    await harness.middleware.flush()
    let deltas = sink.deltas
    try #require(deltas.count == 2)
    #expect(deltas[0].clientIP == IPAddress("2001:db8::1"))
    #expect(deltas[0].peerID == client.peerID)
    #expect(deltas[0].estimatedSize == 96 + 18 + 22)
    #expect(
      deltas[1].event == .expired && deltas[1].peerID == client.peerID && deltas[1].clientIP == nil)
  }
}
