import BitTorrent

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
  /// The credit factors in force for this announce (``CreditFactors/unit``
  /// without a registry).
  public var factors: CreditFactors

  /// Creates a delta.
  public init(
    userID: UserID, infoHash: InfoHash, uploaded: Int64, downloaded: Int64, event: DeltaEvent,
    reportedAtMilliseconds: Int64, seeding: Bool, intervalSeconds: UInt32, reset: Bool,
    origin: DeltaOrigin, clientIP: IPAddress? = nil, peerID: PeerID? = nil,
    factors: CreditFactors = .unit
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
    self.factors = factors
  }

  /// An upper bound of this delta's encoded size, for the batcher's byte bound.
  public var estimatedSize: Int {
    96 + (clientIP == nil ? 0 : 18) + (peerID == nil ? 0 : 22) + (factors.isUnit ? 0 : 12)
  }
}
