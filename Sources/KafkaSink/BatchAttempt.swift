import CRdKafka

/// How one attempt at a batch ended.
enum AttemptOutcome {
  /// Committed (or, at least once, every record acknowledged).
  case durable
  /// Not durable; try again after a pause.
  case retry(reason: String)
  /// Not durable and this librdkafka producer cannot continue (non-fencing
  /// fatal error, or a commit/abort stuck past the reset timeout): replace
  /// it, then try again.
  case replaceProducer(reason: String)
  /// Nothing will be published again (fenced, or replacement impossible).
  case terminal(KafkaSinkError)
  /// The shutdown deadline passed mid-attempt.
  case abandoned
}

/// One attempt at making a batch durable on one producer: a transaction
/// (begin, produce, commit, or abort on failure) exactly once, or produce
/// and wait for every acknowledgement at least once. Decides nothing
/// beyond the attempt: the publishing loop retries and replaces.
struct BatchAttempt {
  let context: SinkContext
  let producer: LibrdkafkaProducer
  /// Delivery reports of this attempt.
  let events: ProducerEvents
  let health: ProducerHealth
  let shutdown: ShutdownDeadline

  private var configuration: KafkaSinkConfiguration { context.configuration }

  func run(_ batch: EncodedBatch) -> AttemptOutcome {
    configuration.deliveryMode == .exactlyOnce ? transaction(batch) : acknowledged(batch)
  }

  /// One transaction: begin, produce every record, commit.
  private func transaction(_ batch: EncodedBatch) -> AttemptOutcome {
    if let error = producer.beginTransaction() {
      return failed(error, operation: "begin_transaction")
    }
    events.startAttempt(records: batch.records.count)
    if let failure = produce(batch) {
      if case .retry(let reason) = failure { return abortThenRetry(reason: reason) }
      return failure
    }
    let started = monotonicNanoseconds()
    while true {
      guard
        let error = producer.commitTransaction(
          milliseconds: configuration.operationTimeoutMilliseconds)
      else { return .durable }
      let reason = "commit_transaction: \(error)"
      guard error.isRetriable, case .recoverable = producer.severity(of: error) else {
        return failed(error, operation: "commit_transaction")
      }
      // Resumable: calling commit again continues the same commit.
      if shutdown.expired {
        // The commit may still complete in the background; the caller
        // republishes and consumers deduplicate on DeltaOrigin.
        _ = abortThenRetry(reason: reason)
        return .abandoned
      }
      if health.resetTimeoutPassed(since: started) {
        return .replaceProducer(
          reason:
            "commit did not complete within \(configuration.producerResetTimeoutMilliseconds) ms: "
            + reason + events.deliveries.errorSuffix)
      }
      context.status.transition(to: .retrying(reason: reason + events.deliveries.errorSuffix))
      context.logger.debug(
        "Kafka commit not finished yet; calling it again", metadata: ["reason": "\(reason)"])
    }
  }

  /// The outcome for a failed transactional call: fenced is terminal, fatal
  /// replaces the producer, anything else aborts and retries (librdkafka
  /// advises treating errors that are neither retriable nor abortable as
  /// fatal; an abort that succeeds shows the producer still works, and one
  /// that fails leads to a replacement).
  private func failed(_ error: LibrdkafkaError, operation: String) -> AttemptOutcome {
    let reason = "\(operation): \(error)\(events.deliveries.errorSuffix)"
    switch producer.severity(of: error) {
    case .fenced(let fenced): return .terminal(fenced)
    case .fatal(let detail): return health.replaceOrStop(reason: "\(operation): \(detail)")
    case .recoverable: return abortThenRetry(reason: reason)
    }
  }

  /// Aborts the open transaction, then asks for a retry (or says why not).
  private func abortThenRetry(reason: String) -> AttemptOutcome {
    let started = monotonicNanoseconds()
    while true {
      guard
        let error = producer.abortTransaction(
          milliseconds: configuration.operationTimeoutMilliseconds)
      else {
        context.metrics.transactionsAborted.increment()
        return .retry(reason: reason)
      }
      let abortReason = "abort_transaction: \(error)"
      switch producer.severity(of: error) {
      case .fenced(let fenced): return .terminal(fenced)
      case .fatal(let detail): return health.replaceOrStop(reason: "abort_transaction: \(detail)")
      case .recoverable: break
      }
      if error.code == RD_KAFKA_RESP_ERR__STATE {
        return .retry(reason: reason)  // no transaction in progress: nothing to abort
      }
      if !error.isRetriable { return health.replaceOrStop(reason: abortReason) }
      if shutdown.expired { return .abandoned }
      // On Tansu an abort after expired records never completes (its
      // InitProducerId rejects the epoch bump librdkafka needs); a new
      // producer's init_transactions aborts the transaction instead.
      if health.resetTimeoutPassed(since: started) {
        return .replaceProducer(
          reason:
            "abort did not complete within \(configuration.producerResetTimeoutMilliseconds) ms "
            + "(\(abortReason)) after: \(reason)")
      }
      context.status.transition(to: .retrying(reason: abortReason))
    }
  }

  /// Idempotent, non-transactional: produce every record, wait for every
  /// delivery report; any failure resends the whole batch (in order).
  private func acknowledged(_ batch: EncodedBatch) -> AttemptOutcome {
    events.startAttempt(records: batch.records.count)
    let produceFailure = produce(batch)
    while events.deliveries.pending > 0 {
      producer.flush(milliseconds: 100)
      if let terminal = health.terminalError { return .terminal(terminal) }
      if let reason = health.replacementReason { return .replaceProducer(reason: reason) }
      if shutdown.expired {
        producer.purge(inFlight: false)
        return .abandoned
      }
    }
    if let produceFailure { return produceFailure }
    let failed = events.deliveries.failed
    if failed > 0 {
      return .retry(
        reason:
          "\(failed) of \(batch.records.count) records undeliverable\(events.deliveries.errorSuffix)"
      )
    }
    return .durable
  }

  /// Hands every record to librdkafka. Returns nil when all were accepted;
  /// records not produced are taken off the pending count.
  private func produce(_ batch: EncodedBatch) -> AttemptOutcome? {
    let events = events
    guard
      let (index, error) = producer.produce(batch, tag: { events.deliveries.tag(index: $0) })
    else { return nil }
    events.notProduced(batch.records.count - index)
    switch producer.severity(of: error) {
    case .fenced(let fenced): return .terminal(fenced)
    case .fatal(let detail): return health.replaceOrStop(reason: "produce: \(detail)")
    case .recoverable: return .retry(reason: "produce: \(error)")
    }
  }
}
