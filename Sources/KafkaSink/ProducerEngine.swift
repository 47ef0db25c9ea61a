import CRdKafka
import Logging

/// The producer side of the sink, owned by the producer thread: the current
/// librdkafka producer, its start-up, the publishing loop (retries with
/// backoff, replacement of a stuck or fatally failed producer) and
/// shutdown.
///
/// Not `Sendable`: `ProducerThread` creates it on its own thread and hands
/// it only to the jobs it runs there, so everything below (and the
/// callbacks librdkafka serves inside its calls) runs on that one thread.
/// The shutdown deadline is the one piece other threads set.
final class ProducerEngine {
  private let context: SinkContext
  private let shutdownDeadline: ShutdownDeadline
  private let health: ProducerHealth
  private let events: ProducerEvents
  private let backoff: RetryBackoff
  /// nil before `start`, after `shutdown`/`discard`, and when a replacement
  /// could not create a new one.
  private var producer: LibrdkafkaProducer?

  /// - Parameters:
  ///   - shutdownDeadline: set by `KafkaSink.close`; retries stop once it passes.
  ///   - onTerminal: told once when the producer becomes unusable (fenced,
  ///     or failed with no replacement), on the producer thread.
  init(
    context: SinkContext, shutdownDeadline: ShutdownDeadline,
    onTerminal: @escaping @Sendable (KafkaSinkError) -> Void
  ) {
    self.context = context
    self.shutdownDeadline = shutdownDeadline
    health = ProducerHealth(context: context, onTerminal: onTerminal)
    events = ProducerEvents(context: context, health: health)
    backoff = RetryBackoff(configuration: context.configuration)
  }

  private var configuration: KafkaSinkConfiguration { context.configuration }
  private var logger: Logger { context.logger }
  private var metrics: KafkaSinkMetrics { context.metrics }

  // MARK: Start-up

  /// Creates the producer, checks that the cluster answers and the topic
  /// exists, and initialises transactions, all within the start-up timeout.
  func start() throws(KafkaSinkError) {
    let deadline =
      monotonicNanoseconds() + Int64(configuration.startupTimeoutMilliseconds) * 1_000_000
    let producer = try LibrdkafkaProducer(configuration: configuration, events: events)
    self.producer = producer
    try ProducerStartup(context: context, producer: producer, events: events, deadline: deadline)
      .run()
    context.status.transition(to: .ready)
    metrics.ready.record(1)
    logger.info(
      "Kafka sink ready",
      metadata: [
        "kafka.bootstrap": "\(configuration.bootstrap)", "kafka.topic": "\(configuration.topic)",
        "kafka.delivery": "\(configuration.deliveryMode.rawValue)",
        "kafka.transactional_id":
          "\(configuration.deliveryMode == .exactlyOnce ? configuration.transactionalID : "-")",
        "librdkafka": "\(LibrdkafkaVersion.runtime)",
      ])
  }

  // MARK: Publishing

  /// Makes `batch` durable, retrying (and, when stuck, replacing the
  /// producer) until it is, the sink is fenced, or the shutdown deadline
  /// passes. Blocks the producer thread.
  func publish(_ batch: EncodedBatch) -> Result<Void, KafkaSinkError> {
    let started = monotonicNanoseconds()
    var attempt = 0
    var failingSince: Int64?
    while true {
      if let terminal = health.terminalError { return .failure(terminal) }
      if shutdownDeadline.expired { return .failure(.closed) }
      if let reason = health.replacementReason {
        switch replaceProducer(reason: reason) {
        case .terminal(let error):
          health.enterTerminal(error)
          return .failure(error)
        case .abandoned:
          return .failure(.closed)
        default:
          break
        }
      }
      let outcome =
        producer.map {
          BatchAttempt(
            context: context, producer: $0, events: events, health: health,
            shutdown: shutdownDeadline
          ).run(batch)
        } ?? .terminal(.closed)
      var retryReason: String
      switch outcome {
      case .durable:
        metrics.batchesCommitted.increment()
        metrics.deltasCommitted.increment(by: Int64(batch.deltaCount))
        metrics.recordsCommitted.increment(by: Int64(batch.records.count))
        metrics.bytesCommitted.increment(by: Int64(batch.byteCount))
        metrics.publishDuration.recordNanoseconds(monotonicNanoseconds() - started)
        if attempt > 0 {
          logger.info(
            "Kafka batch durable after retries",
            metadata: ["attempts": "\(attempt + 1)", "deltas": "\(batch.deltaCount)"])
        }
        context.status.transition(to: .ready)
        return .success(())
      case .terminal(let error):
        health.enterTerminal(error)
        return .failure(error)
      case .abandoned:
        logger.warning(
          "Kafka batch abandoned: the shutdown timeout passed before it became durable; the caller keeps it",
          metadata: ["deltas": "\(batch.deltaCount)", "attempts": "\(attempt + 1)"])
        return .failure(.closed)
      case .replaceProducer(let reason):
        health.requireReplacement(reason: reason)
        retryReason = reason
      case .retry(let reason):
        retryReason = reason
      }
      attempt += 1
      metrics.batchRetries.increment()
      context.status.transition(to: .retrying(reason: retryReason))
      logger.log(
        level: RetryBackoff.logLevel(afterAttempt: attempt),
        "Kafka batch not durable yet; retrying",
        metadata: [
          "reason": "\(retryReason)", "attempt": "\(attempt)", "deltas": "\(batch.deltaCount)",
        ])
      let now = monotonicNanoseconds()
      let since = failingSince ?? now
      failingSince = since
      // Failing for long on a producer at least as old: start afresh.
      if health.replacementReason == nil, health.resetTimeoutPassed(since: since),
        health.resetTimeoutPassed(since: producer?.createdAt ?? 0)
      {
        health.requireReplacement(
          reason: "batch not durable for \((now - since) / 1_000_000) ms: \(retryReason)")
      }
      if health.replacementReason == nil {
        pause(milliseconds: backoff.milliseconds(afterAttempt: attempt))
      }
    }
  }

