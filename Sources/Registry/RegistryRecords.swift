import BitTorrent

/// Factors one registry record sets, in percent; nil means the record does
/// not set that factor (it does not apply).
public struct FactorOverrides: Sendable, Hashable {
  /// Upload factor, percent.
  public var uploadPercent: UInt32?
  /// Download factor, percent.
  public var downloadPercent: UInt32?

  /// Creates overrides.
  public init(uploadPercent: UInt32? = nil, downloadPercent: UInt32? = nil) {
    self.uploadPercent = uploadPercent
    self.downloadPercent = downloadPercent
  }

  /// Sets no factor.
  public static let none = FactorOverrides()
}

/// A user as the site registered it.
public struct RegisteredUser: Sendable, Hashable {
  /// The id every delta of this user carries.
  public var id: UserID
  /// The passkey of the user's announce URL.
  public var passkey: Passkey
  /// Why the account is disabled; nil when it is enabled.
  public var disabledReason: String?
  /// False: announces with `left > 0` are refused (seeding still counts).
  public var canLeech: Bool
  /// The user's factors (group, donor, personal freeleech).
  public var factors: FactorOverrides

  /// Creates a user record.
  public init(
    id: UserID, passkey: Passkey, disabledReason: String? = nil, canLeech: Bool = true,
    factors: FactorOverrides = .none
  ) {
    self.id = id
    self.passkey = passkey
    self.disabledReason = disabledReason
    self.canLeech = canLeech
    self.factors = factors
  }
}

/// A torrent's moderation state.
public enum TorrentState: String, Sendable, Hashable, CaseIterable {
  /// Announces are served.
  case active
  /// Awaiting moderation: refused with the reason and a retry interval.
  case pending
  /// Removed by the site: refused as an unregistered torrent.
  case deleted
}

/// A torrent as the site registered it.
///
/// A torrent is one key whichever hashes it has: its v1 (SHA-1) info hash,
/// or, for a v2-only torrent, the first 20 bytes of its v2 hash (what its
/// announces carry). A hybrid torrent also names its v2 hash, so announces
/// and scrapes with either hash reach the same torrent: one swarm, one
/// accounting entry per peer, deltas under the key.
public struct RegisteredTorrent: Sendable, Hashable {
  /// The torrent's key: its v1 info hash, or its v2 hash's first 20 bytes
  /// when it has no v1 hash (`v2InfoHash?.announceHash == infoHash`).
  public var infoHash: InfoHash
  /// The torrent's v2 (SHA-256) info hash, when it has one.
  public var v2InfoHash: V2InfoHash?
  /// Moderation state.
  public var state: TorrentState
  /// Shown to clients when pending or deleted; may be empty.
  public var reason: String
  /// The torrent's factors (freeleech, double upload).
  public var factors: FactorOverrides

  /// Creates a torrent record with a v1 info hash (and the v2 one of a
  /// hybrid torrent).
  public init(
    infoHash: InfoHash, v2InfoHash: V2InfoHash? = nil, state: TorrentState = .active,
    reason: String = "", factors: FactorOverrides = .none
  ) {
    self.infoHash = infoHash
    self.v2InfoHash = v2InfoHash
    self.state = state
    self.reason = reason
    self.factors = factors
  }

  /// Creates the record of a v2-only torrent, keyed by its announce hash.
  public init(
    v2Only v2InfoHash: V2InfoHash, state: TorrentState = .active, reason: String = "",
    factors: FactorOverrides = .none
  ) {
    self.init(
      infoHash: v2InfoHash.announceHash, v2InfoHash: v2InfoHash, state: state, reason: reason,
      factors: factors)
  }

  /// The v1 info hash; nil for a v2-only torrent.
  public var v1InfoHash: InfoHash? {
    v2InfoHash?.announceHash == infoHash ? nil : infoHash
  }

  /// The other hash announces of a hybrid torrent carry (its v2 hash's
  /// first 20 bytes); nil for v1-only and v2-only torrents.
  public var alternateAnnounceHash: InfoHash? {
    guard let v2InfoHash, v2InfoHash.announceHash != infoHash else { return nil }
    return v2InfoHash.announceHash
  }
}

/// A per-user, per-torrent override (a freeleech token).
public struct FreeleechToken: Sendable, Hashable {
  /// The user.
  public var userID: UserID
  /// The torrent.
  public var infoHash: InfoHash
  /// The token's factors.
  public var factors: FactorOverrides

  /// Creates a token.
  public init(userID: UserID, infoHash: InfoHash, factors: FactorOverrides) {
    self.userID = userID
    self.infoHash = infoHash
    self.factors = factors
  }
}

/// Whether a client rule lets matching peer ids in.
public enum ClientRuleAction: String, Sendable, Hashable {
  /// Peer ids with the prefix are allowed.
  case allow
  /// Peer ids with the prefix are refused.
  case deny
}

/// Peer ids starting with `prefix` are allowed or denied. The longest
/// matching prefix decides; a peer id no rule matches is allowed unless at
/// least one `allow` rule exists (then only listed clients get in).
public struct ClientRule: Sendable, Hashable {
  /// 1 to 20 bytes, e.g. `-TR3`.
  public var prefix: [UInt8]
  /// What a match means.
  public var action: ClientRuleAction
  /// Shown to refused clients; may be empty.
  public var reason: String

  /// Creates a rule.
  public init(prefix: [UInt8], action: ClientRuleAction, reason: String = "") {
    self.prefix = prefix
    self.action = action
    self.reason = reason
  }
}

/// One change to the registry: what one record on a registry topic (or one
/// CLI command) says.
public enum RegistryChange: Sendable, Hashable {
  /// Adds or replaces a user (a new passkey replaces the old one).
  case putUser(RegisteredUser)
  /// Removes a user (a tombstone).
  case deleteUser(UserID)
  /// Adds or replaces a torrent.
  case putTorrent(RegisteredTorrent)
  /// Removes a torrent (announces are then refused as unregistered).
  case deleteTorrent(InfoHash)
  /// Adds or replaces a freeleech token.
  case putToken(FreeleechToken)
  /// Removes a freeleech token.
  case deleteToken(UserID, InfoHash)
  /// Sets the site-wide factors (starts a freeleech event).
  case putGlobal(FactorOverrides)
  /// Clears the site-wide factors (ends the event).
  case deleteGlobal
  /// Adds or replaces a client rule.
  case putClientRule(ClientRule)
  /// Removes the client rule of a prefix.
  case deleteClientRule(prefix: [UInt8])
}
