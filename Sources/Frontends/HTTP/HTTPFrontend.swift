import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Tracker

/// The HTTP/1.1 tracker frontend: `GET /announce`, `/scrape` and their
/// passkey forms, keep-alive and pipelining, with bounded URL, head size,
/// head time, idle time and connection count.
///
/// ```swift
/// let http = HTTPFrontend(configuration: .init(host: "::", port: 6969), tracker: tracker, logger: logger)
/// let address = try await http.start()
/// // …
/// try await http.shutdown()
/// ```
public final class HTTPFrontend: Sendable {
  /// The settings this frontend was created with.
  public let configuration: HTTPFrontendConfiguration
  private let tracker: Tracker
  private let logger: Logger
  private let connections: ConnectionRegistry
  private let metrics: FrontendMetrics
  private let serverChannel = Mutex<(any Channel)?>(nil)

  /// Creates a frontend that answers with `tracker`; nothing listens until
  /// ``start(group:)``. Request metrics go to `metricsFactory`.
  public init(
    configuration: HTTPFrontendConfiguration, tracker: Tracker,
    metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger
  ) {
    self.configuration = configuration
    self.metrics = FrontendMetrics(protocol: "http", factory: metricsFactory)
    self.tracker = tracker
    self.logger = logger
    self.connections = ConnectionRegistry(
      limit: max(1, configuration.maxConnections),
      openConnections: Gauge(label: "privtrak_http_connections", factory: metricsFactory))
  }

  /// Binds and starts accepting connections on `group`'s event loops.
  /// Returns the bound address (with the real port when the configured port is 0).
  @discardableResult
  public func start(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws
    -> SocketAddress
  {
    let configuration = configuration
    let tracker = tracker
    let logger = logger
    let connections = connections
    let metrics = metrics
    let parser = HTTPAnnounceParser(acceptClientSuppliedIP: configuration.acceptClientSuppliedIP)
    let resolver = ClientAddressResolver(trustedProxies: configuration.trustedProxies)
    let decoderLimits = Self.decoderLimits(configuration)

    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: configuration.listenBacklog)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      // No child options: NIO sets TCP_NODELAY on the listening socket and
      // Linux copies it to every accepted one, and 4 messages per read is
      // NIO's default. Options set per child cost a setsockopt and a chain of
      // futures on every connection (5 % of the CPU of a one-announce
      // connection, BENCHMARKS.md).
      .childChannelInitializer { channel in
        guard connections.admit(channel) else {
          logger.debug(
            "connection refused: limit reached", metadata: ["limit": "\(connections.limit)"])
          return channel.eventLoop.makeFailedFuture(ConnectionRegistry.LimitReached())
        }
        return channel.eventLoop.makeCompletedFuture {
          let pipeline = channel.pipeline.syncOperations
          try pipeline.addHandler(
            IdleStateHandler(readTimeout: configuration.idleTimeout.timeAmount))
          try pipeline.addHandler(
            HTTPHeadLimitHandler(
              // Room for the method and ` HTTP/1.1` around the target.
              maxRequestLineLength: configuration.maxURLLength + 32,
              maxHeadLength: configuration.maxHeaderBytes,
              headTimeout: configuration.headTimeout.timeAmount))
          try pipeline.addHandler(HTTPResponseEncoder())
          try pipeline.addHandler(
            ByteToMessageHandler(
              HTTPRequestDecoder(
                leftOverBytesStrategy: .dropBytes, limitConfiguration: decoderLimits)))
          try pipeline.addHandler(
            HTTPTrackerHandler(
              tracker: tracker, parser: parser, resolver: resolver,
              maxURLLength: configuration.maxURLLength,
              maxPipelinedRequests: configuration.maxPipelinedRequests, metrics: metrics,
              logger: logger))
        }
      }
    let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
    let alreadyStarted = serverChannel.withLock { current -> Bool in
      guard current == nil else { return true }
      current = channel
      return false
    }
    guard !alreadyStarted else {
      try? await channel.close()
      throw FrontendError.alreadyStarted
    }
    let address = channel.localAddress!
    logger.info("HTTP frontend listening", metadata: ["address": "\(address)"])
    return address
  }

  /// A backstop only: the head scanner in front of the decoder enforces the real limit first.
  private static func decoderLimits(_ configuration: HTTPFrontendConfiguration)
    -> NIOHTTPDecoderLimitConfiguration
  {
    var limits = NIOHTTPDecoderLimitConfiguration()
    limits.maxHeaderListSize = configuration.maxHeaderBytes + 64
    limits.maxHeaderFieldSize = configuration.maxHeaderBytes + 64
    limits.maxHeaderFieldCount = configuration.maxHeaderBytes / 4 + 1
    return limits
  }

  /// The bound address while running.
  public var localAddress: SocketAddress? {
    serverChannel.withLock { $0?.localAddress }
  }

  /// Open client connections now.
  public var connectionCount: Int { connections.count }

  /// The open client connections' channels (tests read their socket options).
  var openConnections: [any Channel] { connections.snapshot() }

  /// Stops accepting, lets each connection finish the requests it has in
  /// flight, closes it, and returns once every connection is closed.
  public func shutdown() async throws {
    let channel = serverChannel.withLock { current in
      defer { current = nil }
      return current
    }
    guard let channel else { return }
    try? await channel.close()
    let open = connections.snapshot()
    for connection in open {
      connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
    for connection in open {
      try? await connection.closeFuture.get()
    }
    logger.info("HTTP frontend stopped")
  }
}

/// Lifecycle misuse of a frontend.
public enum FrontendError: Error, Sendable, Equatable {
  /// ``HTTPFrontend/start(group:)`` or ``UDPFrontend/start(group:)`` was called twice.
  case alreadyStarted
}
