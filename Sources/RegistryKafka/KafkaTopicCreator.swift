import CRdKafka
import KafkaSink
import Logging

/// Creates compacted topics with librdkafka's admin API (CreateTopics);
/// topics that already exist are left as they are.
enum KafkaTopicCreator {
  /// Creates each missing topic with `cleanup.policy=compact`, one
  /// partition (a registry is small, and one partition keeps every
  /// producer's records for a key in order whatever partitioner it uses)
  /// and the broker's default replication factor. Blocks the calling thread.
  static func createCompacted(
    bootstrap: String, topics: [String], properties: [String: String], logger: Logger,
    timeoutMilliseconds: Int32 = 15_000
  ) throws(KafkaRegistryError) {
    var errorText = [CChar](repeating: 0, count: 512)
    var settings = ["bootstrap.servers": bootstrap, "log_level": "4"]
    settings.merge(properties) { _, extra in extra }
    let client: OpaquePointer
    do throws(LibrdkafkaClientError) {
      client = try LibrdkafkaClient.create(RD_KAFKA_PRODUCER, settings: settings)
    } catch {
      throw .creatingTopics(error.message)
    }
    defer { rd_kafka_destroy(client) }
    var newTopics: [OpaquePointer?] = []
    defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
    for topic in topics {
      guard let newTopic = rd_kafka_NewTopic_new(topic, 1, -1, &errorText, errorText.count) else {
        throw .creatingTopics("\(topic): \(text(errorText))")
      }
      newTopics.append(newTopic)
      rd_kafka_NewTopic_set_config(newTopic, "cleanup.policy", "compact")
    }
    let queue = rd_kafka_queue_new(client)
    defer { rd_kafka_queue_destroy(queue) }
    let options = rd_kafka_AdminOptions_new(client, RD_KAFKA_ADMIN_OP_CREATETOPICS)
    defer { rd_kafka_AdminOptions_destroy(options) }
    rd_kafka_AdminOptions_set_operation_timeout(
      options, timeoutMilliseconds, &errorText, errorText.count)
    newTopics.withUnsafeMutableBufferPointer { buffer in
      rd_kafka_CreateTopics(client, buffer.baseAddress, buffer.count, options, queue)
    }
    guard let event = rd_kafka_queue_poll(queue, timeoutMilliseconds + 5_000) else {
      throw .creatingTopics("no answer from \(bootstrap)")
    }
    defer { rd_kafka_event_destroy(event) }
    let eventError = rd_kafka_event_error(event)
    guard eventError == RD_KAFKA_RESP_ERR_NO_ERROR else {
      throw .creatingTopics(String(cString: rd_kafka_event_error_string(event)))
    }
    guard let result = rd_kafka_event_CreateTopics_result(event) else {
      throw .creatingTopics("unexpected admin result")
    }
    var count = 0
    guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return }
    for index in 0..<count {
      guard let topicResult = results[index] else { continue }
      let name = String(cString: rd_kafka_topic_result_name(topicResult))
      switch rd_kafka_topic_result_error(topicResult) {
      case RD_KAFKA_RESP_ERR_NO_ERROR:
        logger.notice("created compacted registry topic", metadata: ["topic": "\(name)"])
      case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
        break
      default:
        let message = rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) }
        throw .creatingTopics("\(name): \(message ?? "unknown error")")
      }
    }
  }

  private static func text(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }
}
