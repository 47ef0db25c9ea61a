import Foundation
import PrivtrakService
import PrivtrakTestSupport
import Testing

/// The admin endpoint of a real in-process server over real sockets: probes
/// answer, and the Prometheus counters move exactly with the announces served
/// over HTTP and UDP.
@Suite struct AdminEndpointTests {
  static let passkey = "0123456789abcdef0123456789abcdef"

  @Test func probesAnswerAndMetricsMoveWithAnnounces() async throws {
    let directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("privtrak-admin-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var configuration = ServiceConfiguration.defaults
    configuration.httpListen = ListenAddress(host: "127.0.0.1", port: 0)
    configuration.udpListen = ListenAddress(host: "127.0.0.1", port: 0)
    configuration.adminListen = ListenAddress(host: "127.0.0.1", port: 0)
    configuration.sink = .file(path: directory + "/deltas.ptdl")
    configuration.snapshotPath = directory + "/snapshot.bin"
    configuration.accounting.flushInterval = .milliseconds(20)
    configuration.gcInterval = .milliseconds(50)
    configuration.logLevel = "warning"
    let server = PrivtrakServer(configuration: configuration)
    let running = Task { try await server.run() }

    let admin = try await poll("the admin endpoint is bound") {
      server.boundAddress(of: "admin")?.port
    }
    #expect(try await LoopbackClient.fetch(port: admin, "/healthz") == (200, "ok\n"))
    _ = try await poll("the server is ready") {
      try await LoopbackClient.fetch(port: admin, "/readyz") == (200, "ready\n") ? true : nil
    }
    let http = try #require(server.boundAddress(of: "http")?.port)
    let udp = try #require(server.boundAddress(of: "udp")?.port)
    let before = try await scrape(admin)

    // Three HTTP peers and two UDP peers each announce twice: a baseline,
    // then 1000 bytes up, so each yields exactly one delta.
    for peer in 1...3 {
      for uploaded in [0, 1000] {
        let (status, body) = try await LoopbackClient.fetch(
          port: http, Self.httpAnnounce(peer: peer, uploaded: uploaded))
        #expect(status == 200)
        #expect(body.contains("8:interval"), "\(body)")
      }
    }
    for peer in 4...5 {
      for uploaded in [0, 1000] {
        let answer = try await LoopbackClient.udpAnnounceOffPool(port: udp) {
          Self.udpAnnounce(connectionID: $0, peer: peer, uploaded: uploaded)
        }
        #expect(answer.prefix(4) == [0, 0, 0, 1], "an announce answer, not an error")
      }
    }
    // A passkey that is not 32 hexadecimal characters identifies nobody.
    let refused = try await LoopbackClient.fetch(
      port: http,
      "/\(String(repeating: "z", count: 32))/announce?" + Self.query(peer: 9, uploaded: 0))
    #expect(refused.body.contains("failure reason"))

    // Gauges are refreshed by background steps (publishing, GC census), so
    // wait for them to reach the expected values rather than sample once.
    let after = try await poll("every delta is published and the gauges are refreshed") {
      let metrics = try await scrape(admin)
      let published = metrics.value("privtrak_accounting_deltas_published_total")
      return published == before.value("privtrak_accounting_deltas_published_total") + 5
        && metrics.value("privtrak_peers", ["role": "leecher"]) == 5
        && metrics.value("privtrak_accounting_entries") == 5 ? metrics : nil
    }
    func moved(_ name: String, _ labels: [String: String]) -> Double {
      after.value(name, labels) - before.value(name, labels)
    }
    let ok = ["result": "ok"]
    #expect(
      moved(
        "privtrak_requests_total", ["protocol": "http", "request": "announce"].merging(ok) { $1 })
        == 6)
    #expect(
      moved(
        "privtrak_requests_total", ["protocol": "udp", "request": "announce"].merging(ok) { $1 })
        == 4)
    #expect(
      moved(
        "privtrak_requests_total", ["protocol": "udp", "request": "connect"].merging(ok) { $1 })
        == 4)
    #expect(
      moved(
        "privtrak_requests_total",
        ["protocol": "http", "request": "announce", "result": "forbidden"]) == 1)
    #expect(
      moved(
        "privtrak_request_duration_seconds_count", ["protocol": "http", "request": "announce"]) == 7
    )
    #expect(after.value("privtrak_swarms") == 1)
    #expect(after.has("privtrak_http_connections"))
    #expect(
      !(try await LoopbackClient.fetch(port: admin, "/metrics").body.contains(Self.passkey)),
      "metrics never carry a passkey")
    #expect(try await LoopbackClient.fetch(port: admin, "/nothing").status == 404)

    await server.triggerGracefulShutdown()
    try await running.value("running to end")
    await #expect(throws: LoopbackClient.Failure.self) {
      try await LoopbackClient.fetch(port: admin, "/healthz")
    }
  }

  private func scrape(_ port: Int) async throws -> PrometheusText {
    let (status, body) = try await LoopbackClient.fetch(port: port, "/metrics")
    guard status == 200 else { throw LoopbackClient.Failure(description: "/metrics: \(status)") }
    return PrometheusText(body)
  }

  static func query(peer: Int, uploaded: Int) -> String {
    "info_hash=\(String(repeating: "A", count: 20))&peer_id=\(peerID(peer))&port=\(6880 + peer)"
      + "&uploaded=\(uploaded)&downloaded=0&left=100&compact=1"
  }

  static func httpAnnounce(peer: Int, uploaded: Int) -> String {
    "/\(passkey)/announce?" + query(peer: peer, uploaded: uploaded)
  }

  static func peerID(_ peer: Int) -> String {
    let digits = String(peer)
    return "-PT0001-" + String(repeating: "0", count: 12 - digits.count) + digits
  }

  /// A BEP 15 announce carrying the passkey path as BEP 41 URL data.
  static func udpAnnounce(connectionID: UInt64, peer: Int, uploaded: Int) -> [UInt8] {
    var packet: [UInt8] = []
    packet.appendBigEndian(connectionID)
    packet.appendBigEndian(UInt32(1))
    packet.appendBigEndian(UInt32(peer))
    packet += Array(String(repeating: "A", count: 20).utf8)
    packet += Array(peerID(peer).utf8)
    packet.appendBigEndian(UInt64(0))  // downloaded
    packet.appendBigEndian(UInt64(100))  // left
    packet.appendBigEndian(UInt64(uploaded))
    packet.appendBigEndian(UInt32(0))  // event: none
    packet.appendBigEndian(UInt32(0))  // ip: the sender's
    packet.appendBigEndian(UInt32(7))  // key
    packet.appendBigEndian(Int32(-1))  // num_want: default
    packet.appendBigEndian(UInt16(6880 + peer))
    let path = Array("/\(passkey)/announce".utf8)
    packet += [2, UInt8(path.count)] + path + [0]
    return packet
  }
}
