import Synchronization
import Testing

@testable import PrivtrakService

/// `/readyz` semantics: ready only with every frontend listening, the sink
/// initialised and publishing, and no shutdown begun; each unmet condition
/// is named.
@Suite struct ReadinessTests {
  @Test func readyOnlyWhenEveryConditionHolds() {
    let readiness = Readiness()
    readiness.expect(frontends: ["http", "udp"])
    #expect(
      readiness.unmetConditions == [
        "http frontend not listening yet", "udp frontend not listening yet",
        "sink not initialised yet",
      ])
    readiness.frontendListening("http")
    readiness.frontendListening("udp")
    #expect(readiness.unmetConditions == ["sink not initialised yet"])
    readiness.sinkStarted()
    #expect(readiness.isReady)
    readiness.startDraining()
    #expect(readiness.unmetConditions == ["shutting down"])
  }

  @Test func aSinkThatStopsPublishingMakesTheInstanceUnready() {
    let readiness = Readiness()
    let fenced = Mutex(false)
    readiness.sinkStarted { fenced.withLock { $0 } ? "Kafka sink fenced (_FENCED)" : nil }
    #expect(readiness.isReady)
    fenced.withLock { $0 = true }
    #expect(readiness.unmetConditions == ["sink not publishing: Kafka sink fenced (_FENCED)"])
  }
}
