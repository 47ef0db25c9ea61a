import Accounting
import DeltaModel
import DeltaWire
import Testing

@testable import KafkaSink

/// Publishes to the shared broker (`KAFKA_BOOTSTRAP`) and reads back with a
/// read_committed consumer; each test has its own topic.
@Suite struct PublishRoundTripTests {
  @Test(arguments: [RecordFraming.perDelta, .perBatch])
  func publishedBatchesReadBackIdenticalInPerUserOrder(framing: RecordFraming) async throws {
    let topic = TestKafka.uniqueName("privtrak-roundtrip")
    try await TestKafka.createTopic(topic, partitions: 3)
    var configuration = KafkaSinkConfiguration.test(topic: topic)
    configuration.framing = framing
    let metrics = RecordingMetricsFactory()
    let sink = try await KafkaSink.start(configuration: configuration, metricsFactory: metrics)
    #expect(sink.isReady)
    #expect(sink.state == .ready)
    #expect(metrics.gauge("privtrak_kafka_ready") == 1)

    var source = TestDeltaSource()
    let batches = source.batches(12, of: 25)
    for batch in batches { try await sink.publish(batch) }
    #expect(sink.inFlight == .zero)
    try await sink.close()
    #expect(metrics.counter("privtrak_kafka_batches_committed_total") == 12)
    #expect(metrics.counter("privtrak_kafka_deltas_committed_total") == 300)
    #expect(
      metrics.counter("privtrak_kafka_records_committed_total") == (framing == .perDelta ? 300 : 12)
    )
    #expect(metrics.counter("privtrak_kafka_bytes_committed_total") > 300 * 60)
    #expect(metrics.counter("privtrak_kafka_batch_retries_total") == 0)
    #expect(metrics.timerCount("privtrak_kafka_publish_duration_seconds") == 12)
    #expect(metrics.gauge("privtrak_kafka_in_flight_deltas") == 0)
    #expect(metrics.gauge("privtrak_kafka_ready") == 0, "closed")

    let published = batches.flatMap(\.deltas)
    let consumer = try await TestConsumer(topic: topic)
    let records = try await consumer.read(distinctOrigins: published.count)
    let audit = DeliveryAudit(records)
    #expect(audit.missing(from: published).isEmpty)
    #expect(audit.unexpected(from: published).isEmpty)
    #expect(audit.altered(from: published).isEmpty)
    #expect(audit.duplicateCount == 0, "no retry happened, so no copy may exist")
    switch framing {
    case .perDelta:
      #expect(records.count == published.count)
      for record in records { #expect(record.key == record.deltas[0].userID.bytes) }
    case .perBatch:
      #expect(records.count == batches.count)
      #expect(Set(records.map(\.partition)).count == 1, "one instance's batches share a partition")
    }
    // Per-user order: within each user, sequences increase in consumption order.
    let byUser = Dictionary(grouping: audit.copies, by: \.userID)
    for (user, deltas) in byUser {
      let sequences = deltas.map(\.origin.sequence)
      #expect(sequences == sequences.sorted(), "user \(user) out of order")
    }
  }

  /// On the wire: per-delta records carry no headers by default and both
  /// privtrak headers with `deltaHeaders`; per-batch records always do.
  @Test(arguments: [
    (RecordFraming.perDelta, false), (.perDelta, true), (.perBatch, false),
  ])
  func recordHeadersOnTheWireFollowTheSetting(framing: RecordFraming, deltaHeaders: Bool)
    async throws
  {
    let topic = TestKafka.uniqueName("privtrak-headers")
    try await TestKafka.createTopic(topic, partitions: 1)
    var configuration = KafkaSinkConfiguration.test(topic: topic)
    configuration.framing = framing
    configuration.deltaHeaders = deltaHeaders
    let sink = try await KafkaSink.start(configuration: configuration)
    var source = TestDeltaSource()
    let batch = source.batch(of: 10)
    try await sink.publish(batch)
    try await sink.close()

    let expectedRecords = framing == .perDelta ? 10 : 1
    let consumer = try await TestConsumer(topic: topic)
    let raw = try await consumer.readRaw { $0.count >= expectedRecords }
    #expect(raw.count == expectedRecords)
    let expectedHeaders: [String] =
      framing == .perBatch || deltaHeaders ? ["privtrak-type", "privtrak-schema"] : []
    for record in raw { #expect(record.headers.map(\.name) == expectedHeaders) }
    let decoded = try raw.flatMap {
      try KafkaRecordLayout.decode(key: $0.key, value: $0.value, headers: $0.headers)
    }
    #expect(decoded == batch.deltas)
  }

  @Test func atLeastOnceModePublishesWithoutTransactions() async throws {
    let topic = TestKafka.uniqueName("privtrak-alo")
    try await TestKafka.createTopic(topic, partitions: 2)
    var configuration = KafkaSinkConfiguration.test(topic: topic)
    configuration.deliveryMode = .atLeastOnce
    configuration.transactionalID = ""
    let sink = try await KafkaSink.start(configuration: configuration)
    var source = TestDeltaSource()
    let batches = source.batches(5, of: 40)
    for batch in batches { try await sink.publish(batch) }
    try await sink.close()

    let published = batches.flatMap(\.deltas)
    let consumer = try await TestConsumer(topic: topic, readCommitted: false)
    let audit = DeliveryAudit(try await consumer.read(distinctOrigins: published.count))
    #expect(audit.missing(from: published).isEmpty)
    #expect(audit.unexpected(from: published).isEmpty)
    #expect(audit.altered(from: published).isEmpty)
    #expect(audit.duplicateCount == 0)
  }

  @Test func aClosedSinkRefusesBatchesAndReportsNotReady() async throws {
    let topic = TestKafka.uniqueName("privtrak-close")
    try await TestKafka.createTopic(topic, partitions: 1)
    let sink = try await KafkaSink.start(configuration: .test(topic: topic))
    var source = TestDeltaSource()
    try await sink.publish(source.batch(of: 3))
    try await sink.close()
    #expect(sink.state == .closed)
    #expect(!sink.isReady)
    await #expect(throws: KafkaSinkError.closed) { try await sink.publish(source.batch(of: 1)) }
    try await sink.close()  // a second close is harmless
  }

  @Test func anEmptyBatchIsANoOp() async throws {
    let topic = TestKafka.uniqueName("privtrak-empty")
    try await TestKafka.createTopic(topic, partitions: 1)
    let sink = try await KafkaSink.start(configuration: .test(topic: topic))
    try await sink.publish(DeltaBatch(deltas: []))
    #expect(sink.peakInFlight == .zero)
    try await sink.close()
  }
}
