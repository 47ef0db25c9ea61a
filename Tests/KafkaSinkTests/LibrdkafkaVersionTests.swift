import Testing

@testable import KafkaSink

@Suite struct LibrdkafkaVersionTests {
  @Test func decodesRdKafkaVersionHexEncoding() {
    #expect(
      LibrdkafkaVersion(packed: 0x0200_02ff) == LibrdkafkaVersion(major: 2, minor: 0, revision: 2))
    #expect(
      LibrdkafkaVersion(packed: 0x0210_00ff) == LibrdkafkaVersion(major: 2, minor: 16, revision: 0))
    #expect(LibrdkafkaVersion(packed: 0x0202_0001).description == "2.2.0")
  }

  @Test func ordersByMajorMinorRevision() {
    let v202 = LibrdkafkaVersion(major: 2, minor: 0, revision: 2)
    let v210 = LibrdkafkaVersion(major: 2, minor: 1, revision: 0)
    let v220 = LibrdkafkaVersion(major: 2, minor: 2, revision: 0)
    let v1_9_9 = LibrdkafkaVersion(major: 1, minor: 9, revision: 9)
    #expect(v1_9_9 < v202 && v202 < v210 && v210 < v220)
    #expect(!(v220 < v220))
    #expect(
      LibrdkafkaVersion(major: 2, minor: 10, revision: 0)
        > LibrdkafkaVersion(major: 2, minor: 9, revision: 9))
  }

  @Test func refusesReleasesBefore2_2WithTheFix() throws {
    for old in [(2, 0, 2), (2, 1, 1), (1, 9, 2)] {
      let version = LibrdkafkaVersion(major: old.0, minor: old.1, revision: old.2)
      guard case .unsupported(let message) = LibrdkafkaVersionAssessment(version) else {
        Issue.record("\(version) should be refused")
        continue
      }
      #expect(message.contains("librdkafka \(version) is too old"))
      #expect(message.contains("2.2.0"))
      #expect(message.contains("#4278"))
      #expect(message.contains("Read underflow"))
      #expect(message.contains("scripts/setup") && message.contains(". scripts/env.sh"))
    }
  }

  @Test func warnsBetween2_2And2_5() {
    for usable in [(2, 2, 0), (2, 4, 9)] {
      let version = LibrdkafkaVersion(major: usable.0, minor: usable.1, revision: usable.2)
      guard case .supportedWithWarning(let message) = LibrdkafkaVersionAssessment(version) else {
        Issue.record("\(version) should be accepted with a warning")
        continue
      }
      #expect(message.contains("2.5.0"))
    }
  }

  @Test func accepts2_5AndLater() {
    #expect(
      LibrdkafkaVersionAssessment(LibrdkafkaVersion(major: 2, minor: 5, revision: 0)) == .supported)
    #expect(
      LibrdkafkaVersionAssessment(LibrdkafkaVersion(major: 2, minor: 16, revision: 0)) == .supported
    )
    #expect(
      LibrdkafkaVersionAssessment(LibrdkafkaVersion(major: 3, minor: 0, revision: 0)) == .supported)
  }

  @Test func runtimeLibraryIsTheOneScriptsEnvProvides() {
    // `. scripts/env.sh` puts librdkafka >= 2.2 first on LD_LIBRARY_PATH;
    // without it Debian's 2.0.2 loads and every broker test would fail.
    #expect(
      LibrdkafkaVersion.runtime >= LibrdkafkaVersion.minimumSupported,
      "runtime librdkafka \(LibrdkafkaVersion.runtime): run `. scripts/env.sh` first")
  }
}
