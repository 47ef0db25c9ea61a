import Accounting
import DeltaModel
import FileSink
import Frontends
import KafkaSink
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import Registry
import RegistryKafka
import ServiceLifecycle
import Synchronization
import Tracker

#if canImport(Glibc)
  import Glibc
#endif

/// Wires configuration into a running tracker: the tracker core, its hooks,
/// the frontends and the background services, under one service group that
/// shuts down gracefully on SIGTERM/SIGINT.
public final class PrivtrakServer: Sendable {
  /// The validated configuration.
  public let configuration: ServiceConfiguration
  /// Where every metric of this server is registered; `/metrics` emits it.
  public let metricsRegistry: PrometheusCollectorRegistry
  /// What `/readyz` reports.
  public let readiness = Readiness()
  private let metricsFactory: any MetricsFactory
  private let logger: Logger
  private let boundAddresses = Mutex<[String: SocketAddress]>([:])
  private let kafkaSink = Mutex<KafkaSink?>(nil)
  private let serviceGroup = Mutex<ServiceGroup?>(nil)

  /// Latency buckets for every duration histogram: fine below a millisecond,
  /// where announces should be, up to the back-pressure wait range.
  static let durationBuckets: [Duration] = [
    .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
    .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
    .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
    .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    .seconds(30),
  ]

  static func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Creates a server; nothing runs until ``run()``. Its metrics go to
  /// `metricsRegistry` (a fresh one by default, so that several servers in
  /// one process never share counters).
  public init(
    configuration: ServiceConfiguration,
    metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
    logger: Logger? = nil
  ) {
    self.configuration = configuration
    self.metricsRegistry = metricsRegistry
    var factory = PrometheusMetricsFactory(registry: metricsRegistry)
    factory.defaultDurationHistogramBuckets = Self.durationBuckets
    self.metricsFactory = factory
    var defaultLogger = Logger(label: "privtrak")
    defaultLogger.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
    self.logger = logger ?? defaultLogger
  }

  /// The address a frontend (`http`, `udp`) is bound to, once it is.
  public func boundAddress(of frontend: String) -> SocketAddress? {
    boundAddresses.withLock { $0[frontend] }
  }

  /// Runs until SIGTERM/SIGINT, then stops accepting, drains and returns.
  public func run() async throws {
    let threads = EventLoopThreads.resolve(configured: configuration.eventLoopThreads)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    defer {
      // Every channel is closed by now; the threads just exit.
      group.shutdownGracefully { _ in }
    }
    var admin: AdminServer?
    if let listen = configuration.adminListen {
      // Started first and stopped last: liveness answers during a slow sink
      // start, and the drain can be watched.
      let server = AdminServer(
        host: listen.host, port: listen.port, registry: metricsRegistry, readiness: readiness,
        logger: logger)
      let address = try await server.start(group: group)
      boundAddresses.withLock { $0["admin"] = address }
      admin = server
    }
    do {
      try await runServices(group: group, threads: threads)
    } catch {
      await admin?.shutdown()
      throw error
    }
    await admin?.shutdown()
  }

  private func runServices(group: MultiThreadedEventLoopGroup, threads: Int) async throws {
    var expectedFrontends: [String] = []
    if configuration.httpListen != nil { expectedFrontends.append("http") }
    if configuration.udpListen != nil { expectedFrontends.append("udp") }
    readiness.expect(frontends: expectedFrontends)
    var preHooks: [any PreHook] = []
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if let source = configuration.registry.source {
      // Loaded in full before any frontend binds: never ready (nor
      // answering) with a partial registry.
      let (registry, service) = try await startRegistry(source)
      preHooks.append(
        RegistryApproval(
          registry: registry, modes: configuration.registry.modes,
          announceInterval: configuration.tracker.announceInterval,
          pendingRetryMinutes: configuration.registry.pendingRetryMinutes,
          metricsFactory: metricsFactory))
      services.append(.init(service: service))
    }
    if configuration.trackerShard.count > 1 {
      // After the approval (which resolves a hybrid's v2 hash to the
      // torrent's key), before the accounting: a misrouted announce
      // stores nothing and emits no delta.
      preHooks.append(
        ShardOwnership(
          shard: configuration.trackerShard,
          announceInterval: configuration.tracker.announceInterval,
          metricsFactory: metricsFactory))
    }
    if case .file? = configuration.registry.source {
      // The file watcher reloads on SIGHUP.
    } else {
      services.append(.init(service: HangupLogger(logger: logger)))
    }
    if configuration.accountingEnabled {
      let sink = try await makeSink()
      let middleware = await AccountingMiddleware(
        configuration: configuration.accounting, sink: sink,
        snapshotStore: configuration.snapshotPath.map { FileSnapshotStore(path: $0) },
        journal: configuration.snapshotPath.flatMap { path in
          configuration.commitJournal
            ? CommitJournal(prefix: path + ".journal", logger: logger) : nil
        },
        metricsFactory: metricsFactory, logger: logger)
      preHooks.append(middleware)
      services.append(.init(service: AccountingService(middleware: middleware)))
    }
    let sink = kafkaSink.withLock { $0 }
    readiness.sinkStarted(
      check: sink.map { sink in
        { @Sendable in sink.isReady ? nil : "Kafka sink \(sink.state)" }
      })
    let tracker = Tracker(configuration: configuration.tracker, preHooks: preHooks)
    services.append(
      .init(
        service: PeerGarbageCollector(
          tracker: tracker, interval: configuration.gcInterval,
          metrics: TrackerMetrics(factory: metricsFactory), logger: logger)))
    if let listen = configuration.httpListen {
      let http = HTTPFrontend(
        configuration: HTTPFrontendConfiguration(
          host: listen.host, port: listen.port, idleTimeout: configuration.httpIdleTimeout,
          maxConnections: configuration.httpMaxConnections,
          trustedProxies: configuration.trustedProxies),
        tracker: tracker, metricsFactory: metricsFactory, logger: logger)
      services.append(.init(service: frontendService("http", http, group: group)))
    }
    if let listen = configuration.udpListen {
      let udp = UDPFrontend(
        configuration: UDPFrontendConfiguration(
          host: listen.host, port: listen.port,
          connectionIDSecret: configuration.udpConnectionIDSecret),
        tracker: tracker, metricsFactory: metricsFactory, logger: logger)
      services.append(.init(service: frontendService("udp", udp, group: group)))
    }
    // Frontends are last so that they are shut down first: no announce
    // is accepted once accounting starts draining.
    let serviceGroup = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    logger.notice(
      "privtrak starting",
      metadata: [
        "sink": "\(configuration.sink)", "accounting": "\(configuration.accountingEnabled)",
        "event_loop_threads": "\(threads)",
      ])
    self.serviceGroup.withLock { $0 = serviceGroup }
    try await serviceGroup.run()
    logger.notice("privtrak stopped")
  }

