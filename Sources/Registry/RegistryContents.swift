import BitTorrent

/// Everything a registry holds, as plain values: what a registry file
/// describes, what `privtrak registry list` prints, and what a
/// ``Registry`` is replaced with on a file reload.
public struct RegistryContents: Sendable, Equatable {
  /// Users by id.
  public var users: [UserID: RegisteredUser] = [:]
  /// Torrents by info hash.
  public var torrents: [InfoHash: RegisteredTorrent] = [:]
  /// Tokens by (user, torrent).
  public var tokens: [TokenKey: FreeleechToken] = [:]
  /// Site-wide factors.
  public var global: FactorOverrides = .none
  /// Client rules by prefix.
  public var clientRules: [[UInt8]: ClientRule] = [:]

  /// Creates empty contents.
  public init() {}

  /// Applies one change.
  public mutating func apply(_ change: RegistryChange) {
    switch change {
    case .putUser(let user): users[user.id] = user
    case .deleteUser(let id): users[id] = nil
    case .putTorrent(let torrent): torrents[torrent.infoHash] = torrent
    case .deleteTorrent(let hash): torrents[hash] = nil
    case .putToken(let token): tokens[TokenKey(token.userID, token.infoHash)] = token
    case .deleteToken(let user, let hash): tokens[TokenKey(user, hash)] = nil
    case .putGlobal(let factors): global = factors
    case .deleteGlobal: global = .none
    case .putClientRule(let rule): clientRules[rule.prefix] = rule
    case .deleteClientRule(let prefix): clientRules[prefix] = nil
    }
  }

  /// The changes that build these contents from empty, in a stable order
  /// (users, torrents, tokens, global, client rules; each sorted by id).
  public var changes: [RegistryChange] {
    var changes: [RegistryChange] = []
    changes += users.keys.sorted().map { .putUser(users[$0]!) }
    changes += torrents.keys.sorted().map { .putTorrent(torrents[$0]!) }
    changes += tokens.keys.sorted().map { .putToken(tokens[$0]!) }
    if global != .none { changes.append(.putGlobal(global)) }
    changes += clientRules.keys.sorted { $0.lexicographicallyPrecedes($1) }.map {
      .putClientRule(clientRules[$0]!)
    }
    return changes
  }
}

/// The key of a freeleech token: one user on one torrent.
public struct TokenKey: Hashable, Sendable, Comparable {
  /// The user.
  public var userID: UserID
  /// The torrent.
  public var infoHash: InfoHash

  /// Creates a key.
  public init(_ userID: UserID, _ infoHash: InfoHash) {
    self.userID = userID
    self.infoHash = infoHash
  }

  public static func < (lhs: TokenKey, rhs: TokenKey) -> Bool {
    (lhs.userID, lhs.infoHash) < (rhs.userID, rhs.infoHash)
  }
}
