import Accounting
import DeltaModel
import PrivtrakTestSupport
import Synchronization
import Testing

@testable import KafkaSink

@Suite struct BrokerPauseTests {
  /// Batches flow while the broker is frozen (SIGSTOP) long enough for
  /// records to time out, so transactions are aborted and retried; after
  /// SIGCONT every delta arrives, and the only extra copies are identical
  /// deltas with the same origin (none at all where aborted records are hidden).
  @Test func aFrozenBrokerDelaysBatchesAndLosesNone() async throws {
    let filtersAborted = try await AbortFilteringProbe.brokerFiltersAbortedRecords()
    print("broker pause test: \(AbortFilteringProbe.branchDescription(filtersAborted))")
    try await withOwnTestBroker { broker in
      let topic = TestKafka.uniqueName("privtrak-pause")
      try await TestKafka.createTopic(topic, partitions: 3, bootstrap: broker.bootstrap)
      var configuration = KafkaSinkConfiguration.test(topic: topic, bootstrap: broker.bootstrap)
      // Short timeouts so the outage outlasts them: records expire
      // (abortable), commits time out (retriable), the sink retries.
      configuration.messageTimeoutMilliseconds = 1_000
      configuration.operationTimeoutMilliseconds = 300
      // Requests already sent only expire with the socket timeout.
      configuration.properties = ["socket.timeout.ms": "1000"]
      // A stuck abort is resolved by a new producer (see the report below).
      configuration.producerResetTimeoutMilliseconds = 2_000
      configuration.maxInFlightDeltas = 40
      let metrics = RecordingMetricsFactory()
      let sink = try await KafkaSink.start(configuration: configuration, metricsFactory: metrics)

      var source = TestDeltaSource()
      let batches = source.batches(30, of: 10)
      let durable = Atomic<Int>(0)
      // One publisher, batches in order, as the accounting batcher does.
      let publisher = Task {
        for batch in batches {
          try await sink.publish(batch)
          durable.add(1, ordering: .relaxed)
        }
      }
      try await waitUntil("5 batches are durable") { durable.load(ordering: .relaxed) >= 5 }
      broker.pause()
      try await waitUntil("the sink retries") {
        if case .retrying = sink.state { return true } else { return false }
      }
      let durableWhilePaused = durable.load(ordering: .relaxed)
      print(
        "broker pause test: paused after \(durableWhilePaused) durable batches; state \(sink.state)"
      )
      // Outlast the socket and message timeouts: records expire, and the
      // failed transaction is aborted or, when the abort times out too,
      // its producer replaced (whose init_transactions then waits for the
      // broker). Either phase lasts seconds; a poll may miss one of them
      // under a busy parallel run, hence both.
      try await waitUntil("the sink aborts the transaction or replaces its producer") {
        guard case .retrying(let reason) = sink.state else { return false }
        return reason.contains("abort") || reason.contains("init_transactions")
      }
      print("broker pause test: state \(sink.state)")
      #expect(
        durable.load(ordering: .relaxed) <= durableWhilePaused + 1, "nothing commits while frozen")
      broker.resume()
      try await publisher.value("publisher to end")
      #expect(sink.isReady)
      #expect(sink.state == .ready)
      try await sink.close()
      let aborted = metrics.counter("privtrak_kafka_transactions_aborted_total")
      let replaced = metrics.counter("privtrak_kafka_producer_replacements_total")
      print(
        "broker pause test: \(Int(aborted)) transactions aborted, \(Int(replaced)) producers replaced"
      )
      #expect(metrics.counter("privtrak_kafka_batch_retries_total") > 0)
      #expect(
        aborted + replaced >= 1,
        "the failed transaction was aborted, by an abort or by a new producer")
      #expect(metrics.counter("privtrak_kafka_batches_committed_total") == 30)

      try await AbortFilteringProbe.closeStaleTransactions(
        transactionalID: configuration.transactionalID, bootstrap: broker.bootstrap,
        filtersAborted: filtersAborted)
      let published = batches.flatMap(\.deltas)
      let consumer = try await TestConsumer(topic: topic, bootstrap: broker.bootstrap)
      let audit = DeliveryAudit(try await consumer.read(distinctOrigins: published.count))
      #expect(audit.missing(from: published).isEmpty, "lost deltas")
      #expect(audit.unexpected(from: published).isEmpty)
      #expect(audit.altered(from: published).isEmpty, "a copy differs from its original")
      #expect(audit.deduplicated.count == published.count)
      print("broker pause test: \(audit.duplicateCount) duplicate copies (same origin) visible")
      if filtersAborted {
        #expect(audit.duplicateCount == 0, "aborted attempts must be invisible to read_committed")
      }
    }
  }

  /// Graceful shutdown during an outage: `close` stops retrying after the
  /// shutdown timeout, and both the admitted batch and the waiting one
  /// throw `.closed`, so the batcher keeps them for its snapshot.
  @Test func closeDuringAnOutageHandsUndeliveredBatchesBack() async throws {
    try await withOwnTestBroker { broker in
      let topic = TestKafka.uniqueName("privtrak-close-outage")
      try await TestKafka.createTopic(topic, partitions: 1, bootstrap: broker.bootstrap)
      var configuration = KafkaSinkConfiguration.test(topic: topic, bootstrap: broker.bootstrap)
      configuration.maxInFlightDeltas = 10
      configuration.operationTimeoutMilliseconds = 200
      configuration.shutdownTimeoutMilliseconds = 500
      let sink = try await KafkaSink.start(configuration: configuration)
      var source = TestDeltaSource()
      let (first, second) = (source.batch(of: 10), source.batch(of: 10))
      broker.pause()
      let publishers = [first, second].map { batch in
        Task { try await sink.publish(batch) }
      }
      try await waitUntil("one batch in flight and one waiting") {
        sink.inFlight.deltas == 10 && sink.waitingPublishers == 1
      }
      let closing = ContinuousClock.now
      try await sink.close()
      #expect(
        ContinuousClock.now - closing < .seconds(20), "close is bounded by the shutdown timeout")
      for publisher in publishers {
        await #expect(throws: KafkaSinkError.closed) {
          try await publisher.value("publisher to end")
        }
      }
      #expect(sink.state == .closed)
      #expect(!sink.isReady)
      broker.resume()
    }
  }
}
