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
