import Logging
import Metrics
import NIOCore
import NIOPosix
import Synchronization
import Tracker

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The UDP tracker frontend (BEP 15 with BEP 41 URL data, IPv4 and IPv6).
///
/// ```swift
/// let udp = UDPFrontend(configuration: .init(host: "::", port: 6969), tracker: tracker, logger: logger)
/// let address = try await udp.start()
/// // …
/// try await udp.shutdown()
/// ```
public final class UDPFrontend: Sendable {
  /// The settings this frontend was created with.
  public let configuration: UDPFrontendConfiguration
  /// The connection-id generator (its clock is injectable for tests).
  public let connectionIDs: UDPConnectionIDs
  private let tracker: Tracker
  private let metrics: FrontendMetrics
  private let logger: Logger
  private let channels = Mutex<[any Channel]>([])

  /// Creates a frontend answering with `tracker`. Connection ids read time
  /// from `clock`, by default the tracker's own clock. Request metrics go to
  /// `metricsFactory`.
  public init(
    configuration: UDPFrontendConfiguration, tracker: Tracker, clock: (any TrackerClock)? = nil,
    metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger
  ) {
    self.configuration = configuration
    self.metrics = FrontendMetrics(protocol: "udp", factory: metricsFactory)
    self.tracker = tracker
    self.logger = logger
    self.connectionIDs = UDPConnectionIDs(
      secret: configuration.connectionIDSecret ?? UDPConnectionIDs.randomSecret(),
      clock: clock ?? tracker.clock)
  }

  /// Binds ``UDPFrontendConfiguration/socketCount`` sockets and starts
  /// answering. Returns the bound address (with the real port when the
  /// configured port is 0).
  @discardableResult
  public func start(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws
    -> SocketAddress
  {
    guard channels.withLock({ $0.isEmpty }) else { throw FrontendError.alreadyStarted }
    let socketCount = max(1, configuration.socketCount)
    var bound: [any Channel] = []
    do {
      var port = configuration.port
      for _ in 0..<socketCount {
        let channel = try await bootstrap(group: group, reusePort: socketCount > 1)
          .bind(host: configuration.host, port: port).get()
        bound.append(channel)
        // Later sockets join the port the first one got.
        port = channel.localAddress?.port ?? port
      }
    } catch {
      for channel in bound { try? await channel.close() }
      throw error
    }
    let started = channels.withLock { current -> Bool in
      guard current.isEmpty else { return false }
      current = bound
      return true
    }
    guard started else {
      for channel in bound { try? await channel.close() }
      throw FrontendError.alreadyStarted
    }
    let address = bound[0].localAddress!
    logger.info(
      "UDP frontend listening", metadata: ["address": "\(address)", "sockets": "\(socketCount)"])
    return address
  }

  private func bootstrap(group: any EventLoopGroup, reusePort: Bool) -> DatagramBootstrap {
    let tracker = tracker
    let connectionIDs = connectionIDs
    let configuration = configuration
    let logger = logger
    let metrics = metrics
    // No SO_REUSEADDR: on UDP it lets another socket bind the same port
    // (a second tracker would silently take part of the traffic, and
    // port-0 binds may even be handed a port in use). Several sockets of
    // one frontend share a port through SO_REUSEPORT instead.
    var bootstrap = DatagramBootstrap(group: group)
      // recvmmsg: up to `vectorReadCount` datagrams of at most
      // `maxDatagramSize` bytes per system call; answers of one burst leave
      // in one sendmmsg (flushed at read completion).
      .channelOption(.datagramVectorReadMessageCount, value: Self.vectorReadCount)
      .channelOption(
        .recvAllocator,
        value: FixedSizeRecvByteBufferAllocator(
          capacity: Self.vectorReadCount * Self.maxDatagramSize)
      )
      .channelOption(.maxMessagesPerRead, value: 4)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(
            UDPTrackerHandler(
              tracker: tracker, connectionIDs: connectionIDs,
              maxInFlightRequests: max(1, configuration.maxInFlightRequests),
              acceptClientSuppliedIP: configuration.acceptClientSuppliedIP, metrics: metrics,
              logger: logger))
        }
      }
    if reusePort {
      bootstrap = bootstrap.channelOption(
        ChannelOptions.Types.SocketOption(
          level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)),
        value: 1)
    }
    if let size = configuration.receiveBufferSize {
      bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(size))
    }
    return bootstrap
  }

  /// Datagrams read per system call.
  static let vectorReadCount = 32
  /// Longest datagram read whole: a BEP 15 scrape of 74 hashes plus slack;
  /// longer ones arrive truncated and are rejected as malformed.
  static let maxDatagramSize = 2048

  /// The bound address while running.
  public var localAddress: SocketAddress? {
    channels.withLock { $0.first?.localAddress }
  }

  /// Closes the sockets. Answers still in the tracker are dropped (UDP
  /// clients retry).
  public func shutdown() async throws {
    let open = channels.withLock { current in
      defer { current = [] }
      return current
    }
    for channel in open {
      try? await channel.close()
    }
    if !open.isEmpty { logger.info("UDP frontend stopped") }
  }
}
