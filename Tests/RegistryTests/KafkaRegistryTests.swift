import BitTorrent
import Foundation
import MetricsTestKit
import PrivtrakTestSupport
import Registry
import RegistryKafka
import Testing

/// The Kafka registry source against the test broker (`KAFKA_BOOTSTRAP`,
/// else the one `scripts/broker start` runs on 127.0.0.1:19092): every test
/// uses topics of its own.
@Suite(.serialized) struct KafkaRegistryTests {
  static let bootstrap = ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP"] ?? "127.0.0.1:19092"
  static let alice = UserID(high: 0xA11CE, low: 1)
  static let bob = UserID(high: 0xB0B, low: 2)
  static let key1 = Passkey(hex: "11111111111111111111111111111111")!
  static let key2 = Passkey(hex: "22222222222222222222222222222222")!
  static let hash = InfoHash(hex: "0102030405060708090a0b0c0d0e0f1011121314")!
  static let peer = PeerID(Array("-TR3000-abcdefghijkl".utf8))!
  static let modes = RegistryModes(users: .registered, torrents: .registered)

  /// Topics no other test uses.
  static func freshTopics() -> RegistryTopics {
    var topics = RegistryTopics()
    let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
    for entity in RegistryEntity.allCases { topics[entity] = "test-registry-\(suffix).\(entity)" }
    return topics
  }

  static func verdict(_ registry: Registry, _ passkey: Passkey = key1) -> ApprovalVerdict {
    registry.evaluate(
      passkey: passkey, infoHash: hash, peerID: peer, isLeeching: true, modes: modes)
  }

  /// Publishes from a thread outside the cooperative pool (librdkafka blocks).
  static func publish(_ topics: RegistryTopics, _ records: [RegistryRecord]) async throws {
    try await Task.detached {
      let publisher = try KafkaRegistryPublisher(bootstrap: bootstrap, topics: topics)
      defer { publisher.close() }
      try publisher.publish(records: records)
    }.value(within: .seconds(60), "publishing registry records")
  }

  static func publish(_ topics: RegistryTopics, _ changes: [RegistryChange]) async throws {
    try await publish(topics, changes.map(RegistryRecordCodec.encode))
  }

  static func follow(_ topics: RegistryTopics, _ registry: Registry, metrics: TestMetrics? = nil)
    async throws -> KafkaRegistryFollower
  {
    try await KafkaRegistryFollower.start(
      configuration: KafkaRegistryConfiguration(bootstrap: bootstrap, topics: topics),
      registry: registry, metricsFactory: metrics ?? TestMetrics())
  }

  @Test("start returns only once every topic was read to its end")
  func startReadsEverythingFirst() async throws {
    let topics = Self.freshTopics()
    var changes: [RegistryChange] = [.putTorrent(RegisteredTorrent(infoHash: Self.hash))]
    for index in 0..<500 {
      changes.append(
        .putUser(
          RegisteredUser(
            id: UserID(high: 7, low: UInt64(index)),
            passkey: Passkey(high: 9, low: UInt64(index)))))
    }
    changes.append(.putUser(RegisteredUser(id: Self.alice, passkey: Self.key1)))
    try await Self.publish(topics, changes)
    let registry = Registry()
    let follower = try await Self.follow(topics, registry)
    // No wait: start's return is the guarantee.
    #expect(registry.counts.users == 501)
    #expect(registry.counts.torrents == 1)
    #expect(Self.verdict(registry) == .approved(userID: Self.alice, factors: .unit))
    await follower.stop()
  }

  @Test("rotation, tombstone and freeleech published after start are in force within 2 s")
  func changesAreFollowed() async throws {
    let topics = Self.freshTopics()
    try await Self.publish(
      topics,
      [
        .putUser(RegisteredUser(id: Self.alice, passkey: Self.key1)),
        .putTorrent(RegisteredTorrent(infoHash: Self.hash)),
      ])
    let registry = Registry()
    let follower = try await Self.follow(topics, registry)
    #expect(Self.verdict(registry) == .approved(userID: Self.alice, factors: .unit))

    try await Self.publish(topics, [.putUser(RegisteredUser(id: Self.alice, passkey: Self.key2))])
    try await waitUntil("the rotated passkey is in force", timeout: .seconds(2)) {
      Self.verdict(registry, Self.key2) == .approved(userID: Self.alice, factors: .unit)
    }
    #expect(Self.verdict(registry, Self.key1) == .refused(.unknownPasskey))

    try await Self.publish(
      topics,
      [
        .putTorrent(
          RegisteredTorrent(infoHash: Self.hash, factors: FactorOverrides(downloadPercent: 0)))
      ])
    try await waitUntil("the torrent is freeleech", timeout: .seconds(2)) {
      Self.verdict(registry, Self.key2)
        == .approved(userID: Self.alice, factors: CreditFactors(downloadPercent: 0))
    }

    try await Self.publish(topics, [.deleteUser(Self.alice)])
    try await waitUntil("the deleted user is refused", timeout: .seconds(2)) {
      Self.verdict(registry, Self.key2) == .refused(.unknownPasskey)
    }
    #expect(registry.counts.users == 0)
    await follower.stop()
  }

  @Test("a record that does not decode is skipped, counted, and the last good state stays")
  func badRecordsAreSkipped() async throws {
    let topics = Self.freshTopics()
    try await Self.publish(
      topics,
      [
        .putUser(RegisteredUser(id: Self.alice, passkey: Self.key1)),
        .putTorrent(RegisteredTorrent(infoHash: Self.hash)),
      ])
    try await Self.publish(
      topics,
      [
        // Not Protobuf.
        RegistryRecord(entity: .users, key: Self.alice.bytes, value: [0xff, 0xff, 0xff]),
        // A 3-byte key for a user.
        RegistryRecord(entity: .users, key: [1, 2, 3], value: [0x12, 0x00]),
        // A value whose user id disagrees with its key.
        RegistryRecordCodec.encode(.putUser(RegisteredUser(id: Self.bob, passkey: Self.key2)))
          .withKey(Self.alice.bytes),
      ])
    let metrics = TestMetrics()
    let registry = Registry()
    let follower = try await Self.follow(topics, registry, metrics: metrics)
    #expect(Self.verdict(registry) == .approved(userID: Self.alice, factors: .unit))
    #expect(registry.counts.users == 1)
    let rejected = try metrics.expectCounter(
      "privtrak_registry_records_rejected_total", [("topic", topics[.users])])
    #expect(rejected.totalValue == 3)
    await follower.stop()
  }

  @Test("a missing registry topic is a start-up error naming it")
  func missingTopicIsNamed() async throws {
    let topics = Self.freshTopics()
    await #expect(throws: KafkaRegistryError.missingTopic(topics[.users])) {
      _ = try await Self.follow(topics, Registry())
    }
  }
}

extension RegistryRecord {
  fileprivate func withKey(_ key: [UInt8]) -> RegistryRecord {
    RegistryRecord(entity: entity, key: key, value: value)
  }
}
