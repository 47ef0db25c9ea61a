import BitTorrent

/// What happened to the (user, torrent, peer) entry a delta belongs to.
public enum DeltaEvent: UInt8, Sendable, CaseIterable, CustomStringConvertible {
  /// A regular announce.
  case none = 0
  /// The client started the torrent.
  case started = 1
  /// The client finished downloading (a snatch).
  case completed = 2
  /// The client stopped the torrent; the entry is closed.
  case stopped = 3
  /// The entry was silent for the peer lifetime and was dropped by GC; no bytes.
  case expired = 4

  /// The accounting event for an announce event.
  public init(_ event: AnnounceEvent) {
    switch event {
    case .none: self = .none
    case .started: self = .started
    case .completed: self = .completed
    case .stopped: self = .stopped
    }
  }

  public var description: String {
    switch self {
    case .none: "none"
    case .started: "started"
    case .completed: "completed"
    case .stopped: "stopped"
    case .expired: "expired"
    }
  }
}

/// The ordering id of a delta: unique across every tracker process, so any
/// consumer can deduplicate on it.
public struct DeltaOrigin: Sendable, Hashable, Comparable {
  /// Identifies one tracker process (random per start, unless configured).
  public var instance: UInt64
  /// Increases by one per delta within an instance, starting at 1.
  public var sequence: UInt64

  /// Creates an ordering id.
  public init(instance: UInt64, sequence: UInt64) {
    self.instance = instance
    self.sequence = sequence
  }

  public static func < (lhs: DeltaOrigin, rhs: DeltaOrigin) -> Bool {
    (lhs.instance, lhs.sequence) < (rhs.instance, rhs.sequence)
  }
}

/// One accounting record: the bytes a user moved on a torrent between two
/// announces of one client.
public struct Delta: Sendable, Hashable {
  /// The user.
  public var userID: UserID
  /// The torrent.
  public var infoHash: InfoHash
  /// Bytes uploaded since the previous announce of this entry.
  public var uploaded: Int64
  /// Bytes downloaded since the previous announce of this entry.
  public var downloaded: Int64
  /// What happened.
  public var event: DeltaEvent
  /// When the tracker received the announce (or GC expired the entry), ms since the Unix epoch.
  public var reportedAtMilliseconds: Int64
  /// Whether the client was seeding (`left == 0`) at this announce.
  public var seeding: Bool
  /// Seconds since this entry's previous announce (0 for the first).
  public var intervalSeconds: UInt32
  /// The client's counters went backwards (a new client session); the
  /// deltas are the reported totals.
  public var reset: Bool
  /// Unique ordering id.
  public var origin: DeltaOrigin
  /// The client's address, when configured to record it.
  public var clientIP: IPAddress?
  /// The client's peer id, when configured to record it.
  public var peerID: PeerID?

  /// Creates a delta.
  public init(
    userID: UserID, infoHash: InfoHash, uploaded: Int64, downloaded: Int64, event: DeltaEvent,
    reportedAtMilliseconds: Int64, seeding: Bool, intervalSeconds: UInt32, reset: Bool,
    origin: DeltaOrigin, clientIP: IPAddress? = nil, peerID: PeerID? = nil
  ) {
    self.userID = userID
    self.infoHash = infoHash
    self.uploaded = uploaded
    self.downloaded = downloaded
    self.event = event
    self.reportedAtMilliseconds = reportedAtMilliseconds
    self.seeding = seeding
    self.intervalSeconds = intervalSeconds
    self.reset = reset
    self.origin = origin
    self.clientIP = clientIP
    self.peerID = peerID
  }

  /// An upper bound of this delta's encoded size, for the batcher's byte bound.
  public var estimatedSize: Int {
    96 + (clientIP == nil ? 0 : 18) + (peerID == nil ? 0 : 22)
  }
}

/// A sealed, ordered group of deltas published atomically.
public struct DeltaBatch: Sendable, Hashable {
  /// The deltas, in the order they were produced.
  public var deltas: [Delta]

  /// Creates a batch.
  public init(deltas: [Delta]) {
    self.deltas = deltas
  }

  /// Sum of the deltas' estimated sizes.
  public var estimatedSize: Int { deltas.reduce(0) { $0 + $1.estimatedSize } }
}

/// Where sealed batches go (Kafka, a file, a test sink).
///
/// Contract: `publish` is atomic. When it returns, the whole batch is durable;
/// when it throws, none of it may be considered delivered and the caller keeps
/// the batch and retries it (batches are retried in order). An implementation
/// may suspend inside `publish` to apply back-pressure; it must never block a thread.
public protocol DeltaSink: Sendable {
  /// Publishes one batch atomically.
  func publish(_ batch: DeltaBatch) async throws
  /// Flushes and releases resources; called once at shutdown after the last publish.
  func close() async throws
}
