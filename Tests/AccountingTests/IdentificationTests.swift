import Accounting
import BitTorrent
import DeltaModel
import Testing
import Tracker

@Suite("User identification")
struct IdentificationTests {
  let client = TestClient(user: 7, torrent: 3)

  @Test("the passkey (32 hex chars) is the user id, set in the hook context")
  func passkeyIdentifiesUser() async throws {
    let harness = await AccountingHarness(sink: CollectingTestSink())
    try await harness.announce(client, uploaded: 0, downloaded: 0)
    #expect(harness.contexts.announceContexts.map(\.userID) == [client.userID])
    #expect(PasskeyUserIdentifier.parse(client.passkey) == client.userID)
  }

  @Test("upper-case hex is the same user")
  func upperCaseHex() {
    let upper = Substring(client.userID.hex.uppercased())
    #expect(PasskeyUserIdentifier.parse(upper) == client.userID)
  }

  @Test(
    "a missing or malformed passkey fails the announce as forbidden and records nothing",
    arguments: [
      nil, "", "abc", String(repeating: "a", count: 31), String(repeating: "a", count: 33),
      String(repeating: "g", count: 32), "0123456789abcdef0123456789abcde-",
      "0123456789abcdef 123456789abcdef",
    ])
  func badPasskeyIsForbidden(passkey: String?) async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink)
    try await harness.announce(client, uploaded: 0, downloaded: 0)
    let request = client.request(
      uploaded: 500, downloaded: 500, passkey: .some(passkey.map { Substring($0) }))
    let failure = await expectFailure { () async throws(TrackerFailure) in
      _ = try await harness.tracker.announce(request)
    }
    #expect(failure?.kind == .forbidden)
    #expect(failure?.reason.contains("passkey") == true)
    if let passkey, !passkey.isEmpty {
      #expect(failure?.reason.contains(passkey) == false, "the reason never echoes the credential")
    }
    // Nothing recorded: the good entry's baseline is untouched and no delta exists.
    await harness.middleware.flush()
    #expect(sink.deltas.isEmpty)
    #expect(harness.middleware.statistics().entries == 1)
    try await harness.announce(client, uploaded: 10, downloaded: 0)
    await harness.middleware.flush()
    #expect(sink.deltas.map(\.uploaded) == [10])
  }

  @Test("scrapes need a valid passkey by default")
  func scrapeRequiresPasskey() async throws {
    let harness = await AccountingHarness(sink: CollectingTestSink())
    let anonymous = ScrapeRequest(infoHashes: [client.infoHash], clientAddress: .v4(1))
    let failure = await expectFailure { () async throws(TrackerFailure) in
      _ = try await harness.tracker.scrape(anonymous)
    }
    #expect(failure?.kind == .forbidden)

    let identified = ScrapeRequest(
      infoHashes: [client.infoHash], passkey: client.passkey, clientAddress: .v4(1))
    _ = try await harness.tracker.scrape(identified)
    #expect(harness.contexts.scrapeContexts.map(\.userID) == [client.userID])
  }

  @Test(
    "with requirePasskeyForScrape off, anonymous scrapes pass and a valid passkey still identifies")
  func scrapePasskeyOptional() async throws {
    var configuration = AccountingConfiguration.forTesting()
    configuration.requirePasskeyForScrape = false
    let harness = await AccountingHarness(configuration: configuration, sink: CollectingTestSink())
    _ = try await harness.tracker.scrape(
      ScrapeRequest(infoHashes: [client.infoHash], clientAddress: .v4(1)))
    _ = try await harness.tracker.scrape(
      ScrapeRequest(infoHashes: [client.infoHash], passkey: "not-a-passkey", clientAddress: .v4(1)))
    _ = try await harness.tracker.scrape(
      ScrapeRequest(infoHashes: [client.infoHash], passkey: client.passkey, clientAddress: .v4(1)))
    #expect(harness.contexts.scrapeContexts.map(\.userID) == [nil, nil, client.userID])
  }

  /// Anything unique that fits 16 bytes: here the BEP 7 `key` of the client.
  struct KeyIdentifier: UserIdentifier {
    func identify(_ request: AnnounceRequest) throws(TrackerFailure) -> UserID {
      guard let key = request.key else { throw TrackerFailure("no key", kind: .forbidden) }
      return UserID(high: 0, low: UInt64(key))
    }

    func identify(_ request: ScrapeRequest) throws(TrackerFailure) -> UserID {
      throw TrackerFailure("no key", kind: .forbidden)
    }
  }

  @Test("identification is pluggable through UserIdentifier")
  func customIdentifier() async throws {
    let sink = CollectingTestSink()
    let harness = await AccountingHarness(sink: sink, identifier: KeyIdentifier())
    var request = client.request(uploaded: 0, downloaded: 0, passkey: .some(nil))
    request.key = 0xBEEF
    _ = try await harness.tracker.announce(request)
    request.uploaded = 42
    _ = try await harness.tracker.announce(request)
    await harness.middleware.flush()
    #expect(sink.deltas.map(\.userID) == [UserID(high: 0, low: 0xBEEF)])
    #expect(sink.deltas.map(\.uploaded) == [42])
  }
}