  /// Starts the same graceful shutdown as SIGTERM: stop accepting, drain,
  /// snapshot; ``run()`` then returns. For embedding and tests.
  public func triggerGracefulShutdown() async {
    await serviceGroup.withLock { $0 }?.triggerGracefulShutdown()
  }

  private func startRegistry(_ source: RegistryLocation) async throws -> (Registry, any Service) {
    let settings = configuration.registry
    let registry = Registry(metricsFactory: metricsFactory)
    switch source {
    case .file(let path):
      let loaded = RegistryFileWatcher.fingerprint(path)
      registry.replaceAll(with: try RegistryFile.load(path: path))
      let counts = registry.counts
      logger.notice(
        "registry file loaded",
        metadata: [
          "path": "\(path)", "users": "\(counts.users)", "torrents": "\(counts.torrents)",
          "modes": "\(settings.modes.users.rawValue), \(settings.modes.torrents.rawValue)",
        ])
      return (
        registry,
        RegistryFileWatcher(
          path: path, registry: registry, loaded: loaded, pollInterval: settings.filePollInterval,
          logger: logger,
          metricsFactory: metricsFactory)
      )
    case .kafka(let bootstrap):
      logger.notice(
        "reading the registry topics", metadata: ["bootstrap": "\(bootstrap)"])
      let follower = try await KafkaRegistryFollower.start(
        configuration: KafkaRegistryConfiguration(
          bootstrap: bootstrap, topics: settings.topics, createTopics: settings.createTopics,
          startTimeout: settings.startTimeout, properties: configuration.kafka.properties),
        registry: registry, logger: logger, metricsFactory: metricsFactory)
      return (registry, RegistryFollowerService(stop: { await follower.stop() }))
    }
  }

  private func makeSink() async throws -> any DeltaSink {
    switch configuration.sink {
    case .file(let path):
      return try FileSink(
        configuration: FileSinkConfiguration(path: path, fsyncPolicy: configuration.fileFsync),
        logger: logger)
    case .null:
      logger.warning("sink.url is null: deltas are discarded (benchmarks only)")
      return DiscardingSink()
    case .kafka(let bootstrap, let topic):
      let settings = configuration.kafka
      let transactionalID =
        settings.transactionalID.isEmpty ? "privtrak-\(Self.hostName())" : settings.transactionalID
      var kafka = KafkaSinkConfiguration(
        bootstrap: bootstrap, topic: topic, transactionalID: transactionalID)
      kafka.deliveryMode = settings.deliveryMode
      kafka.compression = settings.compression
      kafka.framing = settings.framing
      kafka.deltaHeaders = settings.deltaHeaders
      kafka.lingerMilliseconds = settings.lingerMilliseconds
      kafka.maxInFlightDeltas = settings.maxInFlightDeltas
      kafka.maxInFlightBytes = settings.maxInFlightBytes
      kafka.allowTopicAutoCreation = settings.allowTopicAutoCreation
      kafka.clientID = settings.clientID
      kafka.properties = settings.properties
      logger.notice(
        "connecting to Kafka",
        metadata: [
          "bootstrap": "\(bootstrap)", "topic": "\(topic)",
          "transactional_id": "\(transactionalID)",
        ])
      let sink = try await KafkaSink.start(
        configuration: kafka, logger: logger, metricsFactory: metricsFactory)
      kafkaSink.withLock { $0 = sink }
      return sink
    }
  }

  private func frontendService(
    _ name: String, _ frontend: any TrackerFrontend, group: any EventLoopGroup
  ) -> FrontendService {
    FrontendService(
      name: name, frontend: frontend, group: group, logger: logger,
      onBound: { [self] address in
        boundAddresses.withLock { $0[name] = address }
        readiness.frontendListening(name)
      },
      onDraining: { [readiness] in readiness.startDraining() })
  }
}

extension HTTPFrontend: TrackerFrontend {}
extension UDPFrontend: TrackerFrontend {}
