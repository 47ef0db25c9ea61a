import Accounting
import BitTorrent
import DeltaModel
import PrivtrakTestSupport
import Synchronization
import Testing
import Tracker

@testable import KafkaSink

@Suite struct AccountingBrokerPauseTests {
  /// The whole accounting path (tracker, accounting middleware, Kafka sink)
  /// while the broker is frozen: the batcher fills to its bound and no
  /// further, announces fail with retry-later and the clients retry with
  /// larger counters, and after SIGCONT and shutdown every byte each user
  /// moved is on the topic exactly once (after deduplication on DeltaOrigin).
  @Test func aFrozenBrokerUnderAccountingLosesNoByteAndKeepsTheBound() async throws {
    let filtersAborted = try await AbortFilteringProbe.brokerFiltersAbortedRecords()
    print(
      "accounting broker pause test: \(AbortFilteringProbe.branchDescription(filtersAborted))")
    try await withOwnTestBroker { broker in
      let topic = TestKafka.uniqueName("privtrak-accounting-pause")
      try await TestKafka.createTopic(topic, partitions: 3, bootstrap: broker.bootstrap)
      var sinkConfiguration = KafkaSinkConfiguration.test(
        topic: topic, bootstrap: broker.bootstrap)
      // As in BrokerPauseTests: the outage outlasts these, so records
      // expire, transactions abort and the sink retries.
      sinkConfiguration.messageTimeoutMilliseconds = 1_000
      sinkConfiguration.operationTimeoutMilliseconds = 300
      sinkConfiguration.properties = ["socket.timeout.ms": "1000"]
      sinkConfiguration.producerResetTimeoutMilliseconds = 2_000
      sinkConfiguration.maxInFlightDeltas = 100
      let sinkMetrics = RecordingMetricsFactory()
      let sink = try await KafkaSink.start(
        configuration: sinkConfiguration, metricsFactory: sinkMetrics)

      let bound = 500
      let configuration = AccountingConfiguration(
        batchSize: 50, flushInterval: .milliseconds(50), maxPendingDeltas: bound,
        maxWait: .milliseconds(300), maxWaiters: 1_000, gcInterval: .seconds(3_600),
        shardCount: 16, publishRetryInitialBackoff: .milliseconds(20),
        publishRetryMaxBackoff: .milliseconds(200), snapshotInterval: nil,
        shutdownDrainTimeout: .seconds(60))
      let middleware = await AccountingMiddleware(configuration: configuration, sink: sink)
      let tracker = Tracker(preHooks: [middleware])
      let running = Task { await middleware.run() }

      let sampler = PendingSampler(middleware)
      let sampling = Task { await sampler.run() }
      let tally = AnnounceTally()

      // 16 announcers, 2 clients each: 4 users on 8 torrents.
      let announcers = Task {
        await withTaskGroup(of: [LedgerClient].self) { group in
          for announcer in 0..<16 {
            group.addTask {
              var clients = (0..<2).map { slot in
                let number = announcer * 2 + slot
                return LedgerClient(user: number % 4, torrent: number / 4)
              }
              while !tally.stopped {
                for index in clients.indices {
                  clients[index].advance()
                  let event: AnnounceEvent = clients[index].first == nil ? .started : .none
                  await clients[index].announce(through: tracker, event: event, tally: tally)
                }
                // Pacing of the simulated clients (load shape, not synchronisation).
                try? await Task.sleep(for: .milliseconds(20))
              }
              return clients
            }
          }
          return await group.reduce(into: []) { $0 += $1 }
        }
      }

      try await waitUntil("announces flow and batches commit", timeout: .seconds(60)) {
        tally.accepted >= 1_000
          && sinkMetrics.counter("privtrak_kafka_batches_committed_total") >= 3
      }
      broker.pause()
      let retryLaterBeforePause = tally.retryLater
      print(
        "accounting broker pause test: paused after \(tally.accepted) accepted announces, "
          + "\(middleware.statistics().batcher.nextSequence - 1) deltas")
      try await waitUntil(
        "announces fail, the batcher is full, the sink retries", timeout: .seconds(60)
      ) {
        // The transaction aborted or, the abort timing out too, its
        // producer replaced (see BrokerPauseTests).
        guard case .retrying(let reason) = sink.state,
          reason.contains("abort") || reason.contains("init_transactions")
        else {
          return false
        }
        return tally.retryLater >= retryLaterBeforePause + 64
          && middleware.statistics().batcher.pendingDeltas >= bound
      }
      let frozen = middleware.statistics().batcher
      print(
        "accounting broker pause test: frozen with \(frozen.pendingDeltas) pending, "
          + "\(frozen.waiters) waiting, \(tally.retryLater) retry-later failures; state \(sink.state)"
      )
      #expect(frozen.pendingDeltas == bound, "the batcher fills exactly to its bound")
      broker.resume()
      let acceptedAtResume = tally.accepted
      try await waitUntil("announces flow again", timeout: .seconds(60)) {
        tally.accepted >= acceptedAtResume + 500
      }
      tally.stop()
      var clients = try await announcers.value("announcers to end")

      // Every client's last announce, retried like a real client until accepted.
      for index in clients.indices {
        let deadline = ContinuousClock.now + .seconds(60)
        repeat {
          clients[index].advance()
          await clients[index].announce(through: tracker, event: .stopped, tally: tally)
        } while clients[index].last != clients[index].reported && ContinuousClock.now < deadline
        #expect(clients[index].last == clients[index].reported, "the final announce is accepted")
      }
      running.cancel()
      try await running.value("running to end")
      sampler.stop()
      try await sampling.value("sampling to end")

      let final = middleware.statistics().batcher
      let deltaCount = Int(final.nextSequence) - 1
      print(
        "accounting broker pause test: \(tally.accepted) announces accepted, \(tally.retryLater) "
          + "failed with retry-later, \(deltaCount) deltas; highest pending sampled "
          + "\(sampler.highestPending), high water \(final.highWaterDeltas)")
      #expect(tally.unexpectedFailures == 0)
      #expect(tally.retryLater >= 64)
      #expect(final.pendingDeltas == 0, "shutdown delivered everything")
      #expect(sampler.highestPending <= bound, "pending deltas never exceed the bound")
      #expect(sampler.highestPending == bound)
      #expect(final.highWaterDeltas <= bound)
      let aborted = sinkMetrics.counter("privtrak_kafka_transactions_aborted_total")
      let replaced = sinkMetrics.counter("privtrak_kafka_producer_replacements_total")
      print(
        "accounting broker pause test: \(Int(aborted)) transactions aborted, "
          + "\(Int(replaced)) producers replaced")

      try await AbortFilteringProbe.closeStaleTransactions(
        transactionalID: sinkConfiguration.transactionalID, bootstrap: broker.bootstrap,
        filtersAborted: filtersAborted)
      let consumer = try await TestConsumer(topic: topic, bootstrap: broker.bootstrap)
      let audit = DeliveryAudit(
        try await consumer.read(distinctOrigins: deltaCount, timeout: .seconds(120)))
      let deduplicated = audit.deduplicated
      print(
        "accounting broker pause test: \(audit.copies.count) copies, \(audit.duplicateCount) "
          + "duplicates (same origin) visible")
      #expect(deduplicated.allSatisfy { $0.origin.instance == middleware.instance })
      #expect(
        deduplicated.map(\.origin.sequence).sorted() == Array(1...UInt64(deltaCount)),
        "sequences are contiguous: no delta missing, none extra")
      let firstCopies = Dictionary(deduplicated.map { ($0.origin, $0) }) { first, _ in first }
      let altered = audit.copies.filter { firstCopies[$0.origin] != $0 }
      #expect(altered.isEmpty, "every duplicate is identical to its original")
      if filtersAborted {
        #expect(audit.duplicateCount == 0, "aborted attempts must be invisible to read_committed")
      }

      var published: [UserID: (uploaded: Int64, downloaded: Int64)] = [:]
      for delta in deduplicated {
        #expect(!delta.reset, "client counters only grow")
        published[delta.userID, default: (0, 0)].uploaded += delta.uploaded
        published[delta.userID, default: (0, 0)].downloaded += delta.downloaded
      }
      var truth: [UserID: (uploaded: Int64, downloaded: Int64)] = [:]
      for client in clients {
        truth[client.userID, default: (0, 0)].uploaded += client.uploadedSinceFirst
        truth[client.userID, default: (0, 0)].downloaded += client.downloadedSinceFirst
      }
      #expect(truth.count == 4)
      #expect(Set(published.keys) == Set(truth.keys))
      for (user, expected) in truth {
        #expect(published[user]?.uploaded == expected.uploaded, "uploaded of \(user.hex)")
        #expect(published[user]?.downloaded == expected.downloaded, "downloaded of \(user.hex)")
      }
    }
  }
}

