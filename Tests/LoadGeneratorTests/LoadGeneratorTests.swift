import Accounting
import BitTorrent
import DeltaModel
import Frontends
import LoadGenerator
import Logging
import Synchronization
import Testing
import Tracker

/// A sink that counts what reaches it: the real sinks are tested elsewhere,
/// here only the number of deltas the generator caused matters.
final class CountingTestSink: DeltaSink {
  private let deltas = Atomic<Int>(0)

  var count: Int { deltas.load(ordering: .relaxed) }

  func publish(_ batch: DeltaBatch) async throws {
    deltas.add(batch.deltas.count, ordering: .relaxed)
  }

  func close() async throws {}
}

let quietLogger: Logger = {
  var logger = Logger(label: "privtrak.loadgenerator.tests")
  logger.logLevel = .critical
  return logger
}()

/// A real privtrak core (tracker + accounting middleware) behind real HTTP and UDP frontends on ephemeral ports.
struct InProcessPrivtrak {
  let tracker: Tracker
  let accounting: AccountingMiddleware?
  let sink: CountingTestSink
  let http: HTTPFrontend
  let udp: UDPFrontend
  let httpPort: Int
  let udpPort: Int

  static func start(accounting enabled: Bool) async throws -> InProcessPrivtrak {
    let sink = CountingTestSink()
    let accounting: AccountingMiddleware? =
      enabled ? await AccountingMiddleware(sink: sink, logger: quietLogger) : nil
    let tracker = Tracker(preHooks: accounting.map { [$0] } ?? [])
    let http = HTTPFrontend(
      configuration: HTTPFrontendConfiguration(host: "127.0.0.1", port: 0), tracker: tracker,
      logger: quietLogger)
    let udp = UDPFrontend(
      configuration: UDPFrontendConfiguration(host: "127.0.0.1", port: 0), tracker: tracker,
      logger: quietLogger)
    let httpAddress = try await http.start()
    let udpAddress = try await udp.start()
    return InProcessPrivtrak(
      tracker: tracker, accounting: accounting, sink: sink, http: http, udp: udp,
      httpPort: try #require(httpAddress.port), udpPort: try #require(udpAddress.port))
  }

  func port(_ transport: LoadConfiguration.Transport) -> Int {
    transport == .udp ? udpPort : httpPort
  }

  func stop() async throws {
    try await http.shutdown()
    try await udp.shutdown()
  }
}

@Suite("LoadGenerator against an in-process privtrak")
struct LoadGeneratorTests {
  /// 200 peers on 20 torrents, 3 announces each: started, then two periodic ones whose counters grew.
  func configuration(_ transport: LoadConfiguration.Transport, port: Int) -> LoadConfiguration {
    LoadConfiguration(
      host: "127.0.0.1", port: port, transport: transport, torrents: 20, peers: 200, passkeys: 10,
      stop: .requests(600), concurrency: 16, connections: 4, pipelineDepth: 2,
      timeout: .seconds(30))
  }

  @Test(arguments: LoadConfiguration.Transport.allCases)
  func everyAnnounceReachesTheTrackerAndItsAccounting(_ transport: LoadConfiguration.Transport)
    async throws
  {
    let privtrak = try await InProcessPrivtrak.start(accounting: true)
    let report = try await LoadGenerator.run(
      configuration(transport, port: privtrak.port(transport)))
    let accounting = try #require(privtrak.accounting)
    await accounting.flush()
    let census = privtrak.tracker.peerStore.census()
    let entries = accounting.statistics().entries
    try await privtrak.stop()

    #expect(report.errors == [:])
    #expect(report.succeeded == 600)
    #expect(report.requests == 600)
    #expect(report.events.started == 200)
    #expect(report.events.periodic == 400)
    #expect(report.latency.p50 > 0 && report.latency.p50 <= report.latency.max)
    // The tracker holds every peer on every torrent; accounting has one entry each.
    #expect(census.swarms == 20)
    #expect(census.seeders + census.leechers == 200)
    #expect(entries == 200)
    // First announces set baselines; both later ones grew counters, so each is a delta.
    #expect(privtrak.sink.count == 400)
    if transport == .udp {
      #expect(report.udpConnects == 4, "one connect per socket, ids reused")
    } else {
      #expect(report.httpConnections == 4, "keep-alive: connections reused")
    }
  }

  @Test(arguments: LoadConfiguration.Transport.allCases)
  func refusedAnnouncesAreCountedByFailureReason(_ transport: LoadConfiguration.Transport)
    async throws
  {
    let privtrak = try await InProcessPrivtrak.start(accounting: true)
    var load = configuration(transport, port: privtrak.port(transport))
    load.passkeys = 0
    load.stop = .requests(50)
    let report = try await LoadGenerator.run(load)
    let census = privtrak.tracker.peerStore.census()
    try await privtrak.stop()

    #expect(report.succeeded == 0)
    #expect(report.errorCount == 50)
    let kinds = Array(report.errors.keys)
    #expect(kinds.count == 1)
    #expect(kinds.allSatisfy { $0.hasPrefix("failure: ") }, "got \(kinds)")
    #expect(census.seeders + census.leechers == 0)
  }

  @Test func withoutPasskeysAnOpenTrackerAnswersEveryAnnounce() async throws {
    let privtrak = try await InProcessPrivtrak.start(accounting: false)
    var load = configuration(.http, port: privtrak.httpPort)
    load.passkeys = 0
    let report = try await LoadGenerator.run(load)
    let census = privtrak.tracker.peerStore.census()
    try await privtrak.stop()

    #expect(report.errors == [:])
    #expect(report.succeeded == 600)
    #expect(census.seeders + census.leechers == 200)
    #expect(report.json.contains("\"succeeded\":600"))
  }

  @Test func connectionPerAnnounceOpensOneConnectionForEachAnnounce() async throws {
    let privtrak = try await InProcessPrivtrak.start(accounting: true)
    var load = configuration(.http, port: privtrak.httpPort)
    load.pipelineDepth = 1
    load.connectionPerAnnounce = true
    let report = try await LoadGenerator.run(load)
    try await privtrak.stop()

    #expect(report.errors == [:])
    #expect(report.succeeded == 600)
    // Each announce had a connection of its own; after the last ones, the
    // connections may already have been opened again.
    #expect(report.httpConnections >= 600 && report.httpConnections <= 600 + load.connections)
  }

  @Test func theWhitelistIdentitiesArePureFunctionsOfTheIndex() {
    #expect(LoadPopulation.hex(LoadPopulation.infoHash(torrent: 258)).hasPrefix("00000102a0a1"))
    #expect(LoadPopulation.passkey(255) == "5eed00000000000000000000000000ff")
    #expect(LoadPopulation.peerID(peer: 42) == Array("-LG0001-000000000042".utf8))
  }

  @Test func countersGrowThroughACompleteSession() {
    var population = LoadPopulation(torrents: 1, peers: 2, passkeys: 1)
    var events: [AnnounceParameters.Event] = []
    var last = population.next(peer: 1)
    for _ in 0..<30 {
      let next = population.next(peer: 1)
      if next.event != .started {
        #expect(next.uploaded >= last.uploaded && next.downloaded >= last.downloaded)
      }
      events.append(next.event)
      population.commit(next)
      last = next
    }
    #expect(events.first == .started)
    #expect(events.filter { $0 == .completed }.count == 1)
    #expect(events.contains(.stopped))
    #expect(events.last != nil)
  }
}
