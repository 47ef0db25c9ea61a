import Accounting
import BitTorrent
import DeltaModel
import Frontends
import NIOCore
import Synchronization
import Testing
import Tracker

/// Issue #15 end to end: a client announcing every event twice, over real
/// sockets, is counted once, bytes and snatch.
@Suite("Accounting over the real frontends: one snatch per download")
struct SnatchOverFrontendsTests {
  /// Collects every published delta.
  final class CollectingSink: DeltaSink {
    private let batches = Mutex<[DeltaBatch]>([])
    func publish(_ batch: DeltaBatch) async throws { batches.withLock { $0.append(batch) } }
    func close() async throws {}
    var deltas: [Delta] { batches.withLock { $0.flatMap(\.deltas) } }
  }

  static let passkey = "0123456789abcdef0123456789abcdef"
  static let torrent = makeInfoHash(0x40)
  static let peer = makePeerID(15)

  /// qBittorrent's session: started, progress, completed, progress, stopped.
  static let session: [(uploaded: Int64, downloaded: Int64, left: Int64, event: AnnounceEvent)] = [
    (0, 0, 1000, .started), (100, 600, 400, .none), (150, 1000, 0, .completed),
    (400, 1000, 0, .none), (900, 1000, 0, .stopped),
  ]

  /// The accounting middleware in front of a real tracker, plus a hook that
  /// sees which addresses and transports the announces came from.
  static func tracker(_ sink: CollectingSink) async -> (
    AccountingMiddleware, Tracker, RecordingPreHook
  ) {
    let accounting = await AccountingMiddleware(sink: sink, logger: testLogger)
    let recorder = RecordingPreHook()
    return (accounting, Tracker(preHooks: [recorder, accounting]), recorder)
  }

  static func httpTarget(_ step: (Int64, Int64, Int64, AnnounceEvent)) -> String {
    let (uploaded, downloaded, left, event) = step
    return "/\(passkey)/announce?"
      + announceQuery(
        infoHash: torrent, peerID: peer, port: 6881, left: UInt64(left),
        event: event == .none ? nil : event.description,
        extra: [("uploaded", String(uploaded)), ("downloaded", String(downloaded))])
  }

  /// The deltas one download must give, however often it was announced.
  static func expectCountedOnce(_ deltas: [Delta]) {
    #expect(deltas.map(\.event) == [.none, .completed, .none, .stopped])
    #expect(deltas.filter { $0.event == .completed }.count == 1, "one snatch")
    #expect(deltas.reduce(0) { $0 + $1.uploaded } == 900)
    #expect(deltas.reduce(0) { $0 + $1.downloaded } == 1000)
  }

  @Test("dual stack: the same session from 127.0.0.1 and from ::1 → bytes once, one snatch")
  func dualStackOverHTTP() async throws {
    let sink = CollectingSink()
    let (accounting, tracker, recorder) = await Self.tracker(sink)
    // "::" takes both families (bindv6only=0), as a dual-stack listener does.
    try await withHTTPFrontend(tracker: tracker, host: "::") { _, address in
      let port = try #require(address.port)
      let overIPv4 = try await TestHTTPConnection.connect(
        to: SocketAddress(ipAddress: "127.0.0.1", port: port))
      let overIPv6 = try await TestHTTPConnection.connect(
        to: SocketAddress(ipAddress: "::1", port: port))
      for step in Self.session {
        for connection in [overIPv4, overIPv6] {
          let response = try await connection.get(Self.httpTarget(step))
          #expect(response.status == 200)
          #expect(response.failureReason == nil)
        }
      }
    }
    #expect(await accounting.flush())
    let families = recorder.all.compactMap { $0.endpoint?.address.isIPv6 }
    #expect(families == Array(repeating: [false, true], count: Self.session.count).flatMap { $0 })
    Self.expectCountedOnce(sink.deltas)
    #expect(accounting.statistics().entries == 0)
  }

  @Test("two tiers, one passkey: the session over HTTP and over UDP → bytes once, one snatch")
  func twoTiersOverHTTPAndUDP() async throws {
    let sink = CollectingSink()
    let (accounting, tracker, recorder) = await Self.tracker(sink)
    try await withHTTPFrontend(tracker: tracker) { _, httpAddress in
      try await withUDPFrontend(tracker: tracker) { _, udpAddress in
        let http = try await TestHTTPConnection.connect(to: httpAddress)
        let udp = try await TestUDPClient.connect(to: udpAddress, bindHost: "127.0.0.1")
        let connectionID = try await udp.connectionID()
        for (number, step) in Self.session.enumerated() {
          let response = try await http.get(Self.httpTarget(step))
          #expect(response.status == 200 && response.failureReason == nil)
          // BEP 15 events: 0 none, 1 completed, 2 started, 3 stopped.
          let event: UInt32 =
            switch step.event {
            case .none: 0
            case .completed: 1
            case .started: 2
            case .stopped: 3
            }
          let answer = try await udp.exchange(
            UDPPackets.announce(
              connectionID: connectionID, transactionID: UInt32(number + 1),
              infoHash: Self.torrent, peerID: Self.peer, downloaded: step.downloaded,
              left: step.left, uploaded: step.uploaded, event: event, port: 6881,
              options: UDPPackets.urlData("/\(Self.passkey)/announce")))
          #expect(answer.readUInt32(at: 0) == 1, "an announce answer, not an error")
        }
      }
    }
    #expect(await accounting.flush())
    #expect(
      recorder.all.map(\.transport) == Array(repeating: [.http, .udp], count: 5).flatMap { $0 })
    Self.expectCountedOnce(sink.deltas)
  }
}
