import PrivtrakService
import PrivtrakTestSupport
import Testing

/// `sink.url: "null:"` (benchmarks): a real server with accounting on
/// answers announces over HTTP and UDP, and its accounting keeps publishing
/// (each batch is dropped at once, so nothing backs up).
@Suite struct NullSinkTests {
  @Test func serverWithTheNullSinkAnswersAnnouncesAndPublishes() async throws {
    var configuration = ServiceConfiguration.defaults
    configuration.httpListen = ListenAddress(host: "127.0.0.1", port: 0)
    configuration.udpListen = ListenAddress(host: "127.0.0.1", port: 0)
    configuration.adminListen = ListenAddress(host: "127.0.0.1", port: 0)
    configuration.sink = try #require(ServiceConfiguration.SinkURL(parsing: "null:"))
    configuration.snapshotPath = nil
    configuration.accounting.flushInterval = .milliseconds(20)
    configuration.logLevel = "warning"
    let server = PrivtrakServer(configuration: configuration)
    let running = Task { try await server.run() }

    let admin = try await poll("the admin endpoint is bound") {
      server.boundAddress(of: "admin")?.port
    }
    _ = try await poll("the server is ready") {
      try await LoopbackClient.fetch(port: admin, "/readyz") == (200, "ready\n")
        ? true : nil
    }
    let http = try #require(server.boundAddress(of: "http")?.port)
    let udp = try #require(server.boundAddress(of: "udp")?.port)
    let published = "privtrak_accounting_deltas_published_total"
    let before = PrometheusText(
      try await LoopbackClient.fetch(port: admin, "/metrics").body)

    // Two HTTP peers and two UDP peers: a baseline, then 1000 bytes up, so
    // each yields exactly one delta.
    for peer in 1...2 {
      for uploaded in [0, 1000] {
        let (status, body) = try await LoopbackClient.fetch(
          port: http, AdminEndpointTests.httpAnnounce(peer: peer, uploaded: uploaded))
        #expect(status == 200)
        #expect(body.contains("8:interval"), "\(body)")
      }
    }
    for peer in 3...4 {
      for uploaded in [0, 1000] {
        let answer = try await LoopbackClient.udpAnnounceOffPool(port: udp) {
          AdminEndpointTests.udpAnnounce(connectionID: $0, peer: peer, uploaded: uploaded)
        }
        #expect(answer.prefix(4) == [0, 0, 0, 1], "an announce answer, not an error")
      }
    }
    _ = try await poll("the four deltas are published to the null sink") {
      let metrics = PrometheusText(
        try await LoopbackClient.fetch(port: admin, "/metrics").body)
      return metrics.value(published) == before.value(published) + 4 ? true : nil
    }

    await server.triggerGracefulShutdown()
    try await running.value("running to end")
  }
}
