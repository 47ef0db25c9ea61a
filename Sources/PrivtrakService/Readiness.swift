import Synchronization

/// Whether the instance should receive announces, and if not, why: every
/// configured frontend is listening, the sink is initialised and not fenced,
/// and no shutdown has begun. `/readyz` reports it.
public final class Readiness: Sendable {
  private struct State {
    var expectedFrontends: Set<String> = []
    var listeningFrontends: Set<String> = []
    var sinkStarted = false
    var draining = false
    var sinkCheck: (@Sendable () -> String?)?
    /// Replaces the tracker's conditions (another process's readiness).
    var customCheck: (@Sendable () -> [String])?
  }

  private let state = Mutex(State())

  /// A new, not-ready state.
  public init() {}

  /// The readiness of another process than the tracker (the ledger):
  /// `check` returns why it is not ready, empty when it is.
  public init(check: @escaping @Sendable () -> [String]) {
    state.withLock { $0.customCheck = check }
  }

  /// The frontends that must be listening before the instance is ready.
  func expect(frontends: some Sequence<String>) {
    state.withLock { $0.expectedFrontends = Set(frontends) }
  }

  /// A frontend bound its socket.
  func frontendListening(_ name: String) {
    state.withLock { _ = $0.listeningFrontends.insert(name) }
  }

  /// The sink is initialised; `check` returns nil while it can publish, or
  /// why it cannot (fenced, failed, closing).
  func sinkStarted(check: (@Sendable () -> String?)? = nil) {
    state.withLock {
      $0.sinkStarted = true
      $0.sinkCheck = check
    }
  }

  /// Shutdown has begun: no new announces are wanted.
  func startDraining() {
    state.withLock { $0.draining = true }
  }

  /// Why the instance is not ready; empty when it is.
  public var unmetConditions: [String] {
    let (snapshot, check) = state.withLock { ($0, $0.sinkCheck) }
    if let custom = snapshot.customCheck { return custom() }
    var reasons: [String] = []
    if snapshot.draining { reasons.append("shutting down") }
    for name in snapshot.expectedFrontends.subtracting(snapshot.listeningFrontends).sorted() {
      reasons.append("\(name) frontend not listening yet")
    }
    if !snapshot.sinkStarted {
      reasons.append("sink not initialised yet")
    } else if let problem = check?() {
      reasons.append("sink not publishing: \(problem)")
    }
    return reasons
  }

  /// True when ``unmetConditions`` is empty.
  public var isReady: Bool { unmetConditions.isEmpty }
}
