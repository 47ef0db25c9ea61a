import CRdKafka
import Logging

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

extension ProducerEngine {
  /// Makes `batch` durable, retrying (and, when stuck, replacing the
  /// producer) until it is, the sink is fenced, or the shutdown deadline
  /// passes. Blocks the producer thread.
  func publish(_ batch: EncodedBatch) -> Result<Void, KafkaSinkError> {
    let started = monotonicNanoseconds()
    var attempt = 0
    var failingSince: Int64?
    while true {
      if let terminal = status.terminalError { return .failure(terminal) }
      if shutdownExpired { return .failure(.closed) }
      if let reason = replacementReason {
        switch replaceClient(reason: reason) {
        case .terminal(let error):
          enterTerminal(error)
          return .failure(error)
        case .abandoned:
          return .failure(.closed)
        default:
          break
        }
      }
      let outcome =
        configuration.deliveryMode == .exactlyOnce
        ? transactionAttempt(batch) : acknowledgedAttempt(batch)
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
        status.transition(to: .ready)
        return .success(())
      case .terminal(let error):
        enterTerminal(error)
        return .failure(error)
      case .abandoned:
        logger.warning(
          "Kafka batch abandoned: the shutdown timeout passed before it became durable; the caller keeps it",
          metadata: ["deltas": "\(batch.deltaCount)", "attempts": "\(attempt + 1)"])
        return .failure(.closed)
      case .replaceProducer(let reason):
        replacementReason = reason
        retryReason = reason
      case .retry(let reason):
        retryReason = reason
      }
      attempt += 1
      metrics.batchRetries.increment()
      status.transition(to: .retrying(reason: retryReason))
      // Every attempt up to 3, then powers of two: visible, not a flood.
      let level: Logger.Level = attempt <= 3 || attempt & (attempt - 1) == 0 ? .warning : .debug
      logger.log(
        level: level, "Kafka batch not durable yet; retrying",
        metadata: [
          "reason": "\(retryReason)", "attempt": "\(attempt)", "deltas": "\(batch.deltaCount)",
        ])
      let now = monotonicNanoseconds()
      let since = failingSince ?? now
      failingSince = since
      // Failing for long on a producer at least as old: start afresh.
      if replacementReason == nil, resetTimeoutPassed(since: since),
        resetTimeoutPassed(since: clientCreatedAt)
      {
        replacementReason = "batch not durable for \((now - since) / 1_000_000) ms: \(retryReason)"
      }
      if replacementReason == nil { pause(milliseconds: backoffMilliseconds(attempt: attempt)) }
    }
  }

  /// One transaction: begin, produce every record, commit.
  private func transactionAttempt(_ batch: EncodedBatch) -> AttemptOutcome {
    guard let client else { return .terminal(.closed) }
    if let error = rd_kafka_begin_transaction(client) {
      defer { rd_kafka_error_destroy(error) }
      return failedAttempt(error, operation: "begin_transaction")
    }
    startDeliveryTracking(records: batch.records.count)
    if let failure = produce(batch) {
      if case .retry(let reason) = failure { return abortThenRetry(reason: reason) }
      return failure
    }
    let started = monotonicNanoseconds()
    while true {
      guard
        let error = rd_kafka_commit_transaction(
          client, Int32(configuration.operationTimeoutMilliseconds))
      else { return .durable }
      defer { rd_kafka_error_destroy(error) }
      let reason = "commit_transaction: \(Self.describe(error))"
      guard rd_kafka_error_is_retriable(error) != 0, case .recoverable = severity(of: error) else {
        return failedAttempt(error, operation: "commit_transaction")
      }
      // Resumable: calling commit again continues the same commit.
      if shutdownExpired {
        // The commit may still complete in the background; the caller
        // republishes and consumers deduplicate on DeltaOrigin.
        _ = abortThenRetry(reason: reason)
        return .abandoned
      }
      if resetTimeoutPassed(since: started) {
        return .replaceProducer(
          reason:
            "commit did not complete within \(configuration.producerResetTimeoutMilliseconds) ms: "
            + reason + deliveryErrorSuffix)
      }
      status.transition(to: .retrying(reason: reason + deliveryErrorSuffix))
      logger.debug(
        "Kafka commit not finished yet; calling it again", metadata: ["reason": "\(reason)"])
    }
  }

  /// The outcome for a failed transactional call: fenced is terminal, fatal
  /// replaces the producer, anything else aborts and retries (librdkafka
  /// advises treating errors that are neither retriable nor abortable as
  /// fatal; an abort that succeeds shows the producer still works, and one
  /// that fails leads to a replacement).
  private func failedAttempt(_ error: OpaquePointer, operation: String) -> AttemptOutcome {
    let reason = "\(operation): \(Self.describe(error))\(deliveryErrorSuffix)"
    switch severity(of: error) {
    case .fenced(let fenced): return .terminal(fenced)
    case .fatal(let detail): return replaceOrStop(reason: "\(operation): \(detail)")
    case .recoverable: return abortThenRetry(reason: reason)
    }
  }

  /// Aborts the open transaction, then asks for a retry (or says why not).
  private func abortThenRetry(reason: String) -> AttemptOutcome {
    guard let client else { return .terminal(.closed) }
    let started = monotonicNanoseconds()
    while true {
      guard
        let error = rd_kafka_abort_transaction(
          client, Int32(configuration.operationTimeoutMilliseconds))
      else {
        metrics.transactionsAborted.increment()
        return .retry(reason: reason)
      }
      defer { rd_kafka_error_destroy(error) }
      let abortReason = "abort_transaction: \(Self.describe(error))"
      switch severity(of: error) {
      case .fenced(let fenced): return .terminal(fenced)
      case .fatal(let detail): return replaceOrStop(reason: "abort_transaction: \(detail)")
      case .recoverable: break
      }
      if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__STATE {
        return .retry(reason: reason)  // no transaction in progress: nothing to abort
      }
      if rd_kafka_error_is_retriable(error) == 0 {
        return replaceOrStop(reason: abortReason)
      }
      if shutdownExpired { return .abandoned }
      // On Tansu an abort after expired records never completes (its
      // InitProducerId rejects the epoch bump librdkafka needs); a new
      // producer's init_transactions aborts the transaction instead.
      if resetTimeoutPassed(since: started) {
        return .replaceProducer(
          reason:
            "abort did not complete within \(configuration.producerResetTimeoutMilliseconds) ms "
            + "(\(abortReason)) after: \(reason)")
      }
      status.transition(to: .retrying(reason: abortReason))
    }
  }

  /// Idempotent, non-transactional: produce every record, wait for every
  /// delivery report; any failure resends the whole batch (in order).
  private func acknowledgedAttempt(_ batch: EncodedBatch) -> AttemptOutcome {
    guard let client else { return .terminal(.closed) }
    startDeliveryTracking(records: batch.records.count)
    let produceFailure = produce(batch)
    while pendingDeliveries > 0 {
      rd_kafka_flush(client, 100)
      if let terminal = status.terminalError { return .terminal(terminal) }
      if let reason = replacementReason { return .replaceProducer(reason: reason) }
      if shutdownExpired {
        rd_kafka_purge(client, RD_KAFKA_PURGE_F_QUEUE)
        return .abandoned
      }
    }
    if let produceFailure { return produceFailure }
    if failedDeliveries > 0 {
      return .retry(
        reason:
          "\(failedDeliveries) of \(batch.records.count) records undeliverable\(deliveryErrorSuffix)"
      )
    }
    return .durable
  }

  /// Hands every record of `batch` to librdkafka (copied). Returns nil when
  /// all were accepted; records not produced are taken off the pending count.
  private func produce(_ batch: EncodedBatch) -> AttemptOutcome? {
    guard let client, let topic else { return .terminal(.closed) }
    let maxHeaders = batch.records.lazy.map(\.headers.count).max() ?? 0
    ensureValueCapacity(5 + maxHeaders)
    let values = values
    return batch.storage.withUnsafeBytes { raw -> AttemptOutcome? in
      guard let base = raw.baseAddress else { return nil }
      let mutableBase = UnsafeMutableRawPointer(mutating: base)
      for (index, record) in batch.records.enumerated() {
        values[0].vtype = RD_KAFKA_VTYPE_RKT
        values[0].u.rkt = topic
        values[1].vtype = RD_KAFKA_VTYPE_KEY
        values[1].u.mem.ptr = record.key.isEmpty ? nil : mutableBase + record.key.lowerBound
        values[1].u.mem.size = record.key.count
        values[2].vtype = RD_KAFKA_VTYPE_VALUE
        values[2].u.mem.ptr = record.value.isEmpty ? nil : mutableBase + record.value.lowerBound
        values[2].u.mem.size = record.value.count
        values[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        values[3].u.i = RD_KAFKA_MSG_F_COPY
        values[4].vtype = RD_KAFKA_VTYPE_OPAQUE
        values[4].u.ptr = UnsafeMutableRawPointer(bitPattern: deliveryTag(index: index))
        var count = 5
        for header in batch.headers[record.headers] {
          values[count].vtype = RD_KAFKA_VTYPE_HEADER
          values[count].u.header.name = (base + header.nameOffset).assumingMemoryBound(
            to: CChar.self)
          values[count].u.header.val = UnsafeRawPointer(base + header.value.lowerBound)
          values[count].u.header.size = header.value.count
          count += 1
        }
        while let error = rd_kafka_produceva(client, values, count) {
          let code = rd_kafka_error_code(error)
          let severity = severity(of: error)
          let description = Self.describe(error)
          rd_kafka_error_destroy(error)
          if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
            rd_kafka_poll(client, 10)  // let librdkafka drain its queue, then try again
            continue
          }
          pendingDeliveries -= batch.records.count - index
          switch severity {
          case .fenced(let fenced): return .terminal(fenced)
          case .fatal(let detail): return replaceOrStop(reason: "produce: \(detail)")
          case .recoverable: return .retry(reason: "produce: \(description)")
          }
        }
      }
      return nil
    }
  }

  /// Replacement when enabled, else the producer is done for.
  private func replaceOrStop(reason: String) -> AttemptOutcome {
    configuration.producerResetTimeoutMilliseconds > 0
      ? .replaceProducer(reason: reason) : .terminal(.fatal(detail: reason))
  }

  private func resetTimeoutPassed(since start: Int64) -> Bool {
    let timeout = configuration.producerResetTimeoutMilliseconds
    return timeout > 0 && monotonicNanoseconds() - start >= Int64(timeout) * 1_000_000
  }

  /// Destroys the producer (dropping its unfinished attempt) and creates a
  /// new one with the same configuration and transactional id. Its
  /// `init_transactions` aborts whatever the old one left open, on the
  /// broker. Retries until the cluster answers or the shutdown deadline passes.
  /// - Returns: nil when replaced, else `.terminal` or `.abandoned`.
  private func replaceClient(reason: String) -> AttemptOutcome? {
    metrics.producerReplacements.increment()
    logger.warning(
      "Replacing the librdkafka producer (same transactional.id); the new one aborts the open transaction",
      metadata: ["reason": "\(reason)"])
    destroyClient(purging: true)
    do {
      try createClient()
    } catch {
      return .terminal(error)
    }
    replacementReason = nil
    guard configuration.deliveryMode == .exactlyOnce, let client else { return nil }
    var attempt = 0
    while true {
      guard
        let error = rd_kafka_init_transactions(
          client, Int32(configuration.operationTimeoutMilliseconds))
      else {
        logger.info("Kafka producer replaced; transactions initialised")
        return nil
      }
      defer { rd_kafka_error_destroy(error) }
      let description = "init_transactions: \(Self.describe(error))"
      switch severity(of: error) {
      case .fenced(let fenced): return .terminal(fenced)
      case .fatal(let detail):
        return .terminal(.fatal(detail: "init_transactions after replacement: \(detail)"))
      case .recoverable: break
      }
      if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED {
        return .terminal(
          .authorizationFailed(setting: KafkaSetting.transactionalID, detail: description))
      }
      if rd_kafka_error_is_retriable(error) == 0 {
        return .terminal(.fatal(detail: "after replacement, \(description)"))
      }
      if shutdownExpired { return .abandoned }
      attempt += 1
      status.transition(to: .retrying(reason: description))
      pause(milliseconds: backoffMilliseconds(attempt: attempt))
    }
  }
}
