/// One announce a simulated peer is about to send.
public struct AnnounceParameters: Sendable, Equatable {
  /// BitTorrent announce events (values as in BEP 15).
  public enum Event: UInt32, Sendable, Equatable {
    case none = 0
    case completed = 1
    case started = 2
    case stopped = 3
  }

  /// Index of the peer in the population.
  public var peer: Int
  /// Index of its torrent.
  public var torrent: Int
  /// Index of its passkey, nil when announcing without one.
  public var passkey: Int?
  /// Session counters as a client reports them.
  public var uploaded: UInt64
  public var downloaded: UInt64
  public var left: UInt64
  /// The event carried.
  public var event: Event
  /// The peer's listening port.
  public var port: UInt16
}

/// The simulated peers and their counters. Each peer belongs to one torrent
/// (`peer % torrents`) and one passkey (`peer % passkeys`); a quarter start as
/// seeders, the rest download their torrent over eight announces. Counters
/// only grow within a session: `started` → periodic → `completed` → periodic
/// as a seeder → after sixteen seeding announces `stopped`, then a new session
/// starts again from zero (as clients reset session counters on restart).
///
/// Identities are pure functions of the indices, so a script can list the
/// info hashes (``infoHash(torrent:)``) for a tracker's whitelist.
public struct LoadPopulation: Sendable {
  private enum Phase: UInt8 {
    case fresh, leeching, seeding
  }

  private struct PeerState {
    var uploaded: UInt64 = 0
    var downloaded: UInt64 = 0
    var left: UInt64
    var phase: Phase = .fresh
    var seedingAnnounces: UInt8 = 0
  }

  /// Number of torrents.
  public let torrents: Int
  /// Number of passkeys (0: none).
  public let passkeys: Int
  private var states: [PeerState]

  /// Seeding announces before a peer stops and starts a new session.
  static let seedingAnnouncesBeforeStop: UInt8 = 16
  /// Announces a leecher needs to finish its torrent.
  static let announcesToComplete: UInt64 = 8

  /// Creates `peers` peers over `torrents` torrents and `passkeys` passkeys.
  public init(torrents: Int, peers: Int, passkeys: Int) {
    self.torrents = torrents
    self.passkeys = passkeys
    self.states = (0..<peers).map { peer in
      PeerState(left: peer % 4 == 0 ? 0 : Self.size(ofTorrent: peer % torrents))
    }
  }

  /// Number of peers.
  public var peers: Int { states.count }

  /// Bytes of a torrent: 64 MiB to 512 MiB.
  static func size(ofTorrent torrent: Int) -> UInt64 { UInt64(64 << 20) << UInt64(torrent % 4) }

  /// The announce `peer` sends next (pure: nothing changes until ``commit(_:)``).
  public func next(peer: Int) -> AnnounceParameters {
    let state = states[peer]
    let torrent = peer % torrents
    let size = Self.size(ofTorrent: torrent)
    var parameters = AnnounceParameters(
      peer: peer, torrent: torrent, passkey: passkeys > 0 ? peer % passkeys : nil,
      uploaded: state.uploaded, downloaded: state.downloaded, left: state.left, event: .none,
      port: UInt16(1024 + peer % 60_000))
    switch state.phase {
    case .fresh:
      parameters.event = .started
    case .leeching:
      let step = min(size / Self.announcesToComplete, state.left)
      parameters.downloaded += step
      parameters.left -= step
      parameters.uploaded += step / UInt64(2 + peer % 3)
      if parameters.left == 0 { parameters.event = .completed }
    case .seeding:
      parameters.uploaded += size / 16
      if state.seedingAnnounces + 1 >= Self.seedingAnnouncesBeforeStop {
        parameters.event = .stopped
      }
    }
    return parameters
  }

  /// Records that `parameters` (from ``next(peer:)``) was answered successfully.
  public mutating func commit(_ parameters: AnnounceParameters) {
    let peer = parameters.peer
    var state = states[peer]
    state.uploaded = parameters.uploaded
    state.downloaded = parameters.downloaded
    state.left = parameters.left
    switch parameters.event {
    case .stopped:
      // A new session: counters restart at zero, the data stays on disk.
      state = PeerState(left: 0)
    case .started, .completed, .none:
      state.phase = state.left == 0 ? .seeding : .leeching
      if case .seeding = state.phase, parameters.event == .none {
        state.seedingAnnounces += 1
      } else if parameters.event == .completed {
        state.seedingAnnounces = 0
      }
    }
    states[peer] = state
  }

  /// The 20-byte info hash of torrent `index`: its big-endian index, then a fixed pattern.
  public static func infoHash(torrent index: Int) -> [UInt8] {
    let value = UInt32(truncatingIfNeeded: index)
    return [
      UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
      UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value),
    ]
      + (0..<16).map { UInt8(0xA0 &+ $0) }
  }

  /// The 20-byte peer id of peer `index`: client prefix `-LG0001-` and twelve decimal digits.
  public static func peerID(peer index: Int) -> [UInt8] {
    var digits = [UInt8](repeating: UInt8(ascii: "0"), count: 12)
    var rest = index
    var position = 11
    while rest > 0, position >= 0 {
      digits[position] = UInt8(ascii: "0") + UInt8(rest % 10)
      rest /= 10
      position -= 1
    }
    return Array("-LG0001-".utf8) + digits
  }

  /// The 32-hex-character passkey of user `index` (its 16-byte user id in hex).
  public static func passkey(_ index: Int) -> String {
    let value = UInt64(index)
    let hex = Array("0123456789abcdef".utf8)
    var out = Array("5eed0000000000000000".utf8)
    for shift in stride(from: 44, through: 0, by: -4) {
      out.append(hex[Int((value >> UInt64(shift)) & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// Lowercase hex of `bytes` (info hashes for a whitelist).
  public static func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
  }
}
