import BitTorrent
import Registry
import Testing

/// Hybrid (v1 + v2) and v2-only torrents in the registry: either hash of a
/// hybrid reaches the torrent's one key; v2-only torrents are keyed by
/// their announce hash; aliases follow the records that make them.
@Suite struct HybridTorrentTests {
  static let alice = UserID(high: 0xA11CE, low: 1)
  static let key1 = Passkey(hex: "11111111111111111111111111111111")!
  static let v1 = InfoHash(hex: String(repeating: "a1", count: 20))!
  static let v2 = V2InfoHash(hex: String(repeating: "b2", count: 32))!
  static let v2OnlyHash = V2InfoHash(hex: String(repeating: "c3", count: 32))!
  static let peer = PeerID(Array("-LT2000-abcdefghijkl".utf8))!
  static let registered = RegistryModes(users: .registered, torrents: .registered)

  static func verdict(_ registry: Registry, _ hash: InfoHash) -> ApprovalVerdict {
    registry.evaluate(
      passkey: key1, infoHash: hash, peerID: peer, isLeeching: true, modes: registered)
  }

  static func registry(_ torrents: RegisteredTorrent...) -> Registry {
    let registry = Registry()
    registry.apply([.putUser(RegisteredUser(id: alice, passkey: key1))])
    registry.apply(torrents.map { .putTorrent($0) })
    return registry
  }

  @Test func v2HashOfAHybridIsApprovedUnderTheV1Key() {
    let registry = Self.registry(
      RegisteredTorrent(infoHash: Self.v1, v2InfoHash: Self.v2, factors: .init(uploadPercent: 200)))
    let factors = CreditFactors(uploadPercent: 200, downloadPercent: 100)
    #expect(Self.verdict(registry, Self.v1) == .approved(userID: Self.alice, factors: factors))
    #expect(
      Self.verdict(registry, Self.v2.announceHash)
        == .approved(userID: Self.alice, factors: factors, torrentKey: Self.v1))
  }

  @Test func aHybridsStateAndTokensApplyToBothHashes() {
    let registry = Self.registry(
      RegisteredTorrent(infoHash: Self.v1, v2InfoHash: Self.v2, state: .pending, reason: "queue"))
    #expect(
      Self.verdict(registry, Self.v2.announceHash) == .refused(.pendingTorrent(reason: "queue")))
    registry.apply([
      .putTorrent(RegisteredTorrent(infoHash: Self.v1, v2InfoHash: Self.v2)),
      .putToken(
        FreeleechToken(userID: Self.alice, infoHash: Self.v1, factors: .init(downloadPercent: 0))),
    ])
    #expect(
      Self.verdict(registry, Self.v2.announceHash)
        == .approved(
          userID: Self.alice, factors: CreditFactors(uploadPercent: 100, downloadPercent: 0),
          torrentKey: Self.v1))
  }

  @Test func aV2OnlyTorrentIsKeyedByItsAnnounceHash() {
    let torrent = RegisteredTorrent(v2Only: Self.v2OnlyHash)
    #expect(torrent.infoHash == Self.v2OnlyHash.announceHash && torrent.v1InfoHash == nil)
    let registry = Self.registry(torrent)
    #expect(
      Self.verdict(registry, Self.v2OnlyHash.announceHash)
        == .approved(userID: Self.alice, factors: .unit))
    #expect(registry.torrentKeys(ofAlternateHashes: [Self.v2OnlyHash.announceHash]).isEmpty)
  }

  @Test func theAliasGoesWithItsRecord() {
    let registry = Self.registry(RegisteredTorrent(infoHash: Self.v1, v2InfoHash: Self.v2))
    // Re-put without the v2 hash: the v2 announce hash no longer names it.
    registry.apply(.putTorrent(RegisteredTorrent(infoHash: Self.v1)))
    #expect(
      Self.verdict(registry, Self.v2.announceHash) == .refused(.unregisteredTorrent(reason: "")))
    registry.apply(.putTorrent(RegisteredTorrent(infoHash: Self.v1, v2InfoHash: Self.v2)))
    registry.apply(.deleteTorrent(Self.v1))
    #expect(
      Self.verdict(registry, Self.v2.announceHash) == .refused(.unregisteredTorrent(reason: "")))
    #expect(registry.torrentKeys(ofAlternateHashes: [Self.v2.announceHash]).isEmpty)
  }

  @Test func aRegisteredKeyWinsOverAnotherTorrentsAlias() {
    // A torrent registered under the very hash another torrent's v2 starts
    // with (a site mistake, or a v2-only upload of the same content): its
    // own key decides, in any order of the records.
    let v2Only = RegisteredTorrent(v2Only: Self.v2, state: .pending, reason: "dupe")
    let hybrid = RegisteredTorrent(infoHash: Self.v1, v2InfoHash: Self.v2)
    for order in [[hybrid, v2Only], [v2Only, hybrid]] {
      let registry = Self.registry(order[0], order[1])
      #expect(
        Self.verdict(registry, Self.v2.announceHash) == .refused(.pendingTorrent(reason: "dupe")))
      #expect(registry.torrentKeys(ofAlternateHashes: [Self.v2.announceHash]).isEmpty)
    }
  }

  @Test func scrapesOfEitherHashReachTheKey() {
    let registry = Self.registry(RegisteredTorrent(infoHash: Self.v1, v2InfoHash: Self.v2))
    let unknown = InfoHash(hex: String(repeating: "dd", count: 20))!
    let asked = [Self.v1, Self.v2.announceHash, unknown]
    #expect(registry.scrapeable(asked, modes: Self.registered) == [Self.v1, Self.v2.announceHash])
    #expect(registry.torrentKeys(ofAlternateHashes: asked) == [Self.v2.announceHash: Self.v1])
  }

  @Test func recordCodecRoundTripsBothKinds() throws {
    for torrent in [
      RegisteredTorrent(infoHash: Self.v1, v2InfoHash: Self.v2),
      RegisteredTorrent(v2Only: Self.v2OnlyHash, state: .deleted, reason: "gone"),
    ] {
      let record = RegistryRecordCodec.encode(.putTorrent(torrent))
      #expect(record.key == torrent.infoHash.bytes)
      #expect(try RegistryRecordCodec.decode(record) == .putTorrent(torrent))
    }
  }

  @Test func recordCodecRejectsAMalformedV2Hash() throws {
    var record = RegistryRecordCodec.encode(
      .putTorrent(RegisteredTorrent(infoHash: Self.v1, v2InfoHash: Self.v2)))
    // Field 6 is last: drop its final byte and shorten its length prefix.
    record.value!.removeLast()
    record.value![record.value!.count - 32] = 31
    #expect(throws: RegistryRecordError.self) { try RegistryRecordCodec.decode(record) }
  }

  @Test func v2HashParsesOnly64HexCharacters() {
    #expect(
      V2InfoHash(hex: String(repeating: "ab", count: 32))?.bytes
        == Array(repeating: 0xAB, count: 32))
    #expect(V2InfoHash(hex: String(repeating: "ab", count: 20)) == nil)
    #expect(V2InfoHash(hex: String(repeating: "zz", count: 32)) == nil)
    #expect(Self.v2.description == String(repeating: "b2", count: 32))
  }
}
