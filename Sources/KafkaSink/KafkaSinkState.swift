import Synchronization

/// Where a `KafkaSink` is in its life, for logs and the service's `/readyz`.
public enum KafkaSinkState: Sendable, Equatable, CustomStringConvertible {
  /// `start` is connecting, checking the topic, initialising transactions.
  case starting
  /// Publishing normally.
  case ready
  /// A batch is being retried (broker unreachable, transaction aborted);
  /// publishes queue behind it and suspend once the in-flight bound is full.
  /// Still ready: an outage hits every instance alike, and back-pressure
  /// protects memory.
  case retrying(reason: String)
  /// Another producer with the same transactional id took over. Terminal:
  /// every publish throws `KafkaSinkError.fenced`.
  case fenced(reason: String)
  /// librdkafka raised a fatal error. Terminal: every publish throws `KafkaSinkError.fatal`.
  case failed(reason: String)
  /// `close` is draining admitted batches.
  case closing
  /// Closed; every publish throws `KafkaSinkError.closed`.
  case closed

  /// Whether the instance should receive traffic (`/readyz`): ready or retrying.
  public var isReady: Bool {
    switch self {
    case .ready, .retrying: true
    case .starting, .fenced, .failed, .closing, .closed: false
    }
  }

  /// Whether nothing will ever be published again.
  public var isTerminal: Bool {
    switch self {
    case .fenced, .failed, .closed: true
    case .starting, .ready, .retrying, .closing: false
    }
  }

  public var description: String {
    switch self {
    case .starting: "starting"
    case .ready: "ready"
    case .retrying(let reason): "retrying (\(reason))"
    case .fenced(let reason): "fenced (\(reason))"
    case .failed(let reason): "failed (\(reason))"
    case .closing: "closing"
    case .closed: "closed"
    }
  }
}

/// The sink's state and the error terminal states imply, shared between the
/// producer thread (writer) and any reader.
final class SinkStatus: Sendable {
  private struct Value {
    var state: KafkaSinkState = .starting
    var terminalError: KafkaSinkError?
  }

  private let value = Mutex(Value())

  var state: KafkaSinkState { value.withLock { $0.state } }

  /// The error every publish throws once the sink is terminal (fenced, failed, closed).
  var terminalError: KafkaSinkError? { value.withLock { $0.terminalError } }

  /// Moves to `state`. Terminal states are final (a fenced sink stays
  /// fenced after close, so `/readyz` keeps saying why), and a closing sink
  /// only moves on to a terminal state. Returns whether the state changed.
  @discardableResult
  func transition(to state: KafkaSinkState, error: KafkaSinkError? = nil) -> Bool {
    value.withLock { current in
      if current.state.isTerminal || current.state == state { return false }
      if current.state == .closing && !state.isTerminal { return false }
      current.state = state
      if let error { current.terminalError = error }
      return true
    }
  }
}
