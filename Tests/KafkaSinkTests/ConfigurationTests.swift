import Testing

@testable import KafkaSink

@Suite struct ConfigurationTests {
  private func base() -> KafkaSinkConfiguration {
    KafkaSinkConfiguration(
      bootstrap: "127.0.0.1:9092", topic: "deltas", transactionalID: "tracker-1")
  }

  private func rejectedSetting(_ configure: (inout KafkaSinkConfiguration) -> Void) -> String? {
    var configuration = base()
    configure(&configuration)
    do {
      try configuration.validate()
      return nil
    } catch {
      return error.setting
    }
  }

  @Test func defaultsAreExactlyOnceZstdAndValid() throws {
    let configuration = base()
    try configuration.validate()
    #expect(configuration.deliveryMode == .exactlyOnce)
    #expect(configuration.compression == .zstd)
    #expect(configuration.framing == .perDelta)
    #expect(!configuration.deltaHeaders)
    #expect(!configuration.allowTopicAutoCreation)
    let properties = Dictionary(
      uniqueKeysWithValues: configuration.librdkafkaProperties.map { ($0.name, $0.value) })
    #expect(properties["compression.codec"] == "zstd")
    #expect(properties["enable.idempotence"] == "true")
    #expect(properties["transactional.id"] == "tracker-1")
    #expect(properties["allow.auto.create.topics"] == "false")
    #expect(properties["bootstrap.servers"] == "127.0.0.1:9092")
    // The commit proves delivery: no report per delivered record.
    #expect(properties["delivery.report.only.error"] == "true")
  }

  @Test func atLeastOnceHasNoTransactionalID() throws {
    var configuration = base()
    configuration.deliveryMode = .atLeastOnce
    configuration.transactionalID = ""
    try configuration.validate()
    let names = configuration.librdkafkaProperties.map(\.name)
    #expect(!names.contains("transactional.id"))
    // Without a transaction the reports are the only proof of delivery.
    #expect(!names.contains("delivery.report.only.error"))
    #expect(names.contains("enable.idempotence"))
  }

  @Test func invalidValuesNameTheirSetting() {
    #expect(rejectedSetting { $0.bootstrap = " " } == "kafka.bootstrap")
    #expect(rejectedSetting { $0.topic = "" } == "kafka.topic")
    #expect(rejectedSetting { $0.topic = "deltas/v1" } == "kafka.topic")
    #expect(rejectedSetting { $0.transactionalID = "" } == "kafka.transactional_id")
    #expect(rejectedSetting { $0.maxInFlightDeltas = 0 } == "kafka.max_in_flight_deltas")
    #expect(rejectedSetting { $0.maxInFlightBytes = 0 } == "kafka.max_in_flight_bytes")
    #expect(
      rejectedSetting {
        $0.messageTimeoutMilliseconds = 90_000
        $0.transactionTimeoutMilliseconds = 60_000
      } == "kafka.message_timeout_ms")
  }

  @Test func passthroughCannotOverrideManagedProperties() {
    #expect(
      rejectedSetting { $0.properties = ["transactional.id": "x"] }
        == "kafka.properties.transactional.id")
    #expect(
      rejectedSetting { $0.properties = ["enable.idempotence": "false"] }
        == "kafka.properties.enable.idempotence")
    #expect(rejectedSetting { $0.properties = ["security.protocol": "sasl_ssl"] } == nil)
  }

  @Test func passthroughPropertiesComeLastNamingTheirSetting() {
    var configuration = base()
    configuration.properties = ["sasl.mechanisms": "PLAIN", "security.protocol": "sasl_plaintext"]
    let last = configuration.librdkafkaProperties.suffix(2)
    #expect(last.map(\.name) == ["sasl.mechanisms", "security.protocol"])
    #expect(
      last.map(\.setting) == [
        "kafka.properties.sasl.mechanisms", "kafka.properties.security.protocol",
      ])
  }
}
