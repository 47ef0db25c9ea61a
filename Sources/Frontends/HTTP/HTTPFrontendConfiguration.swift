/// Settings of the HTTP tracker frontend.
public struct HTTPFrontendConfiguration: Sendable {
  /// Address to listen on (`0.0.0.0`, `::`, `127.0.0.1`, …).
  public var host: String
  /// Port to listen on; 0 picks a free port (see ``HTTPFrontend/start(group:)``).
  public var port: Int
  /// Longest request target (path and query) accepted; longer gets 414 and the connection closes.
  public var maxURLLength: Int
  /// Most bytes in a request head (request line plus headers); more gets 431 and the connection closes.
  public var maxHeaderBytes: Int
  /// A connection that sends nothing for this long while no response is pending is closed.
  public var idleTimeout: Duration
  /// A request head must arrive completely within this long (defeats drip-feeding).
  public var headTimeout: Duration
  /// Most open connections; beyond it new connections are closed at once.
  public var maxConnections: Int
  /// Most requests of one connection in flight at once (HTTP pipelining);
  /// beyond it the connection is not read until responses go out.
  public var maxPipelinedRequests: Int
  /// Reverse proxies whose `X-Forwarded-For` / `X-Real-IP` headers are
  /// believed (see ``ClientAddressResolver`` for how they are read). Empty:
  /// the socket address is always the client address.
  public var trustedProxies: [IPNetwork]
  /// Whether the `ip` / `ipv4` / `ipv6` announce parameters may replace the client address.
  public var acceptClientSuppliedIP: Bool
  /// Listen backlog of the server socket.
  public var listenBacklog: Int32

  /// Creates a configuration; the defaults suit a public-facing tracker.
  public init(
    host: String = "0.0.0.0", port: Int = 6969, maxURLLength: Int = 4096,
    maxHeaderBytes: Int = 8192,
    idleTimeout: Duration = .seconds(30), headTimeout: Duration = .seconds(10),
    maxConnections: Int = 10_000,
    maxPipelinedRequests: Int = 16, trustedProxies: [IPNetwork] = [],
    acceptClientSuppliedIP: Bool = false,
    listenBacklog: Int32 = 1024
  ) {
    self.host = host
    self.port = port
    self.maxURLLength = maxURLLength
    self.maxHeaderBytes = maxHeaderBytes
    self.idleTimeout = idleTimeout
    self.headTimeout = headTimeout
    self.maxConnections = maxConnections
    self.maxPipelinedRequests = maxPipelinedRequests
    self.trustedProxies = trustedProxies
    self.acceptClientSuppliedIP = acceptClientSuppliedIP
    self.listenBacklog = listenBacklog
  }
}
