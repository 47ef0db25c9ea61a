import Foundation
import NIOCore
import Testing

@testable import PrivtrakService

@Suite struct ConfigurationTests {
  @Test func emptyDocumentGivesDefaults() throws {
    let config = try ServiceConfiguration.parse(yaml: "", file: "empty.yaml")
    #expect(config == ServiceConfiguration.defaults)
  }

  @Test func readsEverySectionAndEnvironmentOverrides() throws {
    let yaml = """
      http:
        listen: "[::1]:7070"
        trusted_proxies: [127.0.0.1, "::1"]
      udp:
        listen: off
      tracker:
        announce_interval_s: 600
        min_announce_interval_s: 300
        max_numwant: 80
        event_loop_threads: 3
      sink:
        url: kafka://broker-1:9092,broker-2:9092/privtrak.deltas
      log:
        level: debug
      """
    let config = try ServiceConfiguration.parse(
      yaml: yaml, file: "prod.yaml", environment: ["PRIVTRAK_TRACKER_MAX_NUMWANT": "120"])
    #expect(config.httpListen == ListenAddress(host: "::1", port: 7070))
    #expect(config.trustedProxies.map(\.description) == ["127.0.0.1/32", "::1/128"])
    #expect(config.udpListen == nil)
    #expect(config.tracker.announceInterval == 600)
    #expect(config.tracker.minAnnounceInterval == 300)
    #expect(config.tracker.maxNumWant == 120)
    #expect(config.eventLoopThreads == 3)
    #expect(
      config.sink == .kafka(bootstrap: "broker-1:9092,broker-2:9092", topic: "privtrak.deltas"))
    #expect(config.logLevel == "debug")
  }

  @Test func eventLoopThreadsFollowTheAffinityMaskUnlessConfigured() throws {
    #expect(EventLoopThreads.resolve(configured: 5) == 5)
    // The hex mask the code reads, checked against the range list the
    // kernel prints beside it ("0-1", "0,2-5").
    let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
    let list = try #require(
      status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
    let allowed = list.dropFirst("Cpus_allowed_list:".count)
      .split(separator: ",").map { range -> Int in
        let bounds = range.split(separator: "-").compactMap {
          Int($0.trimmingCharacters(in: .whitespaces))
        }
        return bounds.count == 2 ? bounds[1] - bounds[0] + 1 : 1
      }
      .reduce(0, +)
    #expect(EventLoopThreads.resolve(configured: 0) == max(1, min(System.coreCount, allowed)))
  }

  @Test func adminListenAndKafkaPropertiesFromFileAndEnvironment() throws {
    let yaml = """
      admin:
        listen: 0.0.0.0:9191
      kafka:
        properties:
          security.protocol: SASL_SSL
          sasl.username: tracker
      """
    let config = try ServiceConfiguration.parse(
      yaml: yaml, file: "prod.yaml",
      environment: [
        "PRIVTRAK_KAFKA_PROPERTIES_SASL_PASSWORD": "from-a-secret",
        "PRIVTRAK_KAFKA_PROPERTIES_SASL_USERNAME": "override",
        "PRIVTRAK_KAFKA_LINGER_MS": "7",
      ])
    #expect(config.adminListen == ListenAddress(host: "0.0.0.0", port: 9191))
    #expect(
      config.kafka.properties == [
        "security.protocol": "SASL_SSL", "sasl.username": "override",
        "sasl.password": "from-a-secret",
      ])
    #expect(config.kafka.lingerMilliseconds == 7)
    #expect(
      try ServiceConfiguration.parse(yaml: "admin:\n  listen: off\n", file: "f").adminListen == nil)
  }

  @Test func perDeltaHeadersAreOffUnlessAsked() throws {
    #expect(try !ServiceConfiguration.parse(yaml: "", file: "f").kafka.deltaHeaders)
    #expect(
      try ServiceConfiguration.parse(yaml: "kafka:\n  delta_headers: true\n", file: "f").kafka
        .deltaHeaders)
    #expect(
      try ServiceConfiguration.parse(
        yaml: "", file: "f", environment: ["PRIVTRAK_KAFKA_DELTA_HEADERS": "true"]
      ).kafka.deltaHeaders)
    #expect(throws: ConfigurationError.self) {
      try ServiceConfiguration.parse(yaml: "kafka:\n  delta_headers: sometimes\n", file: "f")
    }
  }

  @Test func ledgerGroupFromFileAndEnvironmentExcludesAStaticPartitionList() throws {
    #expect(try ServiceConfiguration.parse(yaml: "", file: "f").ledger.group == "")
    let grouped = try ServiceConfiguration.parse(
      yaml: "ledger:\n  group: site-ledgers\n", file: "ledger.yaml")
    #expect(grouped.ledger.group == "site-ledgers" && grouped.ledger.partitions.isEmpty)
    let overridden = try ServiceConfiguration.parse(
      yaml: "ledger:\n  group: site-ledgers\n", file: "ledger.yaml",
      environment: ["PRIVTRAK_LEDGER_GROUP": "other"])
    #expect(overridden.ledger.group == "other")
    #expect {
      try ServiceConfiguration.parse(
        yaml: "ledger:\n  group: site-ledgers\n  partitions: [0, 1]\n", file: "both.yaml")
    } throws: { error in
      guard let error = error as? ConfigurationError else { return false }
      return error.key == "ledger.group" && error.description.contains("ledger.partitions")
    }
  }

  @Test(arguments: ["sink:\n  url: \"null:\"\n", "sink:\n  url: none\n"])
  func nullSinkFromYAMLAndItsOlderSpelling(yaml: String) throws {
    let config = try ServiceConfiguration.parse(yaml: yaml, file: "bench.yaml")
    #expect(config.sink == .null)
    #expect(config.sink.description == "null:")
    #expect(ServiceConfiguration.SinkURL(parsing: "null:x") == nil, "null: takes no path")
  }

  @Test(arguments: [
    ("tracker:\n  announce_interval_s: soon\n", "tracker.announce_interval_s", "bad.yaml line 2"),
    ("tracker:\n  announce_interval_s: 5\n", "tracker.announce_interval_s", "bad.yaml line 2"),
    ("http:\n  listen: localhost\n", "http.listen", "bad.yaml line 2"),
    ("sink:\n  url: s3://bucket\n", "sink.url", "bad.yaml line 2"),
    ("tracker:\n  anounce_interval_s: 60\n", "tracker.anounce_interval_s", "bad.yaml line 2"),
    ("udp:\n  connection_id_secret: abc\n", "udp.connection_id_secret", "bad.yaml line 2"),
    ("log:\n  level: loud\n", "log.level", "bad.yaml line 2"),
    ("http:\n  trusted_proxies: [10.0.0.0/33]\n", "http.trusted_proxies", "bad.yaml line 2"),
  ])
  func invalidValuesNameKeyAndFile(yaml: String, key: String, source: String) {
    #expect {
      try ServiceConfiguration.parse(yaml: yaml, file: "bad.yaml")
    } throws: { error in
      guard let error = error as? ConfigurationError else { return false }
      return error.key == key && error.source == source && error.description.contains("bad.yaml")
    }
  }

  @Test func environmentOverrideErrorsNameTheVariable() {
    #expect {
      try ServiceConfiguration.parse(
        yaml: "", file: "x.yaml", environment: ["PRIVTRAK_HTTP_MAX_CONNECTIONS": "-3"])
    } throws: { error in
      (error as? ConfigurationError)?.source == "environment variable PRIVTRAK_HTTP_MAX_CONNECTIONS"
    }
  }

  @Test func malformedYAMLIsReported() {
    #expect(throws: ConfigurationError.self) {
      try ServiceConfiguration.parse(yaml: "http: [unclosed", file: "broken.yaml")
    }
  }

  @Test(arguments: [
    ("127.0.0.1:6969", "127.0.0.1", 6969),
    ("[::]:0", "::", 0),
    (":8080", "0.0.0.0", 8080),
  ])
  func parsesListenAddresses(text: String, host: String, port: Int) {
    #expect(ListenAddress(parsing: text) == ListenAddress(host: host, port: port))
  }

  @Test(arguments: ["127.0.0.1", "::1:80", "[::1]80", "host:65536", "host:-1"])
  func rejectsBadListenAddresses(text: String) {
    #expect(ListenAddress(parsing: text) == nil)
  }
}
