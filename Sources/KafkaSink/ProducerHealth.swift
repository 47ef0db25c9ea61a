/// Whether the librdkafka producer can go on, must be replaced before the
/// next attempt, or is done for (fenced, or failed with no replacement
/// allowed). Both the error callback and the publishing loop report here;
/// not `Sendable`, so both stay on the producer thread.
final class ProducerHealth {
  private enum State {
    case usable
    /// A non-fencing fatal error, or a commit/abort stuck too long.
    case replacementDue(reason: String)
    /// Reported once: status, metrics, log, `onTerminal`.
    case terminal
  }

  private let context: SinkContext
  /// Told once when the producer becomes unusable.
  private let onTerminal: @Sendable (KafkaSinkError) -> Void
  private var state = State.usable

  init(context: SinkContext, onTerminal: @escaping @Sendable (KafkaSinkError) -> Void) {
    self.context = context
    self.onTerminal = onTerminal
  }

  /// The error every publish throws from now on, once terminal (or closed).
  var terminalError: KafkaSinkError? { context.status.terminalError }

  /// Why the producer must be replaced before the next attempt; nil when it need not be.
  var replacementReason: String? {
    if case .replacementDue(let reason) = state { return reason }
    return nil
  }

  /// Whether a stuck or fatally failed producer is replaced (`producerResetTimeoutMilliseconds` > 0).
  var replacementEnabled: Bool { context.configuration.producerResetTimeoutMilliseconds > 0 }

  /// The producer must be replaced before the next attempt (the latest reason is logged).
  func requireReplacement(reason: String) {
    if case .terminal = state { return }
    state = .replacementDue(reason: reason)
  }

  /// A new producer took over from the replaced one.
  func replaced() {
    if case .replacementDue = state { state = .usable }
  }

  /// librdkafka raised a fatal error (error callback): fenced is terminal,
  /// another fatal error replaces the producer when allowed.
  func fatalErrorRaised(_ error: KafkaSinkError) {
    switch error {
    case .fenced:
      enterTerminal(error)
    case .fatal(let detail) where replacementEnabled:
      // Not fenced: a new producer instance (same transactional id) recovers.
      requireReplacement(reason: "fatal error: \(detail)")
      context.logger.error(
        "Kafka producer raised a fatal error; it will be replaced",
        metadata: ["reason": "\(detail)"])
    default:
      enterTerminal(error)
    }
  }

  /// The outcome of a fatal, non-fencing error: replacement when enabled, else the end.
  func replaceOrStop(reason: String) -> AttemptOutcome {
    replacementEnabled ? .replaceProducer(reason: reason) : .terminal(.fatal(detail: reason))
  }

  /// Whether the reset timeout (when enabled) has passed since `start` (monotonic ns).
  func resetTimeoutPassed(since start: Int64) -> Bool {
    let timeout = context.configuration.producerResetTimeoutMilliseconds
    return timeout > 0 && monotonicNanoseconds() - start >= Int64(timeout) * 1_000_000
  }

  /// Moves to fenced/failed once: logs, metrics, and tells the sink.
  func enterTerminal(_ error: KafkaSinkError) {
    if case .terminal = state { return }
    state = .terminal
    switch error {
    case .fenced(let transactionalID, let detail):
      context.status.transition(to: .fenced(reason: detail), error: error)
      context.metrics.fenced.record(1)
      context.logger.critical(
        "Kafka producer fenced: another instance with the same transactional.id took over; this instance stops publishing and reports not ready (batches stay with the caller)",
        metadata: ["kafka.transactional_id": "\(transactionalID)", "reason": "\(detail)"])
    default:
      context.status.transition(to: .failed(reason: error.description), error: error)
      context.logger.critical(
        "Kafka producer failed fatally; this instance stops publishing and reports not ready",
        metadata: ["reason": "\(error)"])
    }
    context.metrics.ready.record(0)
    onTerminal(error)
  }
}
