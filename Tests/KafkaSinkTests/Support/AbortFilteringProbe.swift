import CRdKafka
import Foundation
import PrivtrakTestSupport

/// Whether the broker hides aborted transactions from read_committed
/// consumers, as Kafka does. Tansu 0.6.0 does not (its Fetch replies carry an
/// empty aborted-transactions list). Probed once per test run: one aborted
/// and one committed transaction, then a read_committed read.
enum AbortFilteringProbe {
  private static let result = Task { try await probe() }

  /// True when read_committed consumers never see aborted records.
  static func brokerFiltersAbortedRecords() async throws -> Bool {
    try await result.value("the abort-filtering probe to end")
  }

  /// A line for the test output saying which assertions a test ran.
  static func branchDescription(_ filters: Bool) -> String {
    filters
      ? "broker filters aborted transactions: asserting that no aborted copy is visible (strict exactly-once)"
      : "broker does NOT filter aborted transactions (Tansu): asserting no loss, and that every duplicate "
        + "is an identical copy of a delta with the same DeltaOrigin (consumers deduplicate on it)"
  }

  private static func probe() async throws -> Bool {
    let topic = TestKafka.uniqueName("privtrak-probe")
    try await TestKafka.createTopic(topic, partitions: 1)
    try await TestKafka.blocking {
      let client = try TestKafka.makeClient(
        type: RD_KAFKA_PRODUCER,
        properties: [
          "bootstrap.servers": TestKafka.bootstrap,
          "transactional.id": TestKafka.uniqueName("probe"),
        ])
      defer { rd_kafka_destroy(client) }
      try check(rd_kafka_init_transactions(client, 15_000), "init_transactions")
      for (value, commit) in [("aborted", false), ("committed", true)] {
        try check(rd_kafka_begin_transaction(client), "begin_transaction")
        try produce(client, topic: topic, value: value)
        // Flush first so the aborted record really reaches the log.
        rd_kafka_flush(client, 10_000)
        if commit {
          try check(rd_kafka_commit_transaction(client, 15_000), "commit_transaction")
        } else {
          try check(rd_kafka_abort_transaction(client, 15_000), "abort_transaction")
        }
      }
    }
    let consumer = try await TestConsumer(topic: topic)
    let raw = try await consumer.readRawValues { values in values.contains("committed") }
    return !raw.contains("aborted")
  }

  private static func produce(_ client: OpaquePointer, topic: String, value: String) throws {
    var bytes = Array(value.utf8)
    let error = topic.withCString { topicName in
      bytes.withUnsafeMutableBytes { buffer -> OpaquePointer? in
        var values = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 3)
        values[0].vtype = RD_KAFKA_VTYPE_TOPIC
        values[0].u.cstr = topicName
        values[1].vtype = RD_KAFKA_VTYPE_VALUE
        values[1].u.mem.ptr = buffer.baseAddress
        values[1].u.mem.size = buffer.count
        values[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        values[2].u.i = RD_KAFKA_MSG_F_COPY
        return rd_kafka_produceva(client, values, values.count)
      }
    }
    try check(error, "produce")
  }

  private static func check(_ error: OpaquePointer?, _ operation: String) throws {
    guard let error else { return }
    defer { rd_kafka_error_destroy(error) }
    throw TestKafkaError("probe \(operation): \(String(cString: rd_kafka_error_string(error)))")
  }
}

extension AbortFilteringProbe {
  /// Closes a transaction a stale request left open on a broker that does not
  /// fence it (Tansu), by initialising transactions once more under the same
  /// `transactional.id`, as a restarted instance would.
  ///
  /// Why: a request the old producer sent before the broker froze is served
  /// after it resumes, possibly after the replacement producer's
  /// `init_transactions`. Kafka rejects such a request (old epoch); Tansu
  /// accepts it and the partition stays in an open transaction, which stops
  /// read_committed consumers at that offset (see scripts/BROKER-NOTES.md).
  /// Kafka needs nothing here, so the step runs only where aborted records
  /// are not filtered, which identifies Tansu.
  static func closeStaleTransactions(
    transactionalID: String, bootstrap: String, filtersAborted: Bool
  ) async throws {
    guard !filtersAborted else { return }
    try await TestKafka.blocking {
      let client = try TestKafka.makeClient(
        type: RD_KAFKA_PRODUCER,
        properties: ["bootstrap.servers": bootstrap, "transactional.id": transactionalID])
      defer { rd_kafka_destroy(client) }
      try check(rd_kafka_init_transactions(client, 15_000), "init_transactions")
    }
  }
}
