import BitTorrent
import Registry
import Testing

/// The in-memory registry: lookups, passkey index, factor rule, client rules.
@Suite struct RegistryTests {
  static let alice = UserID(high: 0xA11CE, low: 1)
  static let bob = UserID(high: 0xB0B, low: 2)
  static let key1 = Passkey(hex: "11111111111111111111111111111111")!
  static let key2 = Passkey(hex: "22222222222222222222222222222222")!
  static let key3 = Passkey(hex: "33333333333333333333333333333333")!
  static let hash = InfoHash(hex: "0102030405060708090a0b0c0d0e0f1011121314")!
  static let other = InfoHash(hex: "ffffffffffffffffffffffffffffffffffffffff")!
  static let transmission = PeerID(Array("-TR3000-abcdefghijkl".utf8))!
  static let xunlei = PeerID(Array("-XL0012-abcdefghijkl".utf8))!
  static let registered = RegistryModes(users: .registered, torrents: .registered)

  static func verdict(
    _ registry: Registry, _ passkey: Passkey = key1, _ hash: InfoHash = hash,
    peer: PeerID = transmission, leeching: Bool = true, modes: RegistryModes = registered
  ) -> ApprovalVerdict {
    registry.evaluate(
      passkey: passkey, infoHash: hash, peerID: peer, isLeeching: leeching, modes: modes)
  }

  static func populated() -> Registry {
    let registry = Registry()
    registry.apply([
      .putUser(RegisteredUser(id: alice, passkey: key1)),
      .putTorrent(RegisteredTorrent(infoHash: hash)),
    ])
    return registry
  }

  @Test func registeredUserOnRegisteredTorrentIsApprovedAtUnitFactors() {
    #expect(Self.verdict(Self.populated()) == .approved(userID: Self.alice, factors: .unit))
  }