/// Counters of what the announcers saw, and the flag that stops them.
private final class AnnounceTally: Sendable {
  private let acceptedCount = Atomic<Int>(0)
  private let retryLaterCount = Atomic<Int>(0)
  private let unexpectedCount = Atomic<Int>(0)
  private let stopFlag = Atomic<Bool>(false)

  var accepted: Int { acceptedCount.load(ordering: .relaxed) }
  var retryLater: Int { retryLaterCount.load(ordering: .relaxed) }
  var unexpectedFailures: Int { unexpectedCount.load(ordering: .relaxed) }
  var stopped: Bool { stopFlag.load(ordering: .relaxed) }

  func stop() { stopFlag.store(true, ordering: .relaxed) }
  func countAccepted() { acceptedCount.add(1, ordering: .relaxed) }
  func countRetryLater() { retryLaterCount.add(1, ordering: .relaxed) }
  func countUnexpected() { unexpectedCount.add(1, ordering: .relaxed) }
}

/// Samples the batcher's pending deltas (with reservations) every
/// millisecond and keeps the highest value seen.
private final class PendingSampler: Sendable {
  private let middleware: AccountingMiddleware
  private let highest = Mutex<Int>(0)
  private let stopFlag = Atomic<Bool>(false)

  init(_ middleware: AccountingMiddleware) { self.middleware = middleware }

