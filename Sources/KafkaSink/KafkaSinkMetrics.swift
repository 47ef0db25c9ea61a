import Metrics

/// The sink's metrics, all named `privtrak_kafka_*` and labelled with the topic.
struct KafkaSinkMetrics: Sendable {
  /// Batches made durable (transaction committed, or every record acknowledged).
  let batchesCommitted: Counter
  /// Deltas in those batches.
  let deltasCommitted: Counter
  /// Encoded record bytes (keys, values, headers) in those batches.
  let bytesCommitted: Counter
  /// Kafka records in those batches.
  let recordsCommitted: Counter
  /// Transactions aborted (before a retry, or on shutdown).
  let transactionsAborted: Counter
  /// Attempts of a batch after its first.
  let batchRetries: Counter
  /// librdkafka producers replaced (fatal error, or a transaction stuck past the reset timeout).
  let producerReplacements: Counter
  /// Records librdkafka reported undeliverable (the batch is then retried).
  let deliveryFailures: Counter
  /// Errors librdkafka reported through its error callback, by kind.
  let clientErrors: @Sendable (String) -> Counter
  /// Publishes that threw, by reason (fenced, fatal, closed, saturated, cancelled).
  let publishFailures: @Sendable (String) -> Counter
  /// Seconds from admission to durable, retries included.
  let publishDuration: Timer
  /// Deltas admitted and not yet durable.
  let inFlightDeltas: Gauge
  /// Encoded bytes admitted and not yet durable.
  let inFlightBytes: Gauge
  /// Publishers suspended waiting for room.
  let waitingPublishers: Gauge
  /// 1 when ready (or retrying), else 0.
  let ready: Gauge
  /// 1 once fenced by another producer with the same transactional id.
  let fenced: Gauge
  /// Messages and requests in librdkafka's queues (`rd_kafka_outq_len`),
  /// sampled while idle: what librdkafka itself still holds.
  let librdkafkaQueuedMessages: Gauge

  init(topic: String, factory: any MetricsFactory) {
    let dimensions = [("topic", topic)]
    func counter(_ name: String) -> Counter {
      Counter(label: "privtrak_kafka_\(name)", dimensions: dimensions, factory: factory)
    }
    func gauge(_ name: String) -> Gauge {
      Gauge(label: "privtrak_kafka_\(name)", dimensions: dimensions, factory: factory)
    }
    batchesCommitted = counter("batches_committed_total")
    deltasCommitted = counter("deltas_committed_total")
    bytesCommitted = counter("bytes_committed_total")
    recordsCommitted = counter("records_committed_total")
    transactionsAborted = counter("transactions_aborted_total")
    batchRetries = counter("batch_retries_total")
    deliveryFailures = counter("delivery_failures_total")
    producerReplacements = counter("producer_replacements_total")
    clientErrors = { kind in
      Counter(
        label: "privtrak_kafka_client_errors_total", dimensions: dimensions + [("error", kind)],
        factory: factory)
    }
    publishFailures = { reason in
      Counter(
        label: "privtrak_kafka_publish_failures_total",
        dimensions: dimensions + [("reason", reason)],
        factory: factory)
    }
    publishDuration = Timer(
      label: "privtrak_kafka_publish_duration_seconds", dimensions: dimensions,
      preferredDisplayUnit: .seconds,
      factory: factory)
    inFlightDeltas = gauge("in_flight_deltas")
    inFlightBytes = gauge("in_flight_bytes")
    waitingPublishers = gauge("waiting_publishers")
    ready = gauge("ready")
    fenced = gauge("fenced")
    librdkafkaQueuedMessages = gauge("librdkafka_queued_messages")
  }
}
