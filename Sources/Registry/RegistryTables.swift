import BitTorrent

/// Factor overrides in 8 bytes: `UInt32.max` stands for "not set"
/// (`FactorOverrides` takes 16, two optionals).
struct PackedFactors: Sendable, Hashable {
  static let unset = UInt32.max
  var upload: UInt32
  var download: UInt32

  init(_ overrides: FactorOverrides) {
    upload = overrides.uploadPercent ?? Self.unset
    download = overrides.downloadPercent ?? Self.unset
  }

  var overrides: FactorOverrides {
    FactorOverrides(
      uploadPercent: upload == Self.unset ? nil : upload,
      downloadPercent: download == Self.unset ? nil : download)
  }
}

/// What approval needs of a user, in 48 bytes (RegistryBench: 1 M users).
struct UserSlot: Sendable {
  static let disabled: UInt8 = 1
  static let noLeech: UInt8 = 2
  var id: UserID
  var passkey: Passkey
  var factors: PackedFactors
  var flags: UInt8
}

/// What approval needs of a torrent: 9 bytes next to its 20-byte key.
struct TorrentSlot: Sendable {
  var factors: PackedFactors
  var state: TorrentState
}

/// The registry's storage, laid out for the announce path: a passkey leads
/// straight to its user's slot (one hash lookup, one array read), torrents
/// are a compact value per info hash, and the texts only refusals need
/// (reasons) live in side tables that stay small. Measured with
/// `RegistryBench` (BENCHMARKS.md).
///
/// Invariants: `userByID` and `userByPasskey` index live slots of `users`
/// only; a slot on `freeUserSlots` is in neither; `userByPasskey[p]` is the
/// slot whose passkey is `p` (when two users claim one passkey the later
/// record wins; the earlier user then has no passkey entry until re-put);
/// `disabledReasons` holds a reason only for a disabled user with a
/// non-empty one, `torrentReasons` only non-empty reasons; `sortedRules` is
/// `clientRules` ordered longest prefix first. `v2Hashes` holds the v2 hash
/// of registered torrents that have one (only they pay for it), and
/// `keyByAlternateHash[a] == k` exactly when `v2Hashes[k]` is a hybrid
/// torrent's v2 hash whose first 20 bytes are `a` (`a != k`).
struct RegistryTables: Sendable {
  private(set) var users: [UserSlot] = []
  private var freeUserSlots: [Int32] = []
  private(set) var userByID: [UserID: Int32] = [:]
  private(set) var userByPasskey: [Passkey: Int32] = [:]
  private(set) var disabledReasons: [UserID: String] = [:]
  private(set) var torrents: [InfoHash: TorrentSlot] = [:]
  private(set) var torrentReasons: [InfoHash: String] = [:]
  private(set) var v2Hashes: [InfoHash: V2InfoHash] = [:]
  private(set) var keyByAlternateHash: [InfoHash: InfoHash] = [:]
  private(set) var tokens: [TokenKey: PackedFactors] = [:]
  private(set) var global = PackedFactors(.none)
  private(set) var clientRules: [[UInt8]: ClientRule] = [:]
  private(set) var sortedRules: [ClientRule] = []
  private(set) var allowRuleExists = false

  init() {}

  init(_ contents: RegistryContents) {
    users.reserveCapacity(contents.users.count)
    userByID.reserveCapacity(contents.users.count)
    userByPasskey.reserveCapacity(contents.users.count)
    torrents.reserveCapacity(contents.torrents.count)
    // Sorted: which of two users claiming one passkey wins must not depend
    // on dictionary order.
    for id in contents.users.keys.sorted() { apply(.putUser(contents.users[id]!)) }
    for torrent in contents.torrents.values { apply(.putTorrent(torrent)) }
    for token in contents.tokens.values { apply(.putToken(token)) }
    global = PackedFactors(contents.global)
    clientRules = contents.clientRules
    indexRules()
  }

  // MARK: Changes