  /// Destroys the producer (dropping its unfinished attempt) and creates a
  /// new one with the same configuration and transactional id. Its
  /// `init_transactions` aborts whatever the old one left open, on the
  /// broker. Retries until the cluster answers or the shutdown deadline passes.
  /// - Returns: nil when replaced, else `.terminal` or `.abandoned`.
  private func replaceProducer(reason: String) -> AttemptOutcome? {
    metrics.producerReplacements.increment()
    logger.warning(
      "Replacing the librdkafka producer (same transactional.id); the new one aborts the open transaction",
      metadata: ["reason": "\(reason)"])
    discard(purging: true)
    let replacement: LibrdkafkaProducer
    do {
      replacement = try LibrdkafkaProducer(configuration: configuration, events: events)
    } catch {
      return .terminal(error)
    }
    producer = replacement
    health.replaced()
    guard configuration.deliveryMode == .exactlyOnce else { return nil }
    var attempt = 0
    while true {
      guard
        let error = replacement.initTransactions(
          milliseconds: configuration.operationTimeoutMilliseconds)
      else {
        logger.info("Kafka producer replaced; transactions initialised")
        return nil
      }
      let description = "init_transactions: \(error)"
      switch replacement.severity(of: error) {
      case .fenced(let fenced): return .terminal(fenced)
      case .fatal(let detail):
        return .terminal(.fatal(detail: "init_transactions after replacement: \(detail)"))
      case .recoverable: break
      }
      if error.code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED {
        return .terminal(
          .authorizationFailed(setting: KafkaSetting.transactionalID, detail: description))
      }
      if !error.isRetriable {
        return .terminal(.fatal(detail: "after replacement, \(description)"))
      }
      if shutdownDeadline.expired { return .abandoned }
      attempt += 1
      context.status.transition(to: .retrying(reason: description))
      pause(milliseconds: backoff.milliseconds(afterAttempt: attempt))
    }
  }

  /// Sleeps while serving callbacks, waking early at the shutdown deadline.
  private func pause(milliseconds duration: Int) {
    guard let producer else { return }
    let until = monotonicNanoseconds() + Int64(duration) * 1_000_000
    while !shutdownDeadline.expired {
      let remaining = milliseconds(until: until)
      if remaining <= 0 { return }
      producer.poll(milliseconds: min(remaining, 100))
    }
  }

  // MARK: Idle, shutdown

  /// Serves callbacks while no batch is in progress, and samples
  /// librdkafka's own queue (records produced and not yet acknowledged).
  func poll() {
    guard let producer else { return }
    producer.poll(milliseconds: 0)
    metrics.librdkafkaQueuedMessages.record(producer.queuedMessages)
  }

  /// Flushes what is left (nothing, in transactional mode) and destroys the producer.
  func shutdown() {
    guard let producer else { return }
    if health.terminalError == nil {
      producer.flush(
        milliseconds: min(
          shutdownDeadline.remainingMilliseconds, configuration.shutdownTimeoutMilliseconds))
    }
    discard()
  }

  /// Destroys the producer without flushing; with `purging`, drops queued
  /// and in-flight records first (their attempt is given up).
  func discard(purging: Bool = false) {
    if purging, let producer {
      producer.purge(inFlight: true)
      producer.poll(milliseconds: 0)  // deliver the purge reports while they are still tracked
    }
    producer = nil  // the only reference: destroyed here, on this thread
  }
}