  var highestPending: Int { highest.withLock { $0 } }

  func stop() { stopFlag.store(true, ordering: .relaxed) }

  func run() async {
    while !stopFlag.load(ordering: .relaxed) {
      let statistics = middleware.statistics().batcher
      let pending = statistics.pendingDeltas + statistics.reservedDeltas
      highest.withLock { $0 = max($0, pending) }
      try? await Task.sleep(for: .milliseconds(1))  // sampling period
    }
  }
}

/// One BitTorrent client of one user on one torrent, with the counters it
/// reports and the ones the tracker accepted (the ground truth).
private struct LedgerClient: Sendable {
  struct Counters: Sendable, Equatable {
    var uploaded: UInt64
    var downloaded: UInt64
  }

  let userID: UserID
  let infoHash: InfoHash
  let peerID: PeerID
  let endpoint: PeerEndpoint
  /// What the next announce reports (totals of this client session).
  private(set) var reported = Counters(uploaded: 0, downloaded: 0)
  /// The first accepted announce: the baseline, which carries no bytes.
  private(set) var first: Counters?
  /// The last accepted announce.
  private(set) var last: Counters?
  private var step: UInt64 = 0

  init(user: Int, torrent: Int) {
    userID = UserID(
      high: 0xB10C_0000_0000_0000 | UInt64(user), low: 0x5EED_0000_0000_0000 | UInt64(user))
    infoHash = InfoHash(Self.bytes20(tag: 0x2F, value: UInt64(torrent)))!
    peerID = PeerID(Self.bytes20(tag: 0x7E, value: UInt64(user) << 24 | UInt64(torrent)))!
    endpoint = PeerEndpoint(address: .v4(0x0A01_0000 | UInt32(user)), port: 6881)
  }

  private static func bytes20(tag: UInt8, value: UInt64) -> [UInt8] {
    [tag] + [UInt8](repeating: 0x42, count: 11)
      + (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
  }

  /// Bytes this client moved between its first and last accepted announce:
  /// what its deltas must sum to.
  var uploadedSinceFirst: Int64 {
    Int64((last?.uploaded ?? 0) - (first?.uploaded ?? 0))
  }
  var downloadedSinceFirst: Int64 {
    Int64((last?.downloaded ?? 0) - (first?.downloaded ?? 0))
  }

  /// The client transfers some more data before its next announce.
  mutating func advance() {
    step += 1
    reported.uploaded += 16_384 * (1 + step % 7)
    reported.downloaded += 1_000 * (1 + step % 3)
  }

  /// Announces the current counters; only an accepted announce moves the baseline.
  mutating func announce(through tracker: Tracker, event: AnnounceEvent, tally: AnnounceTally)
    async
  {
    let request = AnnounceRequest(
      infoHash: infoHash, peerID: peerID, endpoint: endpoint, uploaded: reported.uploaded,
      downloaded: reported.downloaded, left: 1_000, event: event, passkey: Substring(userID.hex))
    do throws(TrackerFailure) {
      _ = try await tracker.announce(request)
      if first == nil { first = reported }
      last = reported
      tally.countAccepted()
    } catch let failure where failure.kind == .retryLater {
      tally.countRetryLater()
    } catch {
      tally.countUnexpected()
      Issue.record("announce failed: \(error)")
    }
  }
}
