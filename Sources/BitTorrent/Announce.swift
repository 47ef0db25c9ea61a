/// The `event` of an announce. Raw values follow BEP 15's numbering.
public enum AnnounceEvent: UInt8, Sendable, CaseIterable, CustomStringConvertible {
  /// A regular, periodic announce.
  case none = 0
  /// The download just finished (a snatch).
  case completed = 1
  /// The client started this torrent.
  case started = 2
  /// The client stopped this torrent.
  case stopped = 3

  /// Parses the HTTP `event` parameter; an absent or empty value is `.none`.
  public init?(httpValue: some StringProtocol) {
    switch httpValue {
    case "", "empty": self = .none
    case "completed": self = .completed
    case "started": self = .started
    case "stopped": self = .stopped
    default: return nil
    }
  }

  public var description: String {
    switch self {
    case .none: "none"
    case .completed: "completed"
    case .started: "started"
    case .stopped: "stopped"
    }
  }
}

/// Which frontend a request arrived on.
public enum TransportProtocol: String, Sendable {
  /// HTTP/1.1 `GET /announce`.
  case http
  /// BEP 15 UDP tracker protocol.
  case udp
}

/// One validated announce, independent of the frontend it came from.
public struct AnnounceRequest: Sendable {
  /// The torrent.
  public var infoHash: InfoHash
  /// The announcing client's id.
  public var peerID: PeerID
  /// Where the client accepts connections (address from the socket unless a
  /// trusted proxy header or a permitted `ip` says otherwise).
  public var endpoint: PeerEndpoint
  /// Total bytes uploaded in this client session.
  public var uploaded: UInt64
  /// Total bytes downloaded in this client session.
  public var downloaded: UInt64
  /// Bytes still missing; 0 means the client seeds.
  public var left: UInt64
  /// The announce event.
  public var event: AnnounceEvent
  /// How many peers the client wants (already clamped by the frontend).
  public var numWant: Int
  /// Whether the client accepts compact peer lists (BEP 23).
  public var compact: Bool
  /// Whether peer ids may be omitted from a non-compact list.
  public var noPeerID: Bool
  /// The client's `key`, if any.
  public var key: UInt32?
  /// The credential found in the URL path (`/<passkey>/announce`,
  /// `/announce/<passkey>`, BEP 41 URL data over UDP); nil when absent.
  public var passkey: Substring?
  /// The frontend this request arrived on.
  public var transport: TransportProtocol

  /// Creates a request.
  public init(
    infoHash: InfoHash, peerID: PeerID, endpoint: PeerEndpoint,
    uploaded: UInt64, downloaded: UInt64, left: UInt64,
    event: AnnounceEvent = .none, numWant: Int = 50, compact: Bool = true, noPeerID: Bool = false,
    key: UInt32? = nil, passkey: Substring? = nil, transport: TransportProtocol = .http
  ) {
    self.infoHash = infoHash
    self.peerID = peerID
    self.endpoint = endpoint
    self.uploaded = uploaded
    self.downloaded = downloaded
    self.left = left
    self.event = event
    self.numWant = numWant
    self.compact = compact
    self.noPeerID = noPeerID
    self.key = key
    self.passkey = passkey
    self.transport = transport
  }

  /// True when the client has the whole torrent.
  public var isSeeder: Bool { left == 0 }
}

/// One peer handed back to a client.
public struct PeerListEntry: Sendable, Hashable {
  /// The peer's id (used only in non-compact HTTP responses).
  public var peerID: PeerID
  /// The peer's endpoint.
  public var endpoint: PeerEndpoint

  /// Creates an entry.
  public init(peerID: PeerID, endpoint: PeerEndpoint) {
    self.peerID = peerID
    self.endpoint = endpoint
  }
}

/// The tracker's answer to an announce.
public struct AnnounceResponse: Sendable {
  /// Seconds the client should wait before its next regular announce.
  public var interval: UInt32
  /// Seconds the client must wait at least.
  public var minInterval: UInt32
  /// Seeders in the swarm.
  public var complete: UInt32
  /// Leechers in the swarm.
  public var incomplete: UInt32
  /// Times the torrent was completed (snatches).
  public var downloaded: UInt32
  /// IPv4 peers.
  public var peers4: [PeerListEntry]
  /// IPv6 peers.
  public var peers6: [PeerListEntry]

  /// Creates a response.
  public init(
    interval: UInt32, minInterval: UInt32, complete: UInt32, incomplete: UInt32, downloaded: UInt32,
    peers4: [PeerListEntry] = [], peers6: [PeerListEntry] = []
  ) {
    self.interval = interval
    self.minInterval = minInterval
    self.complete = complete
    self.incomplete = incomplete
    self.downloaded = downloaded
    self.peers4 = peers4
    self.peers6 = peers6
  }
}

/// A scrape for one or more torrents (BEP 48).
public struct ScrapeRequest: Sendable {
  /// The torrents asked about, in request order.
  public var infoHashes: [InfoHash]
  /// The credential from the URL path, if any.
  public var passkey: Substring?
  /// The client's address.
  public var clientAddress: IPAddress
  /// The frontend this request arrived on.
  public var transport: TransportProtocol

  /// Creates a scrape request.
  public init(
    infoHashes: [InfoHash], passkey: Substring? = nil, clientAddress: IPAddress,
    transport: TransportProtocol = .http
  ) {
    self.infoHashes = infoHashes
    self.passkey = passkey
    self.clientAddress = clientAddress
    self.transport = transport
  }
}

/// Swarm figures for one torrent.
public struct ScrapeStats: Sendable, Hashable {
  /// Seeders.
  public var complete: UInt32
  /// Leechers.
  public var incomplete: UInt32
  /// Snatches.
  public var downloaded: UInt32

  /// Creates figures.
  public init(complete: UInt32, incomplete: UInt32, downloaded: UInt32) {
    self.complete = complete
    self.incomplete = incomplete
    self.downloaded = downloaded
  }
}

/// The tracker's answer to a scrape: figures per requested torrent, in request order.
public struct ScrapeResponse: Sendable {
  /// One entry per requested info hash (unknown torrents report zeros).
  public var files: [(infoHash: InfoHash, stats: ScrapeStats)]

  /// Creates a response.
  public init(files: [(infoHash: InfoHash, stats: ScrapeStats)]) {
    self.files = files
  }
}
