import CRdKafka
import Dispatch
import Foundation

/// Where the integration tests find Kafka: `KAFKA_BOOTSTRAP`, else the
/// `scripts/broker` default. The same suite runs against any Kafka cluster.
enum TestKafka {
  static let bootstrap = ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP"] ?? "127.0.0.1:19092"

  /// A name no other test (or earlier run against the same broker) uses.
  static func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UInt64.random(in: 0..<UInt64.max) & 0xffff_ffff_ffff)"
  }

  /// Runs blocking librdkafka calls on a Dispatch thread, never on the
  /// cooperative pool (2 cores: blocking it would stall the sink's own
  /// continuations).
  static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
  }

  /// Creates a topic with the admin API and waits until metadata lists it.
  static func createTopic(_ name: String, partitions: Int32 = 3, bootstrap: String = bootstrap)
    async throws
  {
    try await blocking {
      let client = try makeClient(
        type: RD_KAFKA_PRODUCER, properties: ["bootstrap.servers": bootstrap])
      defer { rd_kafka_destroy(client) }
      var errorText = [CChar](repeating: 0, count: 512)
      guard let newTopic = rd_kafka_NewTopic_new(name, partitions, 1, &errorText, errorText.count)
      else {
        throw TestKafkaError("NewTopic \(name): \(String(nulTerminated: errorText))")
      }
      defer { rd_kafka_NewTopic_destroy(newTopic) }
      let queue = rd_kafka_queue_new(client)
      defer { rd_kafka_queue_destroy(queue) }
      var topics: [OpaquePointer?] = [newTopic]
      rd_kafka_CreateTopics(client, &topics, 1, nil, queue)
      guard let event = rd_kafka_queue_poll(queue, 15_000) else {
        throw TestKafkaError("CreateTopics \(name): no result within 15 s")
      }
      defer { rd_kafka_event_destroy(event) }
      if rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR {
        throw TestKafkaError(
          "CreateTopics \(name): \(String(cString: rd_kafka_event_error_string(event)))")
      }
      var count = 0
      let results = rd_kafka_CreateTopics_result_topics(
        rd_kafka_event_CreateTopics_result(event), &count)
      for index in 0..<count {
        guard let result = results?[index] else { continue }
        let code = rd_kafka_topic_result_error(result)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
          let text = rd_kafka_topic_result_error_string(result).map { String(cString: $0) } ?? ""
          throw TestKafkaError(
            "CreateTopics \(name): \(String(cString: rd_kafka_err2name(code))) \(text)")
        }
      }
    }
    let deadline = ContinuousClock.now + .seconds(15)
    while try await partitionCount(of: name, bootstrap: bootstrap) == 0 {
      if ContinuousClock.now > deadline {
        throw TestKafkaError("topic \(name) not visible after creation")
      }
      try await Task.sleep(for: .milliseconds(20))  // polling a real condition with a deadline
    }
  }

  /// The partition count of `topic` from an all-topics metadata request
  /// (which never auto-creates), 0 when the broker does not list it.
  static func partitionCount(of topic: String, bootstrap: String = bootstrap) async throws -> Int {
    try await blocking {
      let client = try makeClient(
        type: RD_KAFKA_PRODUCER, properties: ["bootstrap.servers": bootstrap])
      defer { rd_kafka_destroy(client) }
      var metadata: UnsafePointer<rd_kafka_metadata>?
      let code = rd_kafka_metadata(client, 1, nil, &metadata, 10_000)
      guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
        throw TestKafkaError("metadata: \(String(cString: rd_kafka_err2str(code)))")
      }
      defer { rd_kafka_metadata_destroy(metadata) }
      let topics = UnsafeBufferPointer(
        start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
      guard let entry = topics.first(where: { String(cString: $0.topic) == topic }),
        entry.err == RD_KAFKA_RESP_ERR_NO_ERROR
      else { return 0 }
      return Int(entry.partition_cnt)
    }
  }

  /// A librdkafka client with `properties`; logs of level warning and above go to stderr.
  static func makeClient(type: rd_kafka_type_t, properties: [String: String]) throws
    -> OpaquePointer
  {
    var errorText = [CChar](repeating: 0, count: 512)
    let conf = rd_kafka_conf_new()
    for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
      guard rd_kafka_conf_set(conf, name, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK
      else {
        rd_kafka_conf_destroy(conf)
        throw TestKafkaError("\(name)=\(value): \(String(nulTerminated: errorText))")
      }
    }
    rd_kafka_conf_set(conf, "log_level", "4", &errorText, errorText.count)
    guard let client = rd_kafka_new(type, conf, &errorText, errorText.count) else {
      rd_kafka_conf_destroy(conf)
      throw TestKafkaError("rd_kafka_new: \(String(nulTerminated: errorText))")
    }
    return client
  }
}

/// A failure of the test harness itself (not of the code under test).
struct TestKafkaError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

extension String {
  /// The text of a NUL-terminated C buffer.
  init(nulTerminated buffer: [CChar]) {
    self = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }
}
