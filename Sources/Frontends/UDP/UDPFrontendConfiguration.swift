/// Settings of the UDP (BEP 15) tracker frontend.
public struct UDPFrontendConfiguration: Sendable {
  /// Address to listen on (`0.0.0.0`, `::`, `127.0.0.1`, …).
  public var host: String
  /// Port to listen on; 0 picks a free port (see ``UDPFrontend/start(group:)``).
  public var port: Int
  /// Key of the connection-id MAC. Nil: 32 random bytes per process (ids
  /// then die with a restart, which BEP 15 clients handle by reconnecting).
  /// Set it when several processes share one address.
  public var connectionIDSecret: [UInt8]?
  /// Most announces and scrapes of one socket inside the tracker at once;
  /// packets beyond it are dropped (the client retries, as BEP 15 expects).
  public var maxInFlightRequests: Int
  /// Whether the announce's IPv4 `IP address` field may replace the sender's address.
  public var acceptClientSuppliedIP: Bool
  /// Sockets bound to the port with `SO_REUSEPORT`, each on its own event
  /// loop, so the kernel spreads packets over cores. 1 disables `SO_REUSEPORT`.
  public var socketCount: Int
  /// `SO_RCVBUF` in bytes; nil keeps the system default.
  public var receiveBufferSize: Int?

  /// Creates a configuration.
  public init(
    host: String = "0.0.0.0", port: Int = 6969, connectionIDSecret: [UInt8]? = nil,
    maxInFlightRequests: Int = 4096, acceptClientSuppliedIP: Bool = false, socketCount: Int = 1,
    receiveBufferSize: Int? = nil
  ) {
    self.host = host
    self.port = port
    self.connectionIDSecret = connectionIDSecret
    self.maxInFlightRequests = maxInFlightRequests
    self.acceptClientSuppliedIP = acceptClientSuppliedIP
    self.socketCount = socketCount
    self.receiveBufferSize = receiveBufferSize
  }
}
