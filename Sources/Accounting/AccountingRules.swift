import BitTorrent
import DeltaModel

/// The accounting rules of design.md as one pure function: what an announce
/// emits and what it does to its entry. No locks, no I/O; the caller applies
/// the decision atomically.
enum AccountingRules {
  /// What to do with the stored entry.
  enum StoreChange: Sendable, Equatable {
    /// Nothing is stored (a `stopped` with no entry).
    case none
    /// Store this new entry.
    case insert(StatsEntry)
    /// Replace the existing entry with this one (baseline advanced).
    case update(StatsEntry)
    /// Remove the existing entry.
    case remove
  }

  /// The outcome of one announce.
  struct Decision: Sendable, Equatable {
    /// The delta to enqueue, if any; its origin is assigned when queued.
    var delta: Delta?
    /// A second delta of the same announce, queued right after ``delta``
    /// and with it: the zero-byte `stopped` of a stop that snatched, when
    /// `emitStopped` asks for every stop (``delta`` is the `completed`
    /// carrying the snatch and the bytes). Nil otherwise.
    var followUp: Delta? = nil
    /// The change to the entry, to apply only once the deltas are queued.
    var change: StoreChange
  }

  /// The part of an announce the rules read. Plain values only (no
  /// passkey string), so copying it costs no reference counting.
  struct Report: Sendable {
    var userID: UserID
    var infoHash: InfoHash
    var peerID: PeerID
    var address: IPAddress
    var uploaded: UInt64
    var downloaded: UInt64
    var isSeeder: Bool
    var event: AnnounceEvent
    var factors: CreditFactors
    /// ``StatsEntry/sessionTag(of:)`` of the announce's `key`.
    var sessionTag: UInt16

    init(_ request: AnnounceRequest, userID: UserID, factors: CreditFactors = .unit) {
      self.userID = userID
      self.factors = factors
      infoHash = request.infoHash
      peerID = request.peerID
      address = request.endpoint.address
      uploaded = request.uploaded
      downloaded = request.downloaded
      isSeeder = request.isSeeder
      event = request.event
      sessionTag = StatsEntry.sessionTag(of: request.key)
    }
  }

