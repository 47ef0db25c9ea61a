import Accounting
import DeltaModel
import DeltaWire
import Testing

@testable import KafkaSink

/// Publishes with KafkaSink to a fresh topic on the shared broker
/// (`KAFKA_BOOTSTRAP`) and reads it back with KafkaDeltaReader, the reader
/// behind `privtrak tail`.
@Suite struct KafkaDeltaReaderTests {
  /// Per-batch framing puts one instance's batches in one partition, and
  /// per-delta framing on a single partition keeps every record in one log:
  /// both give a total order to compare against.
  @Test(arguments: [(RecordFraming.perBatch, Int32(3)), (.perDelta, 1)])
  func readsPublishedDeltasBackInOrderUntilTheEnd(framing: RecordFraming, partitions: Int32)
    async throws
  {
    let topic = TestKafka.uniqueName("privtrak-reader")
    try await TestKafka.createTopic(topic, partitions: partitions)
    var configuration = KafkaSinkConfiguration.test(topic: topic)
    configuration.framing = framing
    let sink = try await KafkaSink.start(configuration: configuration)
    var source = TestDeltaSource()
    let batches = source.batches(8, of: 20)
    for batch in batches { try await sink.publish(batch) }
    try await sink.close()
    let published = batches.flatMap(\.deltas)

    let (records, endOffsets, partitionIDs) = try await TestKafka.blocking {
      let reader = try KafkaDeltaReader(bootstrap: TestKafka.bootstrap, topic: topic)
      defer { reader.close() }
      var records: [KafkaDeltaRecord] = []
      let deadline = ContinuousClock.now + .seconds(30)
      while !reader.reachedEndAtStart {
        guard ContinuousClock.now < deadline else {
          throw TestKafkaError("reader did not reach the end: \(records.count) records")
        }
        records += try reader.poll(timeoutMilliseconds: 100)
      }
      return (records, reader.endOffsetsAtStart, reader.partitions)
    }
    #expect(partitionIDs == Array(0..<partitions))
    #expect(endOffsets.values.reduce(0, +) > 0)
    #expect(records.flatMap(\.deltas) == published)
    #expect(records.count == (framing == .perBatch ? batches.count : published.count))
    #expect(Set(records.map(\.partition)).count == 1)
  }

  @Test func emptyTopicIsAtItsEndImmediately() async throws {
    let topic = TestKafka.uniqueName("privtrak-reader-empty")
    try await TestKafka.createTopic(topic, partitions: 2)
    let (atEnd, records) = try await TestKafka.blocking {
      let reader = try KafkaDeltaReader(bootstrap: TestKafka.bootstrap, topic: topic)
      defer { reader.close() }
      return (reader.reachedEndAtStart, try reader.poll(timeoutMilliseconds: 200))
    }
    #expect(atEnd)
    #expect(records.isEmpty)
  }

  @Test func missingTopicIsReportedNotCreated() async throws {
    let topic = TestKafka.uniqueName("privtrak-reader-missing")
    let error = await #expect(throws: KafkaDeltaReaderError.self) {
      try await TestKafka.blocking {
        _ = try KafkaDeltaReader(bootstrap: TestKafka.bootstrap, topic: topic)
      }
    }
    #expect(error == .unknownTopic(topic: topic))
    #expect(try await TestKafka.partitionCount(of: topic) == 0)
  }
}
