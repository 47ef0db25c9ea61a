import Accounting
import BitTorrent
import DeltaModel
import KafkaSink

/// Makes realistic batches from one tracker instance: deltas spread over a
/// few users and torrents, sequences counting up from 1.
struct TestDeltaSource {
  let instance: UInt64
  let users: Int
  private(set) var nextSequence: UInt64 = 1

  init(instance: UInt64 = UInt64.random(in: 1..<UInt64.max), users: Int = 7) {
    self.instance = instance
    self.users = users
  }

  mutating func batch(of count: Int) -> DeltaBatch {
    DeltaBatch(deltas: (0..<count).map { _ in next() })
  }

  mutating func batches(_ batches: Int, of count: Int) -> [DeltaBatch] {
    (0..<batches).map { _ in batch(of: count) }
  }

  private mutating func next() -> Delta {
    let sequence = nextSequence
    nextSequence += 1
    let user = UInt64(sequence) % UInt64(users)
    return Delta(
      userID: UserID(high: 0xfeed_0000_0000_0000 | user, low: user &* 0x9e37_79b9_7f4a_7c15),
      infoHash: InfoHash(Array(repeating: UInt8(truncatingIfNeeded: sequence % 5), count: 20))!,
      uploaded: Int64(sequence) * 16_384, downloaded: -Int64(sequence % 3),
      event: sequence % 11 == 0 ? .completed : .none,
      reportedAtMilliseconds: 1_700_000_000_000 + Int64(sequence), seeding: sequence % 2 == 0,
      intervalSeconds: 1800, reset: sequence % 13 == 0,
      origin: DeltaOrigin(instance: instance, sequence: sequence),
      clientIP: sequence % 4 == 0 ? IPAddress("2001:db8::\(sequence % 100)") : nil,
      peerID: sequence % 3 == 0 ? PeerID(Array(repeating: 0x2d, count: 20)) : nil)
  }
}

/// What a consumer saw, grouped by origin.
struct DeliveryAudit {
  /// Every copy of every delta, in consumption order.
  let copies: [Delta]
  /// Copies per origin.
  let counts: [DeltaOrigin: Int]

  init(_ records: [ConsumedRecord]) {
    copies = records.flatMap(\.deltas)
    counts = copies.reduce(into: [:]) { $0[$1.origin, default: 0] += 1 }
  }

  /// Origins published but never seen.
  func missing(from published: [Delta]) -> [DeltaOrigin] {
    published.map(\.origin).filter { counts[$0] == nil }
  }

  /// Origins seen but never published.
  func unexpected(from published: [Delta]) -> [DeltaOrigin] {
    let expected = Set(published.map(\.origin))
    return counts.keys.filter { !expected.contains($0) }.sorted()
  }

  /// Copies that differ from the published delta of the same origin.
  func altered(from published: [Delta]) -> [Delta] {
    let byOrigin = Dictionary(uniqueKeysWithValues: published.map { ($0.origin, $0) })
    return copies.filter { copy in byOrigin[copy.origin].map { $0 != copy } ?? false }
  }

  /// How many copies beyond the first were seen.
  var duplicateCount: Int { counts.values.reduce(0) { $0 + $1 - 1 } }

  /// The deltas in first-seen order, one per origin.
  var deduplicated: [Delta] {
    var seen = Set<DeltaOrigin>()
    return copies.filter { seen.insert($0.origin).inserted }
  }
}

extension KafkaSinkConfiguration {
  /// A test configuration: the given topic, a fresh transactional id, fast retries.
  static func test(
    topic: String, bootstrap: String = TestKafka.bootstrap, transactionalID: String? = nil
  ) -> KafkaSinkConfiguration {
    var configuration = KafkaSinkConfiguration(
      bootstrap: bootstrap, topic: topic,
      transactionalID: transactionalID ?? TestKafka.uniqueName("privtrak-test"))
    configuration.startupTimeoutMilliseconds = 15_000
    configuration.retryBackoffMilliseconds = 50
    configuration.maxRetryBackoffMilliseconds = 500
    return configuration
  }
}