  mutating func apply(_ change: RegistryChange) {
    switch change {
    case .putUser(let user): putUser(user)
    case .deleteUser(let id): deleteUser(id)
    case .putTorrent(let torrent):
      torrents[torrent.infoHash] = TorrentSlot(
        factors: PackedFactors(torrent.factors), state: torrent.state)
      torrentReasons[torrent.infoHash] = torrent.reason.isEmpty ? nil : torrent.reason
      forgetAlternateHash(of: torrent.infoHash)
      v2Hashes[torrent.infoHash] = torrent.v2InfoHash
      if let alternate = torrent.alternateAnnounceHash {
        keyByAlternateHash[alternate] = torrent.infoHash
      }
    case .deleteTorrent(let hash):
      torrents[hash] = nil
      torrentReasons[hash] = nil
      forgetAlternateHash(of: hash)
      v2Hashes[hash] = nil
    case .putToken(let token):
      tokens[TokenKey(token.userID, token.infoHash)] = PackedFactors(token.factors)
    case .deleteToken(let user, let hash): tokens[TokenKey(user, hash)] = nil
    case .putGlobal(let factors): global = PackedFactors(factors)
    case .deleteGlobal: global = PackedFactors(.none)
    case .putClientRule(let rule):
      clientRules[rule.prefix] = rule
      indexRules()
    case .deleteClientRule(let prefix):
      clientRules[prefix] = nil
      indexRules()
    }
  }

  private mutating func putUser(_ user: RegisteredUser) {
    let slot = UserSlot(
      id: user.id, passkey: user.passkey, factors: PackedFactors(user.factors),
      flags: (user.disabledReason == nil ? 0 : UserSlot.disabled)
        | (user.canLeech ? 0 : UserSlot.noLeech))
    let index: Int32
    if let existing = userByID[user.id] {
      index = existing
      let old = users[Int(index)].passkey
      if old != user.passkey, userByPasskey[old] == index { userByPasskey[old] = nil }
      users[Int(index)] = slot
    } else if let free = freeUserSlots.popLast() {
      index = free
      users[Int(index)] = slot
      userByID[user.id] = index
    } else {
      index = Int32(users.count)
      users.append(slot)
      userByID[user.id] = index
    }
    userByPasskey[user.passkey] = index
    if let reason = user.disabledReason, !reason.isEmpty {
      disabledReasons[user.id] = reason
    } else {
      disabledReasons[user.id] = nil
    }
  }

  private mutating func deleteUser(_ id: UserID) {
    guard let index = userByID.removeValue(forKey: id) else { return }
    let passkey = users[Int(index)].passkey
    if userByPasskey[passkey] == index { userByPasskey[passkey] = nil }
    disabledReasons[id] = nil
    freeUserSlots.append(index)
  }

  private mutating func forgetAlternateHash(of key: InfoHash) {
    guard let old = v2Hashes[key], keyByAlternateHash[old.announceHash] == key else { return }
    keyByAlternateHash[old.announceHash] = nil
  }

  private mutating func indexRules() {
    sortedRules = clientRules.values.sorted {
      $0.prefix.count != $1.prefix.count
        ? $0.prefix.count > $1.prefix.count : $0.prefix.lexicographicallyPrecedes($1.prefix)
    }
    allowRuleExists = sortedRules.contains { $0.action == .allow }
  }

  // MARK: Reads

  func user(at index: Int32) -> RegisteredUser {
    let slot = users[Int(index)]
    return RegisteredUser(
      id: slot.id, passkey: slot.passkey,
      disabledReason: slot.flags & UserSlot.disabled == 0 ? nil : disabledReasons[slot.id] ?? "",
      canLeech: slot.flags & UserSlot.noLeech == 0, factors: slot.factors.overrides)
  }

  func torrent(_ hash: InfoHash) -> RegisteredTorrent? {
    torrents[hash].map {
      RegisteredTorrent(
        infoHash: hash, v2InfoHash: v2Hashes[hash], state: $0.state,
        reason: torrentReasons[hash] ?? "", factors: $0.factors.overrides)
    }
  }

  /// The key of the torrent an announce or scrape hash names: the hash
  /// itself when a torrent is registered under it (a key always wins over
  /// another torrent's alternate hash), else the hybrid torrent whose v2
  /// hash starts with it, else the hash unchanged (unregistered).
  @inline(__always)
  func torrentKey(_ hash: InfoHash) -> InfoHash {
    if keyByAlternateHash.isEmpty || torrents[hash] != nil { return hash }
    return keyByAlternateHash[hash] ?? hash
  }

  /// Everything, as plain values (O(size)).
  var contents: RegistryContents {
    var contents = RegistryContents()
    for index in userByID.values { contents.users[users[Int(index)].id] = user(at: index) }
    for hash in torrents.keys { contents.torrents[hash] = torrent(hash) }
    for (key, factors) in tokens {
      contents.tokens[key] = FreeleechToken(
        userID: key.userID, infoHash: key.infoHash, factors: factors.overrides)
    }
    contents.global = global.overrides
    contents.clientRules = clientRules
    return contents
  }

  var counts: RegistryCounts {
    RegistryCounts(
      users: userByID.count, torrents: torrents.count, tokens: tokens.count,
      clientRules: clientRules.count, globalFactorsSet: global != PackedFactors(.none))
  }
}
