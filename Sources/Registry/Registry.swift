import BitTorrent
import Metrics

/// The site's users, torrents, tokens, site-wide factors and client rules,
/// in memory: read by every announce (one shared acquisition of a
/// reader-writer lock per announce, so event loops do not serialise, in
/// ``evaluate(passkey:infoHash:peerID:isLeeching:modes:)``), written by a
/// source (Kafka topics, a file) a few times a second at most. The layout
/// and its invariants are `RegistryTables`'.
public final class Registry: Sendable {
  private let tables = ReadWriteLocked(RegistryTables())
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
    tables.write { tables in
      for change in changes { tables.apply(change) }
    }
    sizes.record(counts)
  }

  /// Applies one change.
  public func apply(_ change: RegistryChange) {
    apply(CollectionOfOne(change))
  }

  /// Replaces everything (a file reload): announces see either the old
  /// contents or the new, never a mix. The new tables are built, and the
  /// old ones freed, outside the lock.
  public func replaceAll(with contents: RegistryContents) {
    var replacement = RegistryTables(contents)
    tables.write { swap(&$0, &replacement) }
    // `replacement` now holds the old tables: freed here, after the lock.
    sizes.record(counts)
  }

  // MARK: Reads

  /// A copy of everything (for `list` and tests; O(size)).
  public var contents: RegistryContents {
    tables.read { $0.contents }
  }

  /// How many records of each kind are held.
  public var counts: RegistryCounts {
    tables.read { $0.counts }
  }

  /// The user a passkey belongs to, if any.
  public func user(passkey: Passkey) -> RegisteredUser? {
    tables.read { tables in tables.userByPasskey[passkey].map { tables.user(at: $0) } }
  }

  /// The torrent of an info hash, if registered.
  public func torrent(_ infoHash: InfoHash) -> RegisteredTorrent? {
    tables.read { $0.torrent(infoHash) }
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
    tables.read { tables in
      let userID: UserID
      var userFactors = PackedFactors(.none)
      var slotIndex: Int32?
      switch modes.users {
      case .registered:
        guard let index = tables.userByPasskey[passkey] else { return .refused(.unknownPasskey) }
        slotIndex = index
      case .passkeyIsUserID:
        slotIndex = tables.userByID[passkey.asUserID]
      }
      if let index = slotIndex {
        let slot = tables.users[Int(index)]
        userID = slot.id
        userFactors = slot.factors
        if slot.flags & UserSlot.disabled != 0 {
          return .refused(.disabled(reason: tables.disabledReasons[slot.id] ?? ""))
        }
        if isLeeching && slot.flags & UserSlot.noLeech != 0 { return .refused(.leechingDisabled) }
      } else {
        userID = passkey.asUserID
      }
      var key = infoHash
      var torrent = tables.torrents[key]
      if torrent == nil, !tables.keyByAlternateHash.isEmpty,
        let hybridKey = tables.keyByAlternateHash[key]
      {
        // The v2 announce of a hybrid torrent: the torrent's key from here on.
        key = hybridKey
        torrent = tables.torrents[key]
      }
      switch torrent?.state {
      case nil:
        if modes.torrents == .registered { return .refused(.unregisteredTorrent(reason: "")) }
      case .deleted:
        return .refused(.unregisteredTorrent(reason: tables.torrentReasons[key] ?? ""))
      case .pending:
        return .refused(.pendingTorrent(reason: tables.torrentReasons[key] ?? ""))
      case .active:
        break
      }
      if !tables.sortedRules.isEmpty,
        let refusal = Self.clientRefusal(
          peerID, rules: tables.sortedRules, allowRuleExists: tables.allowRuleExists)
      {
        return .refused(refusal)
      }
      let token = tables.tokens.isEmpty ? nil : tables.tokens[TokenKey(userID, key)]
      let factors = FactorResolution.resolve(
        global: tables.global.overrides, user: userFactors.overrides,
        torrent: torrent?.factors.overrides ?? .none, token: token?.overrides ?? .none)
      return .approved(userID: userID, factors: factors, torrentKey: key == infoHash ? nil : key)
    }
  }

  /// The torrent keys of the scraped hashes that are a hybrid torrent's
  /// alternate (v2) hash, so the scrape reports that torrent's one swarm
  /// under the hash the client asked for. Empty when none is.
  public func torrentKeys(ofAlternateHashes infoHashes: [InfoHash]) -> [InfoHash: InfoHash] {
    tables.read { tables in
      var keys: [InfoHash: InfoHash] = [:]
      guard !tables.keyByAlternateHash.isEmpty else { return keys }
      for hash in infoHashes {
        let key = tables.torrentKey(hash)
        if key != hash { keys[hash] = key }
      }
      return keys
    }
  }

  /// Whether a scrape's user may scrape: in `registered` user mode the
  /// passkey must be a registered user's; a disabled user is refused in
  /// either mode.
  public func scrapeRefusal(passkey: Passkey, modes: RegistryModes) -> Refusal? {
    tables.read { tables in
      let index =
        switch modes.users {
        case .registered: tables.userByPasskey[passkey]
        case .passkeyIsUserID: tables.userByID[passkey.asUserID]
        }
      guard let index else { return modes.users == .registered ? .unknownPasskey : nil }
      let slot = tables.users[Int(index)]
      guard slot.flags & UserSlot.disabled != 0 else { return nil }
      return .disabled(reason: tables.disabledReasons[slot.id] ?? "")
    }
  }

  /// Keeps the info hashes a scrape may report: registered active
  /// torrents (in `any` mode, every hash the registry does not hold as
  /// pending or deleted).
  public func scrapeable(_ infoHashes: [InfoHash], modes: RegistryModes) -> [InfoHash] {
    tables.read { tables in
      infoHashes.filter { hash in
        switch tables.torrents[tables.torrentKey(hash)]?.state {
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
    for rule in rules where peerID.raw.starts(with: rule.prefix) {
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
