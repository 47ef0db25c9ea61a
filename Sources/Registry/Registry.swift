import BitTorrent
import Metrics
import Synchronization

/// The site's users, torrents, tokens, site-wide factors and client rules,
/// in memory: read by every announce (one lock acquisition per announce, in
/// ``evaluate(passkey:infoHash:peerID:isLeeching:modes:)``), written by a
/// source (Kafka topics, a file) a few times a second at most.
///
/// Invariants, kept under the lock: `passkeys` maps every registered user's
/// current passkey to that user's id and nothing else (a rotated passkey
/// is removed when the new record is applied; when two users claim one
/// passkey the later record wins and the earlier user has none until it is
/// re-put); `clientRules` is sorted longest prefix first.
public final class Registry: Sendable {
  private struct State: Sendable {
    var contents = RegistryContents()
    var passkeys: [Passkey: UserID] = [:]
    var clientRules: [ClientRule] = []
    var allowRuleExists = false
  }

  private let state = Mutex(State())
  private let sizes: RegistrySizeGauges

  /// Creates an empty registry whose sizes are reported as
  /// `privtrak_registry_users`, `_torrents`, `_tokens`, `_client_rules`.
  public init(metricsFactory: any MetricsFactory = MetricsSystem.factory) {
    sizes = RegistrySizeGauges(factory: metricsFactory)
    sizes.record(counts)
  }

  /// Creates a registry holding `contents`.
  public convenience init(
    _ contents: RegistryContents, metricsFactory: any MetricsFactory = MetricsSystem.factory
  ) {
    self.init(metricsFactory: metricsFactory)
    replaceAll(with: contents)
  }

  // MARK: Writes

  /// Applies changes in order, atomically with respect to announces.
  public func apply(_ changes: some Sequence<RegistryChange>) {
    state.withLock { state in
      var rulesChanged = false
      for change in changes {
        switch change {
        case .putUser(let user):
          if let old = state.contents.users[user.id], state.passkeys[old.passkey] == user.id {
            state.passkeys[old.passkey] = nil
          }
          state.passkeys[user.passkey] = user.id
        case .deleteUser(let id):
          if let old = state.contents.users[id], state.passkeys[old.passkey] == id {
            state.passkeys[old.passkey] = nil
          }
        case .putClientRule, .deleteClientRule:
          rulesChanged = true
        default:
          break
        }
        state.contents.apply(change)
      }
      if rulesChanged { Self.indexRules(&state) }
    }
    sizes.record(counts)
  }

  /// Applies one change.
  public func apply(_ change: RegistryChange) {
    apply(CollectionOfOne(change))
  }

  /// Replaces everything (a file reload): announces see either the old
  /// contents or the new, never a mix.
  public func replaceAll(with contents: RegistryContents) {
    var passkeys: [Passkey: UserID] = [:]
    passkeys.reserveCapacity(contents.users.count)
    for (id, user) in contents.users.sorted(by: { $0.key < $1.key }) {
      passkeys[user.passkey] = id
    }
    state.withLock { state in
      state.contents = contents
      state.passkeys = passkeys
      Self.indexRules(&state)
    }
    sizes.record(counts)
  }

  private static func indexRules(_ state: inout State) {
    state.clientRules = state.contents.clientRules.values.sorted {
      $0.prefix.count != $1.prefix.count
        ? $0.prefix.count > $1.prefix.count : $0.prefix.lexicographicallyPrecedes($1.prefix)
    }
    state.allowRuleExists = state.clientRules.contains { $0.action == .allow }
  }

  // MARK: Reads

  /// A copy of everything (for `list` and tests; O(size)).
  public var contents: RegistryContents {
    state.withLock { $0.contents }
  }

  /// How many records of each kind are held.
  public var counts: RegistryCounts {
    state.withLock { state in
      RegistryCounts(
        users: state.contents.users.count, torrents: state.contents.torrents.count,
        tokens: state.contents.tokens.count, clientRules: state.contents.clientRules.count,
        globalFactorsSet: state.contents.global != .none)
    }
  }

  /// The user a passkey belongs to, if any.
  public func user(passkey: Passkey) -> RegisteredUser? {
    state.withLock { state in state.passkeys[passkey].flatMap { state.contents.users[$0] } }
  }

