/// What a load run sends, where, and for how long.
public struct LoadConfiguration: Sendable, Equatable {
  /// The tracker protocol to drive.
  public enum Transport: String, Sendable, Equatable, CaseIterable {
    /// BEP 15 over UDP (connect, then announces reusing the connection id).
    case udp
    /// HTTP/1.1 `GET …/announce` over keep-alive connections.
    case http
  }

  /// When the run stops issuing requests.
  public enum Stop: Sendable, Equatable {
    /// After this many announces have completed (succeeded or failed).
    case requests(Int)
    /// After this long (plus whatever is in flight then).
    case duration(Duration)
  }

  /// Tracker host (name or address literal).
  public var host: String
  /// Tracker port.
  public var port: Int
  /// The protocol.
  public var transport: Transport
  /// Distinct torrents announced (info hashes derived from the index, see ``LoadPopulation``).
  public var torrents: Int
  /// Distinct simulated peers; each belongs to one torrent and one passkey.
  public var peers: Int
  /// Distinct passkeys (users); 0 announces without one, on `/announce`.
  public var passkeys: Int
  /// When to stop.
  public var stop: Stop
  /// Announces issued and not yet answered, at most.
  public var concurrency: Int
  /// Announces per second to issue at most; nil issues as fast as answers come back.
  public var rate: Int?
  /// UDP sockets (clients) or HTTP connections the load is spread over.
  public var connections: Int
  /// HTTP only: requests written on a connection before the first answer comes back.
  public var pipelineDepth: Int
  /// An announce unanswered this long counts as a timeout.
  public var timeout: Duration
  /// Load sent before measuring starts (peers pass their `started` announce, caches warm up).
  public var warmup: Duration
  /// `numwant` sent with every announce.
  public var numWant: Int
  /// How long a UDP connection id is reused before connecting again (BEP 15: one minute).
  public var connectionIDLifetime: Duration
  /// HTTP only: one TCP connection per announce (`Connection: close`), as
  /// real clients announce, instead of keep-alive.
  public var connectionPerAnnounce: Bool

  /// Creates a configuration; the defaults are a short closed-loop run.
  public init(
    host: String = "127.0.0.1", port: Int = 6969, transport: Transport = .udp,
    torrents: Int = 1000, peers: Int = 10_000, passkeys: Int = 100,
    stop: Stop = .duration(.seconds(10)), concurrency: Int = 64, rate: Int? = nil,
    connections: Int = 16, pipelineDepth: Int = 1, timeout: Duration = .seconds(2),
    warmup: Duration = .zero, numWant: Int = 50, connectionIDLifetime: Duration = .seconds(60),
    connectionPerAnnounce: Bool = false
  ) {
    self.host = host
    self.port = port
    self.transport = transport
    self.torrents = torrents
    self.peers = peers
    self.passkeys = passkeys
    self.stop = stop
    self.concurrency = concurrency
    self.rate = rate
    self.connections = connections
    self.pipelineDepth = pipelineDepth
    self.timeout = timeout
    self.warmup = warmup
    self.numWant = numWant
    self.connectionIDLifetime = connectionIDLifetime
    self.connectionPerAnnounce = connectionPerAnnounce
  }

  /// The first inconsistency, described for a command line, or nil.
  public var problem: String? {
    if torrents < 1 { return "torrents must be at least 1" }
    if peers < torrents { return "peers must be at least the number of torrents" }
    if passkeys < 0 { return "passkeys must not be negative" }
    if concurrency < 1 { return "concurrency must be at least 1" }
    if peers < concurrency { return "peers must be at least the concurrency" }
    if connections < 1 { return "connections must be at least 1" }
    if pipelineDepth < 1 { return "pipeline depth must be at least 1" }
    if connectionPerAnnounce, pipelineDepth > 1 {
      return "one connection per announce cannot pipeline"
    }
    if let rate, rate < 1 { return "rate must be at least 1" }
    if case .requests(let count) = stop, count < 1 { return "requests must be at least 1" }
    if case .duration(let length) = stop, length <= .zero { return "duration must be positive" }
    if !(1...65535).contains(port) { return "port must be 1...65535" }
    return nil
  }
}
