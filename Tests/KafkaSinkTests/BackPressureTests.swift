import Accounting
import DeltaModel
import PrivtrakTestSupport
import Testing

@testable import KafkaSink

@Suite struct BackPressureTests {
  /// With the broker frozen, admitted batches cannot commit: the bound
  /// fills, further publishers suspend (bounded queue, then `saturated`),
  /// and once the broker runs again every one of them completes.
  @Test func publishersSuspendAtTheBoundAndAllCompleteOnceTheBrokerDrains() async throws {
    try await withOwnTestBroker { broker in
      let topic = TestKafka.uniqueName("privtrak-backpressure")
      try await TestKafka.createTopic(topic, partitions: 3, bootstrap: broker.bootstrap)
      var configuration = KafkaSinkConfiguration.test(topic: topic, bootstrap: broker.bootstrap)
      configuration.maxInFlightDeltas = 10
      configuration.maxInFlightBytes = 1_500
      configuration.maxWaitingPublishers = 9
      let metrics = RecordingMetricsFactory()
      let sink = try await KafkaSink.start(configuration: configuration, metricsFactory: metrics)

      var source = TestDeltaSource()
      let batches = source.batches(11, of: 5)
      broker.pause()
      let publishers = Task {
        try await withThrowingTaskGroup(of: Void.self) { group in
          for batch in batches { group.addTask { try await sink.publish(batch) } }
          try await group.waitForAll()
        }
      }
      // Two batches fill the bound (10 deltas); the other nine wait.
      try await waitUntil("nine publishers wait") { sink.waitingPublishers == 9 }
      #expect(sink.inFlight.deltas <= 10 && sink.inFlight.bytes <= 1_500)
      #expect(sink.inFlight.deltas > 0)
      // One more than the waiter bound is refused at once, not queued.
      await #expect(throws: KafkaSinkError.saturated(waitingPublishers: 9)) {
        try await sink.publish(DeltaBatch(deltas: [source.batch(of: 1).deltas[0]]))
      }

      broker.resume()
      try await publishers.value("publishers to end")
      #expect(sink.waitingPublishers == 0)
      #expect(sink.inFlight == .zero)
      #expect(sink.peakInFlight.deltas <= sink.inFlightLimit.deltas)
      #expect(sink.peakInFlight.bytes <= sink.inFlightLimit.bytes)
      #expect(
        metrics.counter("privtrak_kafka_publish_failures_total", ["reason": "saturated"]) == 1)
      #expect(metrics.gauge("privtrak_kafka_waiting_publishers") == 0)
      #expect(metrics.gauge("privtrak_kafka_in_flight_deltas") == 0)
      try await sink.close()

      let published = batches.flatMap(\.deltas)
      let consumer = try await TestConsumer(topic: topic, bootstrap: broker.bootstrap)
      let audit = DeliveryAudit(try await consumer.read(distinctOrigins: published.count))
      #expect(audit.missing(from: published).isEmpty)
      #expect(audit.unexpected(from: published).isEmpty)
      #expect(audit.altered(from: published).isEmpty)
    }
  }
}
