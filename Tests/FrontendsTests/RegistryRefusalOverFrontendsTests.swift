import Accounting
import BitTorrent
import DeltaModel
import Frontends
import NIOCore
import PrivtrakTestSupport
import Registry
import Synchronization
import Testing
import Tracker

/// The registry's refusal table and credit factors end to end: a tracker
/// whose pre-hooks are `[RegistryApproval, AccountingMiddleware]`, driven
/// over real HTTP and UDP sockets. Every refused announce must reach the
/// client with its message (a bencoded `failure reason`, or a BEP 15 error
/// packet), store no peer and publish no delta; a refused `stopped` gets a
/// silent success; approved announces carry the resolved factors in their
/// deltas.
@Suite("Registry refusals and credit factors over the real frontends")
struct RegistryRefusalOverFrontendsTests {
  // MARK: Fixture

  /// Collects every published delta.
  final class CollectingSink: DeltaSink {
    private let batches = Mutex<[DeltaBatch]>([])
    func publish(_ batch: DeltaBatch) async throws { batches.withLock { $0.append(batch) } }
    func close() async throws {}
    var deltas: [Delta] { batches.withLock { $0.flatMap(\.deltas) } }
  }

  /// The frontend a test talks to.
  enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case http
    case udp
    var testDescription: String { rawValue.uppercased() }
  }

  /// The tracker's own interval (what an admitted announce is answered with).
  static let trackerInterval: UInt32 = 1800
  /// The approval hook's interval: only a refused stop's silent success carries it.
  static let silentSuccessInterval: UInt32 = 1234
  /// BEP 31 `retry in` minutes the approval hook gives a pending torrent.
  static let pendingRetryMinutes = 7

  static let registeredModes = RegistryModes(users: .registered, torrents: .registered)

  /// Registered users whose ids are not their passkeys' bytes, so a delta
  /// carrying the id proves the registry mapped the passkey.
  static let alice = RegisteredUser(
    id: UserID(high: 0xA11CE, low: 1), passkey: Passkey(hex: "a11ce00000000000000000000000c0de")!)
  static let bob = RegisteredUser(
    id: UserID(high: 0xB0B, low: 2), passkey: Passkey(hex: "b0b0000000000000000000000000beef")!)
  /// Well-formed, never registered.
  static let strangerPasskey = "ffffffffffffffffffffffffffffffff"

  /// Registered and active in every test's base registry.
  static let torrent = makeInfoHash(0x51)
  /// Registered and active too (for "the token is per torrent").
  static let secondTorrent = makeInfoHash(0x52)
  /// Never registered.
  static let unknownTorrent = makeInfoHash(0x61)
  /// `-TS0001-000000000001`.
  static let client = makePeerID(1)

  /// Alice's and Bob's records and the two active torrents.
  static let base: [RegistryChange] = [
    .putUser(alice), .putUser(bob),
    .putTorrent(RegisteredTorrent(infoHash: torrent)),
    .putTorrent(RegisteredTorrent(infoHash: secondTorrent)),
  ]

  static func user(
    _ user: RegisteredUser, _ change: (inout RegisteredUser) -> Void
  ) -> RegisteredUser {
    var user = user
    change(&user)
    return user
  }

  /// A 20-byte peer id: `prefix` then digits of `number`.
  static func peerID(_ prefix: String, _ number: Int) -> PeerID {
    let head = Array(prefix.utf8)
    var tail = Array(String(number).utf8)
    while head.count + tail.count < 20 { tail.insert(UInt8(ascii: "0"), at: 0) }
    return PeerID(head + tail)!
  }

  struct Harness {
    let registry: Registry
    let sink: CollectingSink
    let accounting: AccountingMiddleware
    let tracker: Tracker
  }

  /// A tracker with pre-hooks `[RegistryApproval, AccountingMiddleware]`
  /// (with ``ShardOwnership`` between them when `shard` is given).
  /// `emitStopped`: an admitted `stopped`, even one with no entry, would
  /// publish a delta, so "a refused stop emits nothing" can fail.
  /// Scrapes need no passkey as far as accounting is concerned: whether a
  /// scrape needs one is the approval hook's decision here (BEP 15 scrapes
  /// cannot carry one).
  static func harness(
    modes: RegistryModes = registeredModes, changes: [RegistryChange] = base,
    shard: TrackerShard? = nil
  ) async -> Harness {
    let registry = Registry()
    registry.apply(changes)
    let sink = CollectingSink()
    let accounting = await AccountingMiddleware(
      configuration: AccountingConfiguration(
        emitStopped: true, requirePasskeyForScrape: false, snapshotInterval: nil),
      sink: sink, logger: testLogger)
    let approval = RegistryApproval(
      registry: registry, modes: modes, announceInterval: silentSuccessInterval,
      pendingRetryMinutes: pendingRetryMinutes)
    let tracker = Tracker(
      configuration: TrackerConfiguration(announceInterval: trackerInterval),
      preHooks: [approval]
        + (shard.map { [ShardOwnership(shard: $0, announceInterval: silentSuccessInterval)] } ?? [])
        + [accounting])
    return Harness(registry: registry, sink: sink, accounting: accounting, tracker: tracker)
  }

  /// Publishes what is pending (bounded) and returns every delta so far.
  static func flushedDeltas(_ harness: Harness) async throws -> [Delta] {
    let accounting = harness.accounting
    let flushed = try await Task { await accounting.flush() }.value(
      within: .seconds(30), "the accounting flush returns")
    #expect(flushed, "everything pending was published")
    return harness.sink.deltas
  }

  /// No delta published, no accounting entry, no peer in the swarm of `infoHash` nor anywhere.
  static func expectNothingRecorded(
    _ harness: Harness, on infoHash: InfoHash, sourceLocation: SourceLocation = #_sourceLocation
  ) async throws {
    let deltas = try await flushedDeltas(harness)
    #expect(deltas.isEmpty, "no delta published: \(deltas)", sourceLocation: sourceLocation)
    #expect(
      harness.accounting.statistics().entries == 0, "no accounting entry",
      sourceLocation: sourceLocation)
    #expect(
      harness.tracker.peerStore.scrape(infoHash)
        == ScrapeStats(complete: 0, incomplete: 0, downloaded: 0),
      "no peer stored for the torrent", sourceLocation: sourceLocation)
    let census = harness.tracker.peerStore.census()
    #expect(
      census.swarms == 0 && census.seeders == 0 && census.leechers == 0, "no swarm at all",
      sourceLocation: sourceLocation)
  }

  /// What the tracker answered, over either frontend.
  struct Answer: CustomStringConvertible {
    var transport: Transport
    /// HTTP status; nil over UDP.
    var httpStatus: Int?
    /// BEP 15 action of the answer (1 announce, 2 scrape, 3 error); nil over HTTP.
    var udpAction: UInt32?
    /// The `failure reason` or the UDP error message.
    var failure: String?
    /// The bencoded BEP 31 `retry in`; always nil over UDP.
    var retryIn: Int64?
    var interval: Int64?
    var seeders: Int64?
    var leechers: Int64?

    var description: String {
      "\(transport) status=\(httpStatus.map(String.init) ?? "-") action=\(udpAction.map(String.init) ?? "-") failure=\(failure ?? "nil") retryIn=\(retryIn.map(String.init) ?? "nil") interval=\(interval.map(String.init) ?? "nil")"
    }
  }

  /// One HTTP connection and one verified UDP client to the same tracker.
  final class Clients {
    let http: TestHTTPConnection
    let udp: TestUDPClient
    let connectionID: UInt64
    private var transactionID: UInt32 = 0x5000

    init(http: TestHTTPConnection, udp: TestUDPClient, connectionID: UInt64) {
      self.http = http
      self.udp = udp
      self.connectionID = connectionID
    }

    func nextTransactionID() -> UInt32 {
      transactionID += 1
      return transactionID
    }

    func announce(
      _ transport: Transport, passkey: String, infoHash: InfoHash = torrent,
      peerID: PeerID = client, left: Int64, uploaded: Int64 = 0, downloaded: Int64 = 0,
      event: AnnounceEvent = .none, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> Answer {
      switch transport {
      case .http:
        let target =
          "/\(passkey)/announce?"
          + announceQuery(
            infoHash: infoHash, peerID: peerID, port: 6881, left: UInt64(left),
            event: event == .none ? nil : event.description,
            extra: [("uploaded", String(uploaded)), ("downloaded", String(downloaded))])
        let response = try await http.get(target)
        let body = try response.bencode()
        return Answer(
          transport: .http, httpStatus: response.status, failure: body["failure reason"]?.text,
          retryIn: body["retry in"]?.integer, interval: body["interval"]?.integer,
          seeders: body["complete"]?.integer, leechers: body["incomplete"]?.integer)
      case .udp:
        let id = nextTransactionID()
        let packet = try await udp.exchange(
          UDPPackets.announce(
            connectionID: connectionID, transactionID: id, infoHash: infoHash, peerID: peerID,
            downloaded: downloaded, left: left, uploaded: uploaded,
            event: UInt32(event.rawValue), port: 6881,
            options: UDPPackets.urlData("/\(passkey)/announce")))
        try #require(
          packet.count >= 8, "a BEP 15 answer: \(packet)", sourceLocation: sourceLocation)
        #expect(
          packet.readUInt32(at: 4) == id, "the answer's transaction id",
          sourceLocation: sourceLocation)
        var answer = Answer(transport: .udp, udpAction: packet.readUInt32(at: 0))
        if answer.udpAction == 3 { answer.failure = packet.udpErrorMessage }
        if answer.udpAction == 1, packet.count >= 20 {
          answer.interval = Int64(packet.readUInt32(at: 8))
          answer.leechers = Int64(packet.readUInt32(at: 12))
          answer.seeders = Int64(packet.readUInt32(at: 16))
        }
        return answer
      }
    }

    /// An HTTP scrape of `hashes` as `passkey` (nil: `/scrape`).
    func httpScrape(passkey: String?, _ hashes: [InfoHash]) async throws -> TestHTTPResponse {
      let path = passkey.map { "/\($0)/scrape" } ?? "/scrape"
      return try await http.get(
        path + "?" + hashes.map { "info_hash=" + percentEncode($0.bytes) }.joined(separator: "&"))
    }

    /// A BEP 15 scrape; returns the raw answer after checking its transaction id.
    func udpScrape(_ hashes: [InfoHash]) async throws -> [UInt8] {
      let id = nextTransactionID()
      let packet = try await udp.exchange(
        UDPPackets.scrape(connectionID: connectionID, transactionID: id, infoHashes: hashes))
      try #require(packet.count >= 8, "a BEP 15 answer: \(packet)")
      #expect(packet.readUInt32(at: 4) == id, "the answer's transaction id")
      return packet
    }
  }

  /// Starts both frontends on `harness.tracker` and connects a client to each.
  static func withFrontends(
    _ harness: Harness, _ body: (Clients) async throws -> Void
  ) async throws {
    try await withHTTPFrontend(tracker: harness.tracker) { _, httpAddress in
      try await withUDPFrontend(tracker: harness.tracker) { _, udpAddress in
        let http = try await TestHTTPConnection.connect(to: httpAddress)
        let udp = try await TestUDPClient.connect(to: udpAddress, bindHost: "127.0.0.1")
        let connectionID = try await udp.connectionID()
        try await body(Clients(http: http, udp: udp, connectionID: connectionID))
      }
    }
  }

  /// Refused with `message`: a `failure reason` in a 200 (with `retry in`
  /// exactly when `retryIn` is given) or a UDP error packet.
  static func expectRefused(
    _ answer: Answer, _ message: String, retryIn: Int64? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    #expect(answer.failure == message, "\(answer)", sourceLocation: sourceLocation)
    switch answer.transport {
    case .http:
      #expect(answer.httpStatus == 200, "\(answer)", sourceLocation: sourceLocation)
      #expect(
        answer.retryIn == retryIn, "BEP 31 retry in: \(answer)", sourceLocation: sourceLocation)
      #expect(
        answer.interval == nil, "no announce answer: \(answer)", sourceLocation: sourceLocation)
    case .udp:
      #expect(answer.udpAction == 3, "an error packet: \(answer)", sourceLocation: sourceLocation)
    }
  }

  /// Admitted: the tracker's own answer (its interval, not the silent success's).
  static func expectAdmitted(_ answer: Answer, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(answer.failure == nil, "\(answer)", sourceLocation: sourceLocation)
    #expect(
      answer.interval == Int64(trackerInterval), "the tracker's answer: \(answer)",
      sourceLocation: sourceLocation)
    switch answer.transport {
    case .http: #expect(answer.httpStatus == 200, "\(answer)", sourceLocation: sourceLocation)
    case .udp: #expect(answer.udpAction == 1, "\(answer)", sourceLocation: sourceLocation)
    }
  }

  /// The silent success of a refused stop: an announce answer with the
  /// approval hook's interval and an empty swarm, no failure.
  static func expectSilentSuccess(
    _ answer: Answer, sourceLocation: SourceLocation = #_sourceLocation
  ) {
    #expect(answer.failure == nil, "no failure: \(answer)", sourceLocation: sourceLocation)
    #expect(answer.retryIn == nil, "\(answer)", sourceLocation: sourceLocation)
    #expect(
      answer.interval == Int64(silentSuccessInterval), "the silent success's interval: \(answer)",
      sourceLocation: sourceLocation)
    #expect(
      answer.seeders == 0 && answer.leechers == 0, "an empty swarm: \(answer)",
      sourceLocation: sourceLocation)
    switch answer.transport {
    case .http: #expect(answer.httpStatus == 200, "\(answer)", sourceLocation: sourceLocation)
    case .udp:
      #expect(
        answer.udpAction == 1, "an announce answer: \(answer)", sourceLocation: sourceLocation)
    }
  }

  // MARK: The refusal table

  /// One row of the refusal table: the registry, the request, the message.
  struct RefusalRow: Sendable, CustomTestStringConvertible {
    var name: String
    var changes: [RegistryChange] = base
    var passkey: String = alice.passkey.hex
    var infoHash: InfoHash = torrent
    var peerID: PeerID = client
    var left: Int64 = 1000
    var message: String
    var retryIn: Int64? = nil
    var testDescription: String { name }
  }

  static let refusalRows: [RefusalRow] = [
    RefusalRow(
      name: "unknown passkey", passkey: strangerPasskey, message: "passkey not recognised"),
    RefusalRow(
      name: "user disabled with a reason",
      changes: base + [
        .putUser(user(alice) { $0.disabledReason = "ratio too low, see the forums" })
      ],
      message: "ratio too low, see the forums"),
    RefusalRow(
      name: "user disabled without a reason",
      changes: base + [.putUser(user(alice) { $0.disabledReason = "" })],
      message: "account disabled"),
    RefusalRow(
      name: "user may not leech, left > 0",
      changes: base + [.putUser(user(alice) { $0.canLeech = false })],
      message: "downloading disabled for your account"),
    RefusalRow(
      name: "torrent unknown", infoHash: unknownTorrent, message: "unregistered torrent"),
    RefusalRow(
      name: "torrent deleted with a reason",
      changes: base + [
        .putTorrent(RegisteredTorrent(infoHash: torrent, state: .deleted, reason: "dupe of #4711"))
      ],
      message: "unregistered torrent: dupe of #4711"),
    RefusalRow(
      name: "torrent removed (tombstone)", changes: base + [.deleteTorrent(torrent)],
      message: "unregistered torrent"),
    RefusalRow(
      name: "torrent pending with a reason",
      changes: base + [
        .putTorrent(
          RegisteredTorrent(
            infoHash: torrent, state: .pending, reason: "awaiting moderation: no NFO"))
      ],
      message: "awaiting moderation: no NFO", retryIn: Int64(pendingRetryMinutes)),
    RefusalRow(
      name: "torrent pending without a reason",
      changes: base + [.putTorrent(RegisteredTorrent(infoHash: torrent, state: .pending))],
      message: "torrent pending moderation", retryIn: Int64(pendingRetryMinutes)),
    RefusalRow(
      name: "client denied by peer-id prefix",
      changes: base + [
        .putClientRule(
          ClientRule(prefix: Array("-TS".utf8), action: .deny, reason: "leaks passkeys"))
      ],
      message: "client not allowed: leaks passkeys"),
    RefusalRow(
      name: "client not on the allow list",
      changes: base + [.putClientRule(ClientRule(prefix: Array("-qB".utf8), action: .allow))],
      message: "client not allowed"),
  ]

  @Test(
    "a refused announce gets its message and stores and publishes nothing",
    arguments: refusalRows, Transport.allCases)
  func refusedAnnounce(_ row: RefusalRow, over transport: Transport) async throws {
    let harness = await Self.harness(changes: row.changes)
    try await Self.withFrontends(harness) { clients in
      // A start, then progress with bytes: admitted, these would store a
      // peer and publish a delta.
      let started = try await clients.announce(
        transport, passkey: row.passkey, infoHash: row.infoHash, peerID: row.peerID,
        left: row.left, event: .started)
      Self.expectRefused(started, row.message, retryIn: row.retryIn)
      let progress = try await clients.announce(
        transport, passkey: row.passkey, infoHash: row.infoHash, peerID: row.peerID,
        left: row.left / 2, uploaded: 4096, downloaded: row.left / 2)
      Self.expectRefused(progress, row.message, retryIn: row.retryIn)
    }
    try await Self.expectNothingRecorded(harness, on: row.infoHash)
  }

  @Test(
    "a refused stop gets a silent success and stores and publishes nothing",
    arguments: refusalRows, Transport.allCases)
  func refusedStop(_ row: RefusalRow, over transport: Transport) async throws {
    let harness = await Self.harness(changes: row.changes)
    try await Self.withFrontends(harness) { clients in
      let stopped = try await clients.announce(
        transport, passkey: row.passkey, infoHash: row.infoHash, peerID: row.peerID,
        left: row.left, uploaded: 4096, downloaded: 512, event: .stopped)
      Self.expectSilentSuccess(stopped)
    }
    try await Self.expectNothingRecorded(harness, on: row.infoHash)
  }

  /// The control of the two tests above: the same requests from a
  /// registered user on an active torrent are stored and counted, so their
  /// "nothing recorded" checks can fail.
  @Test(
    "control: a registered user on an active torrent is stored and counted",
    arguments: Transport.allCases)
  func admittedAnnounceIsRecorded(over transport: Transport) async throws {
    let harness = await Self.harness()
    try await Self.withFrontends(harness) { clients in
      let passkey = Self.alice.passkey.hex
      Self.expectAdmitted(
        try await clients.announce(transport, passkey: passkey, left: 1000, event: .started))
      let progress = try await clients.announce(
        transport, passkey: passkey, left: 500, uploaded: 4096, downloaded: 500)
      Self.expectAdmitted(progress)
      #expect(progress.leechers == 1, "the peer is in the swarm: \(progress)")
      #expect(
        harness.tracker.peerStore.scrape(Self.torrent)
          == ScrapeStats(complete: 0, incomplete: 1, downloaded: 0))
      #expect(harness.accounting.statistics().entries == 1)
      let stopped = try await clients.announce(
        transport, passkey: passkey, left: 500, uploaded: 4096, downloaded: 500, event: .stopped)
      #expect(stopped.failure == nil && stopped.interval == Int64(Self.trackerInterval))
    }
    let deltas = try await Self.flushedDeltas(harness)
    #expect(deltas.map(\.event) == [.none, .stopped])
    #expect(deltas.allSatisfy { $0.userID == Self.alice.id && $0.infoHash == Self.torrent })
    #expect(deltas.first?.uploaded == 4096 && deltas.first?.downloaded == 500)
    #expect(
      harness.tracker.peerStore.scrape(Self.torrent)
        == ScrapeStats(complete: 0, incomplete: 0, downloaded: 0), "the stop removed the peer")
    #expect(harness.accounting.statistics().entries == 0, "the stop removed the entry")
  }

  @Test(
    "a user who may not leech is refused while leeching and admitted and counted while seeding",
    arguments: Transport.allCases)
  func noLeechUserMaySeed(over transport: Transport) async throws {
    let harness = await Self.harness(
      changes: Self.base + [.putUser(Self.user(Self.alice) { $0.canLeech = false })])
    let passkey = Self.alice.passkey.hex
    try await Self.withFrontends(harness) { clients in
      Self.expectRefused(
        try await clients.announce(
          transport, passkey: passkey, peerID: Self.peerID("-TS0001-", 2), left: 1,
          event: .started),
        "downloading disabled for your account")
      Self.expectAdmitted(
        try await clients.announce(transport, passkey: passkey, left: 0, event: .started))
      let seeding = try await clients.announce(transport, passkey: passkey, left: 0, uploaded: 7000)
      Self.expectAdmitted(seeding)
      #expect(seeding.seeders == 1 && seeding.leechers == 0, "\(seeding)")
    }
    let deltas = try await Self.flushedDeltas(harness)
    #expect(deltas.count == 1, "\(deltas)")
    let delta = try #require(deltas.first)
    #expect(delta.userID == Self.alice.id)
    #expect(delta.uploaded == 7000 && delta.downloaded == 0 && delta.seeding)
    #expect(
      harness.tracker.peerStore.scrape(Self.torrent)
        == ScrapeStats(complete: 1, incomplete: 0, downloaded: 0))
    #expect(harness.accounting.statistics().entries == 1, "only the seeding client has an entry")
  }

  @Test(
    "once an allow rule exists an unlisted client is refused and a listed one admitted",
    arguments: Transport.allCases)
  func allowListAppliesOnceARuleExists(over transport: Transport) async throws {
    let harness = await Self.harness()
    let passkey = Self.alice.passkey.hex
    let transmission = Self.peerID("-TR3000-", 1)
    let qBittorrent = Self.peerID("-qB4650-", 2)
    try await Self.withFrontends(harness) { clients in
      // No rule: every client gets in.
      Self.expectAdmitted(
        try await clients.announce(
          transport, passkey: passkey, peerID: transmission, left: 1000, event: .started))
      harness.registry.apply(
        .putClientRule(ClientRule(prefix: Array("-qB".utf8), action: .allow)))
      Self.expectRefused(
        try await clients.announce(
          transport, passkey: passkey, peerID: transmission, left: 500, uploaded: 300,
          downloaded: 500),
        "client not allowed")
      Self.expectAdmitted(
        try await clients.announce(
          transport, passkey: passkey, peerID: qBittorrent, left: 1000, event: .started))
      Self.expectAdmitted(
        try await clients.announce(
          transport, passkey: passkey, peerID: qBittorrent, left: 800, uploaded: 10,
          downloaded: 200))
    }
    let deltas = try await Self.flushedDeltas(harness)
    #expect(deltas.count == 1, "only the listed client's progress is counted: \(deltas)")
    #expect(deltas.first?.uploaded == 10 && deltas.first?.downloaded == 200)
    #expect(harness.accounting.statistics().entries == 2, "the refused progress changed nothing")
  }

  @Test("the longest matching client prefix decides", arguments: Transport.allCases)
  func longestPrefixDecides(over transport: Transport) async throws {
    let rules: [RegistryChange] = [
      .putClientRule(
        ClientRule(prefix: Array("-TS".utf8), action: .deny, reason: "old test suite")),
      .putClientRule(ClientRule(prefix: Array("-TS0001-".utf8), action: .allow)),
      .putClientRule(ClientRule(prefix: Array("-qB".utf8), action: .allow)),
      .putClientRule(
        ClientRule(prefix: Array("-qB4500".utf8), action: .deny, reason: "buggy 4.5.0")),
    ]
    let harness = await Self.harness(changes: Self.base + rules)
    let passkey = Self.alice.passkey.hex
    let cases: [(peer: PeerID, refusal: String?)] = [
      (Self.peerID("-TS0001-", 1), nil),  // allow -TS0001- beats deny -TS
      (Self.peerID("-TS0002-", 2), "client not allowed: old test suite"),
      (Self.peerID("-qB4610-", 3), nil),
      // deny -qB4500 beats allow -qB
      (Self.peerID("-qB4500-", 4), "client not allowed: buggy 4.5.0"),
      (Self.peerID("-TR3000-", 5), "client not allowed"),  // no rule matches; allow rules exist
    ]
    try await Self.withFrontends(harness) { clients in
      for (peer, refusal) in cases {
        let answer = try await clients.announce(
          transport, passkey: passkey, peerID: peer, left: 0, event: .started)
        if let refusal {
          Self.expectRefused(answer, refusal)
        } else {
          Self.expectAdmitted(answer)
        }
      }
    }
    #expect(
      harness.tracker.peerStore.scrape(Self.torrent)
        == ScrapeStats(complete: 2, incomplete: 0, downloaded: 0), "the two admitted clients")
    #expect(harness.accounting.statistics().entries == 2)
  }

  // MARK: Factors

  struct FactorRow: Sendable, CustomTestStringConvertible {
    var name: String
    var changes: [RegistryChange]
    var expected: CreditFactors
    var testDescription: String { name }
  }

  static let factorRows: [FactorRow] = [
    FactorRow(name: "no factor set", changes: base, expected: .unit),
    FactorRow(
      name: "freeleech torrent",
      changes: base + [
        .putTorrent(
          RegisteredTorrent(infoHash: torrent, factors: FactorOverrides(downloadPercent: 0)))
      ],
      expected: CreditFactors(uploadPercent: 100, downloadPercent: 0)),
    FactorRow(
      name: "double upload torrent",
      changes: base + [
        .putTorrent(
          RegisteredTorrent(infoHash: torrent, factors: FactorOverrides(uploadPercent: 200)))
      ],
      expected: CreditFactors(uploadPercent: 200, downloadPercent: 100)),
    FactorRow(
      name: "global freeleech event and a user upload factor of 150",
      changes: base + [
        .putGlobal(FactorOverrides(downloadPercent: 0)),
        .putUser(user(alice) { $0.factors = FactorOverrides(uploadPercent: 150) }),
      ],
      expected: CreditFactors(uploadPercent: 150, downloadPercent: 0)),
    FactorRow(
      name: "all four records: upload the largest, download the smallest",
      changes: base + [
        .putGlobal(FactorOverrides(uploadPercent: 130, downloadPercent: 75)),
        .putUser(
          user(alice) { $0.factors = FactorOverrides(uploadPercent: 150, downloadPercent: 50) }),
        .putTorrent(
          RegisteredTorrent(
            infoHash: torrent, factors: FactorOverrides(uploadPercent: 200, downloadPercent: 90))),
        .putToken(
          FreeleechToken(
            userID: alice.id, infoHash: torrent,
            factors: FactorOverrides(uploadPercent: 120, downloadPercent: 60))),
      ],
      expected: CreditFactors(uploadPercent: 200, downloadPercent: 50)),
  ]

  @Test("deltas carry the factors in force", arguments: factorRows, Transport.allCases)
  func deltasCarryFactors(_ row: FactorRow, over transport: Transport) async throws {
    let harness = await Self.harness(changes: row.changes)
    try await Self.withFrontends(harness) { clients in
      let passkey = Self.alice.passkey.hex
      Self.expectAdmitted(
        try await clients.announce(transport, passkey: passkey, left: 1000, event: .started))
      Self.expectAdmitted(
        try await clients.announce(
          transport, passkey: passkey, left: 600, uploaded: 1000, downloaded: 400))
    }
    let deltas = try await Self.flushedDeltas(harness)
    #expect(deltas.count == 1, "\(deltas)")
    let delta = try #require(deltas.first)
    #expect(delta.factors == row.expected)
    #expect(delta.userID == Self.alice.id)
    #expect(delta.uploaded == 1000 && delta.downloaded == 400, "bytes as reported, unscaled")
  }

  @Test(
    "a freeleech token applies to its user on its torrent only",
    arguments: Transport.allCases)
  func tokenIsPerUserAndTorrent(over transport: Transport) async throws {
    let harness = await Self.harness(
      changes: Self.base + [
        .putToken(
          FreeleechToken(
            userID: Self.alice.id, infoHash: Self.torrent,
            factors: FactorOverrides(downloadPercent: 0)))
      ])
    try await Self.withFrontends(harness) { clients in
      let sessions: [(RegisteredUser, InfoHash, PeerID)] = [
        (Self.alice, Self.torrent, Self.peerID("-TS0001-", 1)),
        (Self.bob, Self.torrent, Self.peerID("-TS0001-", 2)),
        (Self.alice, Self.secondTorrent, Self.peerID("-TS0001-", 3)),
      ]
      for (user, infoHash, peer) in sessions {
        Self.expectAdmitted(
          try await clients.announce(
            transport, passkey: user.passkey.hex, infoHash: infoHash, peerID: peer, left: 1000,
            event: .started))
        Self.expectAdmitted(
          try await clients.announce(
            transport, passkey: user.passkey.hex, infoHash: infoHash, peerID: peer, left: 500,
            uploaded: 50, downloaded: 500))
      }
    }
    let deltas = try await Self.flushedDeltas(harness)
    #expect(deltas.count == 3, "\(deltas)")
    func factors(_ user: RegisteredUser, _ infoHash: InfoHash) -> [CreditFactors] {
      deltas.filter { $0.userID == user.id && $0.infoHash == infoHash }.map(\.factors)
    }
    #expect(
      factors(Self.alice, Self.torrent) == [CreditFactors(uploadPercent: 100, downloadPercent: 0)])
    #expect(factors(Self.bob, Self.torrent) == [.unit], "another user on the same torrent")
    #expect(factors(Self.alice, Self.secondTorrent) == [.unit], "the same user on another torrent")
  }

  // MARK: Passkeys

  @Test(
    "a rotated passkey is refused at once, the new one admitted as the same user; a deleted user is refused",
    arguments: Transport.allCases)
  func passkeyRotationAndDeletion(over transport: Transport) async throws {
    let harness = await Self.harness()
    let oldPasskey = Self.alice.passkey.hex
    let newPasskey = "00112233445566778899aabbccddeeff"
    try await Self.withFrontends(harness) { clients in
      Self.expectAdmitted(
        try await clients.announce(transport, passkey: oldPasskey, left: 1000, event: .started))
      harness.registry.apply(
        .putUser(Self.user(Self.alice) { $0.passkey = Passkey(hex: newPasskey)! }))
      Self.expectRefused(
        try await clients.announce(
          transport, passkey: oldPasskey, left: 900, uploaded: 100, downloaded: 100),
        "passkey not recognised")
      Self.expectAdmitted(
        try await clients.announce(
          transport, passkey: newPasskey, left: 700, uploaded: 300, downloaded: 300))
      harness.registry.apply(.deleteUser(Self.alice.id))
      Self.expectRefused(
        try await clients.announce(
          transport, passkey: newPasskey, left: 500, uploaded: 400, downloaded: 500),
        "passkey not recognised")
      Self.expectSilentSuccess(
        try await clients.announce(
          transport, passkey: newPasskey, left: 500, uploaded: 400, downloaded: 500,
          event: .stopped))
    }
    let deltas = try await Self.flushedDeltas(harness)
    #expect(deltas.count == 1, "only the new passkey's announce was counted: \(deltas)")
    let delta = try #require(deltas.first)
    #expect(delta.userID == Self.alice.id, "the same user id across the rotation")
    #expect(delta.uploaded == 300 && delta.downloaded == 300, "from the baseline of the start")
    #expect(harness.accounting.statistics().entries == 1, "the refused stop removed nothing")
  }

  @Test(
    "passkey-is-user-id with torrents any: an empty registry admits everyone; a disabled record still refuses",
    arguments: Transport.allCases)
  func passkeyIsUserIDMode(over transport: Transport) async throws {
    let harness = await Self.harness(
      modes: RegistryModes(users: .passkeyIsUserID, torrents: .any), changes: [])
    let carol = "0123456789abcdef0123456789abcdef"
    let dave = "fedcba9876543210fedcba9876543210"
    let anyTorrent = makeInfoHash(0x71)
    try await Self.withFrontends(harness) { clients in
      Self.expectAdmitted(
        try await clients.announce(
          transport, passkey: carol, infoHash: anyTorrent, left: 1000, event: .started))
      Self.expectAdmitted(
        try await clients.announce(
          transport, passkey: carol, infoHash: anyTorrent, left: 800, uploaded: 500,
          downloaded: 200))
      let carolID = Passkey(hex: carol)!.asUserID
      harness.registry.apply(
        .putUser(
          RegisteredUser(
            id: carolID, passkey: Passkey(hex: carol)!, disabledReason: "banned for cheating")))
      Self.expectRefused(
        try await clients.announce(
          transport, passkey: carol, infoHash: anyTorrent, left: 600, uploaded: 900,
          downloaded: 400),
        "banned for cheating")
      Self.expectSilentSuccess(
        try await clients.announce(
          transport, passkey: carol, infoHash: anyTorrent, left: 600, uploaded: 900,
          downloaded: 400, event: .stopped))
      // Another well-formed passkey, another unregistered torrent: still in.
      Self.expectAdmitted(
        try await clients.announce(
          transport, passkey: dave, infoHash: Self.unknownTorrent,
          peerID: Self.peerID("-TS0001-", 9),
          left: 0, event: .started))
    }
    let deltas = try await Self.flushedDeltas(harness)
    #expect(deltas.count == 1, "\(deltas)")
    let delta = try #require(deltas.first)
    #expect(delta.userID == UserID(hex: carol), "the user id is the passkey's bytes")
    #expect(delta.infoHash == anyTorrent)
    #expect(delta.uploaded == 500 && delta.downloaded == 200)
    #expect(delta.factors == .unit)
    #expect(harness.accounting.statistics().entries == 2)
    #expect(
      harness.tracker.peerStore.scrape(Self.unknownTorrent)
        == ScrapeStats(complete: 1, incomplete: 0, downloaded: 0))
  }

  // MARK: Scrapes

  /// The `files` of an HTTP scrape: info hash → [complete, incomplete, downloaded].
  static func scrapedFiles(_ response: TestHTTPResponse) throws -> [InfoHash: [Int64?]] {
    guard case .dictionary(let entries) = try #require(try response.bencode()["files"]) else {
      Issue.record("files is not a dictionary")
      return [:]
    }
    var files: [InfoHash: [Int64?]] = [:]
    for (key, value) in entries {
      let hash = try #require(InfoHash(key))
      files[hash] = [
        value["complete"]?.integer, value["incomplete"]?.integer, value["downloaded"]?.integer,
      ]
    }
    return files
  }

  @Test(
    "HTTP scrape: only registered active torrents are reported; unknown, missing or disabled passkeys are refused"
  )
  func httpScrapeInRegisteredMode() async throws {
    let pending = makeInfoHash(0x81)
    let harness = await Self.harness(
      changes: Self.base + [
        .putTorrent(RegisteredTorrent(infoHash: pending, state: .pending, reason: "wait")),
        .putUser(Self.user(Self.bob) { $0.disabledReason = "gone fishing" }),
      ])
    try await Self.withFrontends(harness) { clients in
      Self.expectAdmitted(
        try await clients.announce(
          .http, passkey: Self.alice.passkey.hex, left: 0, event: .started))
      let scrape = try await clients.httpScrape(
        passkey: Self.alice.passkey.hex, [pending, Self.torrent, Self.unknownTorrent])
      #expect(scrape.status == 200 && scrape.failureReason == nil)
      #expect(try Self.scrapedFiles(scrape) == [Self.torrent: [1, 0, 0]])

      let stranger = try await clients.httpScrape(passkey: Self.strangerPasskey, [Self.torrent])
      #expect(stranger.failureReason == "passkey not recognised")
      #expect(try stranger.bencode()["files"] == nil)
      let anonymous = try await clients.httpScrape(passkey: nil, [Self.torrent])
      #expect(
        anonymous.failureReason
          == "missing passkey: use the personal announce URL from your account")
      let disabled = try await clients.httpScrape(passkey: Self.bob.passkey.hex, [Self.torrent])
      #expect(disabled.failureReason == "gone fishing")
    }
  }

  /// BEP 15 scrapes carry no URL data, so in `registered` user mode no UDP
  /// scrape can name its user: each is refused with an error packet.
  @Test("UDP scrape in registered user mode is refused with an error packet")
  func udpScrapeInRegisteredMode() async throws {
    let harness = await Self.harness()
    try await Self.withFrontends(harness) { clients in
      let answer = try await clients.udpScrape([Self.torrent])
      #expect(answer.readUInt32(at: 0) == 3, "an error packet")
      #expect(
        answer.udpErrorMessage == "missing passkey: use the personal announce URL from your account"
      )
    }
  }

  /// A BEP 15 scrape answer is positional: leaving a hash out would shift
  /// every later torrent's figures onto the hash before it. A hash the
  /// registry does not report must keep its slot, with no figures.
  @Test(
    "UDP multi-hash scrape: pending and unknown hashes are not reported, the rest keep their positions"
  )
  func udpScrapeLeavesRefusedHashesOut() async throws {
    let pending = makeInfoHash(0x81)
    let harness = await Self.harness(
      modes: RegistryModes(users: .passkeyIsUserID, torrents: .registered),
      changes: Self.base + [.putTorrent(RegisteredTorrent(infoHash: pending, state: .pending))])
    try await Self.withFrontends(harness) { clients in
      Self.expectAdmitted(
        try await clients.announce(
          .udp, passkey: Self.alice.passkey.hex, left: 0, event: .started))
      let answer = try await clients.udpScrape([pending, Self.torrent, Self.unknownTorrent])
      #expect(answer.readUInt32(at: 0) == 2, "a scrape answer: \(answer)")
      // seeders, completed, leechers per requested hash.
      let figures = stride(from: 8, to: answer.count - 11, by: 12).map {
        [answer.readUInt32(at: $0), answer.readUInt32(at: $0 + 4), answer.readUInt32(at: $0 + 8)]
      }
      #expect(
        figures == [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
        "one slot per requested hash, the active torrent's figures in its own slot")
    }
  }
}