  /// The torrent of an info hash, if registered.
  public func torrent(_ infoHash: InfoHash) -> RegisteredTorrent? {
    state.withLock { $0.contents.torrents[infoHash] }
  }

  /// Everything approval decides about one announce, under one lock
  /// acquisition: who the user is, whether the torrent and client may
  /// announce, and the factors in force.
  /// - Parameters:
  ///   - passkey: the parsed passkey of the request.
  ///   - isLeeching: `left > 0`.
  public func evaluate(
    passkey: Passkey, infoHash: InfoHash, peerID: PeerID, isLeeching: Bool, modes: RegistryModes
  ) -> ApprovalVerdict {
    state.withLock { state in
      let userID: UserID
      let user: RegisteredUser?
      switch modes.users {
      case .registered:
        guard let id = state.passkeys[passkey], let found = state.contents.users[id] else {
          return .refused(.unknownPasskey)
        }
        userID = id
        user = found
      case .passkeyIsUserID:
        userID = passkey.asUserID
        user = state.contents.users[userID]
      }
      if let user {
        if let reason = user.disabledReason { return .refused(.disabled(reason: reason)) }
        if isLeeching && !user.canLeech { return .refused(.leechingDisabled) }
      }
      let torrent = state.contents.torrents[infoHash]
      switch torrent?.state {
      case nil:
        if modes.torrents == .registered { return .refused(.unregisteredTorrent(reason: "")) }
      case .deleted:
        return .refused(.unregisteredTorrent(reason: torrent!.reason))
      case .pending:
        return .refused(.pendingTorrent(reason: torrent!.reason))
      case .active:
        break
      }
      if !state.clientRules.isEmpty,
        let refusal = Self.clientRefusal(
          peerID, rules: state.clientRules, allowRuleExists: state.allowRuleExists)
      {
        return .refused(refusal)
      }
      let token =
        state.contents.tokens.isEmpty
        ? nil : state.contents.tokens[TokenKey(userID, infoHash)]
      let factors = FactorResolution.resolve(
        global: state.contents.global, user: user?.factors ?? .none,
        torrent: torrent?.factors ?? .none, token: token?.factors ?? .none)
      return .approved(userID: userID, factors: factors)
    }
  }

  /// Whether a scrape's user may scrape, in `registered` user mode.
  public func scrapeRefusal(passkey: Passkey, modes: RegistryModes) -> Refusal? {
    state.withLock { state in
      let id =
        switch modes.users {
        case .registered: state.passkeys[passkey]
        case .passkeyIsUserID: passkey.asUserID
        }
      guard let id, let user = state.contents.users[id] else {
        return modes.users == .registered ? .unknownPasskey : nil
      }
      return user.disabledReason.map { .disabled(reason: $0) }
    }
  }

  /// Keeps the info hashes a scrape may report: registered active
  /// torrents (in `any` mode, every hash the registry does not hold as
  /// pending or deleted).
  public func scrapeable(_ infoHashes: [InfoHash], modes: RegistryModes) -> [InfoHash] {
    state.withLock { state in
      infoHashes.filter { hash in
        switch state.contents.torrents[hash]?.state {
        case .active: true
        case nil: modes.torrents == .any
        case .pending, .deleted: false
        }
      }
    }
  }

  private static func clientRefusal(
    _ peerID: PeerID, rules: [ClientRule], allowRuleExists: Bool
  ) -> Refusal? {
    let bytes = peerID.bytes
    for rule in rules where bytes.starts(with: rule.prefix) {
      return rule.action == .allow ? nil : .clientNotAllowed(reason: rule.reason)
    }
    return allowRuleExists ? .clientNotAllowed(reason: "") : nil
  }
}

/// How many records a registry holds.
public struct RegistryCounts: Sendable, Equatable {
  /// Users.
  public var users: Int
  /// Torrents (any state).
  public var torrents: Int
  /// Freeleech tokens.
  public var tokens: Int
  /// Client rules.
  public var clientRules: Int
  /// Whether site-wide factors are set.
  public var globalFactorsSet: Bool
}
