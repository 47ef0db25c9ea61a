import CRdKafka
import KafkaSink
import Registry

/// Publishes registry changes to their compacted topics, for
/// `privtrak registry put-… --to kafka://…` and tests: an idempotent
/// producer (`acks=all`), every record's delivery checked before
/// ``publish(_:)`` returns. Blocking; not thread-safe.
public final class KafkaRegistryPublisher {
  /// Topic names.
  public let topics: RegistryTopics
  private let client: OpaquePointer
  private let deliveries: DeliveryOutcomes
  private var topicHandles: [RegistryEntity: OpaquePointer] = [:]
  private var closed = false

  /// Collects delivery reports (librdkafka's opaque; it does not retain it).
  private final class DeliveryOutcomes {
    var delivered = 0
    var failures: [String] = []
  }

  /// Connects (lazily, as librdkafka does); with `createTopics`, first
  /// creates missing topics compacted.
  public init(
    bootstrap: String, topics: RegistryTopics = RegistryTopics(), createTopics: Bool = true,
    properties: [String: String] = [:]
  ) throws(KafkaRegistryError) {
    self.topics = topics
    if createTopics {
      try KafkaTopicCreator.createCompacted(
        bootstrap: bootstrap, topics: RegistryEntity.allCases.map { topics[$0] },
        properties: properties, logger: .init(label: "privtrak.registry"))
    }
    var settings = [
      "bootstrap.servers": bootstrap, "enable.idempotence": "true", "acks": "all",
      "linger.ms": "5", "message.timeout.ms": "30000", "log_level": "4",
    ]
    settings.merge(properties) { _, extra in extra }
    let deliveries = DeliveryOutcomes()
    let client: OpaquePointer
    do throws(LibrdkafkaClientError) {
      client = try LibrdkafkaClient.create(RD_KAFKA_PRODUCER, settings: settings) { conf in
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(deliveries).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
          guard let message, let opaque else { return }
          let outcomes = Unmanaged<DeliveryOutcomes>.fromOpaque(opaque).takeUnretainedValue()
          if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            outcomes.delivered += 1
          } else {
            outcomes.failures.append(String(cString: rd_kafka_err2str(message.pointee.err)))
          }
        }
      }
    } catch {
      throw .publishing(error.message)
    }
    self.client = client
    self.deliveries = deliveries
  }

  deinit { close() }

  /// Publishes the changes in order and waits until each is acknowledged.
  /// - Throws: ``KafkaRegistryError/publishing(_:)`` naming the first failure.
  public func publish(_ changes: [RegistryChange], timeoutMilliseconds: Int32 = 30_000)
    throws(KafkaRegistryError)
  {
    try publish(
      records: changes.map(RegistryRecordCodec.encode), timeoutMilliseconds: timeoutMilliseconds)
  }

  /// Publishes records as they are (tests use it to publish records a
  /// tracker must reject) and waits until each is acknowledged.
  public func publish(records: [RegistryRecord], timeoutMilliseconds: Int32 = 30_000)
    throws(KafkaRegistryError)
  {
    precondition(!closed, "publish after close")
    deliveries.delivered = 0
    deliveries.failures = []
    for record in records {
      let handle = try topicHandle(record.entity)
      let result = record.key.withUnsafeBytes { key in
        if let value = record.value {
          return value.withUnsafeBytes { value in
            rd_kafka_produce(
              handle, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
              UnsafeMutableRawPointer(mutating: value.baseAddress), value.count, key.baseAddress,
              key.count, nil)
          }
        }
        // A null value: the tombstone compaction keeps until it deletes the key.
        return rd_kafka_produce(
          handle, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, nil, 0, key.baseAddress, key.count,
          nil)
      }
      guard result == 0 else {
        throw .publishing(
          "\(topics[record.entity]): \(String(cString: rd_kafka_err2str(rd_kafka_last_error())))")
      }
    }
    let flushed = rd_kafka_flush(client, timeoutMilliseconds)
    if let failure = deliveries.failures.first {
      throw .publishing(failure)
    }
    guard flushed == RD_KAFKA_RESP_ERR_NO_ERROR, deliveries.delivered == records.count else {
      throw .publishing(
        "\(records.count - deliveries.delivered) record(s) not acknowledged within "
          + "\(timeoutMilliseconds) ms")
    }
  }

  /// Frees the client.
  public func close() {
    guard !closed else { return }
    closed = true
    for handle in topicHandles.values { rd_kafka_topic_destroy(handle) }
    rd_kafka_destroy(client)
  }

  private func topicHandle(_ entity: RegistryEntity) throws(KafkaRegistryError) -> OpaquePointer {
    if let handle = topicHandles[entity] { return handle }
    guard let handle = rd_kafka_topic_new(client, topics[entity], nil) else {
      throw .publishing("\(topics[entity]): cannot create a topic handle")
    }
    topicHandles[entity] = handle
    return handle
  }
}