  /// Applies the rules table to one announce.
  ///
  /// Snatches: an entry snatches once, at its first move from leeching
  /// (`left > 0`) to seeding (`left == 0`), whatever event the client sends
  /// with it; that announce's delta carries `completed`, even with 0 bytes.
  /// Clients' own `completed` is not trusted because it is both repeated
  /// (dual-stack clients announce every event over IPv4 and IPv6, and to
  /// every tier) and missing (aria2 goes from leeching to `stopped`). A
  /// `completed` that is not the snatch carries event `none`. An entry that
  /// starts seeding never snatches.
  /// - Parameters:
  ///   - existing: the stored entry for the announce's key, if any.
  ///   - now: `TrackerClock` seconds of the announce.
  ///   - nowMilliseconds: `TrackerClock` milliseconds of the announce.
  static func decide(
    existing: StatsEntry?, report request: Report, now: UInt32, nowMilliseconds: Int64,
    configuration: AccountingConfiguration
  ) -> Decision {
    let userID = request.userID
    let seeding: StatsEntry.Flags = request.isSeeder ? .seeding : []

    func delta(
      _ event: DeltaEvent, uploaded: Int64, downloaded: Int64, interval: UInt32, reset: Bool
    ) -> Delta {
      Delta(
        userID: userID, infoHash: request.infoHash, uploaded: uploaded, downloaded: downloaded,
        event: event,
        reportedAtMilliseconds: nowMilliseconds, seeding: request.isSeeder,
        intervalSeconds: interval,
        reset: reset, origin: DeltaOrigin(instance: 0, sequence: 0),
        clientIP: configuration.recordClientIP ? request.address : nil,
        peerID: configuration.recordPeerID ? request.peerID : nil, factors: request.factors)
    }

    guard let existing else {
      // First announce: no baseline, so no bytes can be attributed, and no
      // snatch (it has no leeching past here). Only `emitStopped` asks for
      // a zero-byte delta, of a stop.
      if request.event == .stopped {
        return Decision(
          delta: configuration.emitStopped
            ? delta(.stopped, uploaded: 0, downloaded: 0, interval: 0, reset: false) : nil,
          change: .none)
      }
      let entry = StatsEntry(
        userID: userID, infoHash: request.infoHash, peerID: request.peerID,
        uploaded: request.uploaded,
        downloaded: request.downloaded, lastSeen: now,
        flags: request.isSeeder ? [.seeding, .snatchSpent] : [], sessionTag: request.sessionTag)
      return Decision(delta: nil, change: .insert(entry))
    }

    // A counter below its baseline means the client began a new session
    // (restart, re-add): its totals are all new bytes, flagged as a reset,
    // never a negative delta — unless the announce carries the key the
    // baseline was recorded under: then it is a late announce of the same
    // session (a dual-stack client's IPv6 `started` can arrive after its
    // IPv4 `completed`), older than the baseline, and counting it as a
    // restart would credit every byte again.
    let below = request.uploaded < existing.uploaded || request.downloaded < existing.downloaded
    let late = below && request.sessionTag != 0 && request.sessionTag == existing.sessionTag
    if late && request.event != .stopped {
      // Nothing it says is newer than the entry: bytes, `left` and time stay.
      return Decision(delta: nil, change: .none)
    }
    let reset = below && !late
    // A late `stopped` still closes the entry, with no bytes of its own.
    let uploaded =
      late ? 0 : Int64(clamping: reset ? request.uploaded : request.uploaded - existing.uploaded)
    let downloaded =
      late
      ? 0 : Int64(clamping: reset ? request.downloaded : request.downloaded - existing.downloaded)
    let interval = now >= existing.lastSeen ? now - existing.lastSeen : 0
    let moved = uploaded != 0 || downloaded != 0
    let snatches =
      !late && request.isSeeder && existing.flags.isDisjoint(with: [.seeding, .snatchSpent])

    let event: DeltaEvent
    let emit: Bool
    if snatches {
      event = .completed
      emit = true
    } else {
      switch request.event {
      // Not the snatch: a repeat (another address family or tier), or a
      // client confused about its `left`. It says nothing the bytes don't.
      case .completed: event = .none
      case .none: event = .none
      case .started: event = .started
      case .stopped: event = .stopped
      }
      emit =
        moved || reset || configuration.emitIdleAnnounces
        || (request.event == .stopped && configuration.emitStopped)
    }
    let emitted =
      emit
      ? delta(event, uploaded: uploaded, downloaded: downloaded, interval: interval, reset: reset)
      : nil

    if request.event == .stopped {
      // A stop that snatched: the `completed` above carries the snatch and
      // the bytes; the stop itself moved nothing more, so it is a delta of
      // its own only when every stop is asked for (interval 0: measured
      // from the `completed` just before it).
      let followUp =
        snatches && configuration.emitStopped
        ? delta(.stopped, uploaded: 0, downloaded: 0, interval: 0, reset: false) : nil
      return Decision(delta: emitted, followUp: followUp, change: .remove)
    }
    var advanced = existing
    advanced.uploaded = request.uploaded
    advanced.downloaded = request.downloaded
    advanced.lastSeen = now
    advanced.flags = seeding.union(existing.flags.intersection(.snatchSpent))
    advanced.sessionTag = request.sessionTag
    if snatches { advanced.flags.insert(.snatchSpent) }
    return Decision(delta: emitted, change: .update(advanced))
  }

  /// The record GC emits for an entry silent for the peer lifetime: no
  /// bytes, so downstream can close seed-time sessions.
  static func expiredDelta(
    for entry: StatsEntry, now: UInt32, nowMilliseconds: Int64,
    configuration: AccountingConfiguration
  ) -> Delta {
    Delta(
      userID: entry.userID, infoHash: entry.infoHash, uploaded: 0, downloaded: 0, event: .expired,
      reportedAtMilliseconds: nowMilliseconds, seeding: entry.flags.contains(.seeding),
      intervalSeconds: now >= entry.lastSeen ? now - entry.lastSeen : 0, reset: false,
      origin: DeltaOrigin(instance: 0, sequence: 0), clientIP: nil,
      peerID: configuration.recordPeerID ? entry.peerID : nil)
  }
}
