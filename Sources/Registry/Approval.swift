import BitTorrent

/// Who and what the registry admits.
public struct RegistryModes: Sendable, Hashable {
  /// How announces identify users.
  public enum Users: String, Sendable, Hashable, CaseIterable {
    /// The passkey's 16 bytes are the user id; any well-formed passkey gets
    /// in (a registered user record still applies: disabled, no leech,
    /// factors).
    case passkeyIsUserID = "passkey-is-user-id"
    /// Only passkeys of registered users get in.
    case registered
  }

  /// Which torrents are tracked.
  public enum Torrents: String, Sendable, Hashable, CaseIterable {
    /// Every info hash, except those the registry holds as pending or deleted.
    case any
    /// Only registered, active torrents.
    case registered
  }

  /// How announces identify users.
  public var users: Users
  /// Which torrents are tracked.
  public var torrents: Torrents

  /// Creates modes; the defaults are an open tracker that counts bytes.
  public init(users: Users = .passkeyIsUserID, torrents: Torrents = .any) {
    self.users = users
    self.torrents = torrents
  }
}

/// Why an announce or scrape is refused (the design's refusal table).
public enum Refusal: Sendable, Hashable {
  /// No passkey, or not 32 hex characters.
  case malformedPasskey(message: String)
  /// No registered user has this passkey.
  case unknownPasskey
  /// The site disabled the account.
  case disabled(reason: String)
  /// The user may not download and `left > 0`.
  case leechingDisabled
  /// The torrent is not registered, or deleted.
  case unregisteredTorrent(reason: String)
  /// The torrent awaits moderation.
  case pendingTorrent(reason: String)
  /// The client's peer id is denied or not on the allow list.
  case clientNotAllowed(reason: String)

  /// The metric label (`privtrak_registry_refusals_total{reason=…}`).
  public var label: String {
    switch self {
    case .malformedPasskey: "malformed_passkey"
    case .unknownPasskey: "unknown_passkey"
    case .disabled: "user_disabled"
    case .leechingDisabled: "leeching_disabled"
    case .unregisteredTorrent: "unregistered_torrent"
    case .pendingTorrent: "pending_torrent"
    case .clientNotAllowed: "client_not_allowed"
    }
  }

  /// Every label, for pre-registering the counters.
  public static let labels = [
    "malformed_passkey", "unknown_passkey", "user_disabled", "leeching_disabled",
    "unregistered_torrent", "pending_torrent", "client_not_allowed",
  ]

  /// The text the client sees.
  public var message: String {
    func joined(_ base: String, _ reason: String) -> String {
      reason.isEmpty ? base : "\(base): \(reason)"
    }
    switch self {
    case .malformedPasskey(let message): return message
    case .unknownPasskey: return "passkey not recognised"
    case .disabled(let reason): return reason.isEmpty ? "account disabled" : reason
    case .leechingDisabled: return "downloading disabled for your account"
    case .unregisteredTorrent(let reason): return joined("unregistered torrent", reason)
    case .pendingTorrent(let reason):
      return reason.isEmpty ? "torrent pending moderation" : reason
    case .clientNotAllowed(let reason): return joined("client not allowed", reason)
    }
  }
}

/// What the registry decided about one announce.
public enum ApprovalVerdict: Sendable, Hashable {
  /// The announce may proceed, as this user, with these factors. A
  /// `torrentKey` is set when the announce named a hybrid torrent by its v2
  /// hash: the announce continues under the torrent's key (one swarm, one
  /// accounting entry, deltas under the key).
  case approved(userID: UserID, factors: CreditFactors, torrentKey: InfoHash?)
  /// Approved under the hash the announce carried.
  public static func approved(userID: UserID, factors: CreditFactors) -> ApprovalVerdict {
    .approved(userID: userID, factors: factors, torrentKey: nil)
  }

  /// The announce is refused.
  case refused(Refusal)
}