  @Test func everyRefusalOfTheTable() {
    let registry = Self.populated()
    #expect(Self.verdict(registry, Self.key2) == .refused(.unknownPasskey))
    #expect(
      Self.verdict(registry, Self.key1, Self.other) == .refused(.unregisteredTorrent(reason: "")))
    registry.apply(
      .putTorrent(RegisteredTorrent(infoHash: Self.hash, state: .deleted, reason: "dupe")))
    #expect(Self.verdict(registry) == .refused(.unregisteredTorrent(reason: "dupe")))
    #expect(Refusal.unregisteredTorrent(reason: "dupe").message == "unregistered torrent: dupe")
    registry.apply(.putTorrent(RegisteredTorrent(infoHash: Self.hash, state: .pending, reason: "")))
    #expect(Self.verdict(registry) == .refused(.pendingTorrent(reason: "")))
    #expect(Refusal.pendingTorrent(reason: "").message == "torrent pending moderation")
    registry.apply(.putTorrent(RegisteredTorrent(infoHash: Self.hash)))
    registry.apply(.putUser(RegisteredUser(id: Self.alice, passkey: Self.key1, canLeech: false)))
    #expect(Self.verdict(registry) == .refused(.leechingDisabled))
    #expect(
      Self.verdict(registry, leeching: false) == .approved(userID: Self.alice, factors: .unit))
    registry.apply(
      .putUser(RegisteredUser(id: Self.alice, passkey: Self.key1, disabledReason: "ratio watch")))
    #expect(Self.verdict(registry, leeching: false) == .refused(.disabled(reason: "ratio watch")))
    #expect(Refusal.disabled(reason: "").message == "account disabled")
  }

  @Test func rotatingAPasskeyRetiresTheOldOneAtOnce() {
    let registry = Self.populated()
    registry.apply(.putUser(RegisteredUser(id: Self.alice, passkey: Self.key2)))
    #expect(Self.verdict(registry, Self.key1) == .refused(.unknownPasskey))
    #expect(Self.verdict(registry, Self.key2) == .approved(userID: Self.alice, factors: .unit))
    #expect(registry.counts.users == 1)
  }

  @Test func aPasskeyTakenOverByAnotherUserIsNotFreedWhenTheFirstIsDeleted() {
    let registry = Self.populated()
    // Bob is given Alice's passkey (the later record wins), then Alice is deleted.
    registry.apply(.putUser(RegisteredUser(id: Self.bob, passkey: Self.key1)))
    registry.apply(.deleteUser(Self.alice))
    #expect(Self.verdict(registry, Self.key1) == .approved(userID: Self.bob, factors: .unit))
    registry.apply(.deleteUser(Self.bob))
    #expect(Self.verdict(registry, Self.key1) == .refused(.unknownPasskey))
    #expect(registry.counts.users == 0)
  }

  @Test func factorRuleUploadLargestDownloadSmallestAbsentIs100() {
    let registry = Self.populated()
    registry.apply([
      .putUser(
        RegisteredUser(
          id: Self.alice, passkey: Self.key1, factors: FactorOverrides(uploadPercent: 150))),
      .putTorrent(
        RegisteredTorrent(
          infoHash: Self.hash, factors: FactorOverrides(uploadPercent: 200, downloadPercent: 50))),
    ])
    #expect(
      Self.verdict(registry)
        == .approved(
          userID: Self.alice, factors: CreditFactors(uploadPercent: 200, downloadPercent: 50)))
    registry.apply([
      .putToken(
        FreeleechToken(
          userID: Self.alice, infoHash: Self.hash, factors: FactorOverrides(downloadPercent: 0))),
      .putGlobal(FactorOverrides(uploadPercent: 100, downloadPercent: 80)),
    ])
    #expect(
      Self.verdict(registry)
        == .approved(
          userID: Self.alice, factors: CreditFactors(uploadPercent: 200, downloadPercent: 0)))
    // The token is Alice's only.
    registry.apply(.putUser(RegisteredUser(id: Self.bob, passkey: Self.key3)))
    #expect(
      Self.verdict(registry, Self.key3)
        == .approved(
          userID: Self.bob, factors: CreditFactors(uploadPercent: 200, downloadPercent: 50)))
    registry.apply([.deleteGlobal, .deleteToken(Self.alice, Self.hash)])
    #expect(
      FactorResolution.resolve(global: .none, user: .none, torrent: .none, token: .none) == .unit)
  }

  @Test func clientRulesLongestPrefixDecidesAndAnAllowListRefusesTheRest() {
    let registry = Self.populated()
    registry.apply(
      .putClientRule(ClientRule(prefix: Array("-XL".utf8), action: .deny, reason: "Xunlei")))
    #expect(
      Self.verdict(registry, peer: Self.xunlei) == .refused(.clientNotAllowed(reason: "Xunlei")))
    #expect(Self.verdict(registry) == .approved(userID: Self.alice, factors: .unit))
    // A longer allow beats the shorter deny.
    registry.apply(.putClientRule(ClientRule(prefix: Array("-XL0012".utf8), action: .allow)))
    #expect(
      Self.verdict(registry, peer: Self.xunlei) == .approved(userID: Self.alice, factors: .unit))
    // With an allow rule in place, clients no rule matches are refused.
    #expect(Self.verdict(registry) == .refused(.clientNotAllowed(reason: "")))
    registry.apply(.deleteClientRule(prefix: Array("-XL0012".utf8)))
    #expect(Self.verdict(registry) == .approved(userID: Self.alice, factors: .unit))
  }

  @Test func passkeyIsUserIDModeAdmitsAnyPasskeyButHonoursRecords() {
    let registry = Registry()
    let open = RegistryModes()
    #expect(
      Self.verdict(registry, Self.key3, modes: open)
        == .approved(userID: Self.key3.asUserID, factors: .unit))
    registry.apply(
      .putUser(RegisteredUser(id: Self.key3.asUserID, passkey: Self.key3, disabledReason: "banned"))
    )
    #expect(Self.verdict(registry, Self.key3, modes: open) == .refused(.disabled(reason: "banned")))
    registry.apply(.putTorrent(RegisteredTorrent(infoHash: Self.other, state: .deleted)))
    #expect(
      Self.verdict(registry, Self.key2, Self.other, modes: open)
        == .refused(.unregisteredTorrent(reason: "")))
  }

  @Test func scrapesSeeOnlyActiveTorrentsAndNeedARegisteredPasskey() {
    let registry = Self.populated()
    registry.apply(.putTorrent(RegisteredTorrent(infoHash: Self.other, state: .pending)))
    #expect(registry.scrapeable([Self.other, Self.hash], modes: Self.registered) == [Self.hash])
    #expect(registry.scrapeRefusal(passkey: Self.key2, modes: Self.registered) == .unknownPasskey)
    #expect(registry.scrapeRefusal(passkey: Self.key1, modes: Self.registered) == nil)
    let unknown = InfoHash(hex: "abababababababababababababababababababab")!
    #expect(registry.scrapeable([unknown], modes: RegistryModes()) == [unknown])
  }

  @Test func replaceAllSwapsEverythingAtOnce() {
    let registry = Self.populated()
    var contents = RegistryContents()
    contents.apply(.putUser(RegisteredUser(id: Self.bob, passkey: Self.key2)))
    registry.replaceAll(with: contents)
    #expect(Self.verdict(registry, Self.key1) == .refused(.unknownPasskey))
    #expect(
      Self.verdict(registry, Self.key2, Self.hash) == .refused(.unregisteredTorrent(reason: "")))
    #expect(registry.contents == contents)
  }
}
