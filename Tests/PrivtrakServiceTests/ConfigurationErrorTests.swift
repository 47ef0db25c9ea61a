import BitTorrent
import Foundation
import Testing

@testable import PrivtrakService

/// What the README promises about bad configuration: every problem is a
/// `ConfigurationError` naming where it came from, nothing passes silently.
@Suite struct ConfigurationErrorTests {
  @Test func missingFileIsAConfigurationErrorNamingTheFile() {
    let path = "/nonexistent-\(UInt64.random(in: 1...UInt64.max))/privtrak.yaml"
    #expect(
      throws: ConfigurationError(
        key: "", source: path, problem: "cannot read the file: No such file or directory")
    ) { try ServiceConfiguration.load(file: path) }
  }

  @Test func unreadableFileIsAConfigurationErrorNamingTheFile() {
    // A directory opens but cannot be read.
    let path = FileManager.default.temporaryDirectory.path
    #expect(
      throws: ConfigurationError(
        key: "", source: path, problem: "cannot read the file: Is a directory")
    ) { try ServiceConfiguration.load(file: path) }
  }

  @Test func loadReadsTheFile() throws {
    let path = FileManager.default.temporaryDirectory
      .appendingPathComponent("privtrak-load-\(UInt64.random(in: 1...UInt64.max)).yaml").path
    try "tracker:\n  max_numwant: 70\n".write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    #expect(try ServiceConfiguration.load(file: path).tracker.maxNumWant == 70)
    #expect(
      throws: ConfigurationError(
        key: "tracker.max_numwant", source: "environment variable PRIVTRAK_TRACKER_MAX_NUMWANT",
        problem: "expected an integer, got 'x'")
    ) {
      try ServiceConfiguration.load(file: path, environment: ["PRIVTRAK_TRACKER_MAX_NUMWANT": "x"])
    }
  }

  @Test func misspeltEnvironmentVariableIsAnErrorNamingIt() {
    #expect {
      try ServiceConfiguration.parse(
        yaml: "", file: "f.yaml", environment: ["PRIVTRAK_TRACKER_MAX_NUMWAN": "100"])
    } throws: { error in
      let error = error as? ConfigurationError
      return error?.source == "environment variable PRIVTRAK_TRACKER_MAX_NUMWAN"
        && error?.description.contains("overrides no configuration key") == true
    }
    // A misspelt section is caught the same way.
    #expect(throws: ConfigurationError.self) {
      try ServiceConfiguration.parse(
        yaml: "", file: "f.yaml", environment: ["PRIVTRAK_TRAKER_MAX_NUMWANT": "100"])
    }
  }

  @Test func nonConfigurationVariablesAndOtherVariablesAreIgnored() throws {
    var environment = Dictionary(
      uniqueKeysWithValues: ServiceConfiguration.nonConfigurationVariables.map { ($0, "x") })
    environment["HOME"] = "/root"
    environment["PRIVTRAK_TRACKER_MAX_NUMWANT"] = "100"
    environment["PRIVTRAK_KAFKA_PROPERTIES_SASL_PASSWORD"] = "secret"
    let config = try ServiceConfiguration.parse(yaml: "", file: "f.yaml", environment: environment)
    #expect(config.tracker.maxNumWant == 100)
    #expect(config.kafka.properties == ["sasl.password": "secret"])
  }

  @Test func readmeListsTheNonConfigurationVariables() throws {
    let readme = URL(fileURLWithPath: #filePath)
      .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("README.md")
    let text = try String(contentsOf: readme, encoding: .utf8)
    let section = try #require(
      text.components(separatedBy: "\n## Configuration reference\n").dropFirst().first
    )
    .components(separatedBy: "\n## ")[0]
    for name in ServiceConfiguration.nonConfigurationVariables {
      #expect(section.contains("`\(name)`"), "README's configuration reference omits \(name)")
    }
  }

  @Test(arguments: ["tracker.shards", "accounting.shards"])
  func shardCountMustBeAPowerOfTwo(key: String) throws {
    let parts = key.split(separator: ".")
    #expect(
      throws: ConfigurationError(
        key: key, source: "prod.yaml line 2",
        problem: "expected a power of two from 1 to 65536, got 1000")
    ) {
      try ServiceConfiguration.parse(yaml: "\(parts[0]):\n  \(parts[1]): 1000\n", file: "prod.yaml")
    }
    let variable = "PRIVTRAK_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
    #expect(
      throws: ConfigurationError(
        key: key, source: "environment variable \(variable)",
        problem: "expected a power of two from 1 to 65536, got 3")
    ) { try ServiceConfiguration.parse(yaml: "", file: "prod.yaml", environment: [variable: "3"]) }
    for count in [1, 2, 1024, 65_536] {
      let config = try ServiceConfiguration.parse(
        yaml: "", file: "prod.yaml", environment: [variable: "\(count)"])
      #expect(
        (key == "tracker.shards" ? config.tracker.shardCount : config.accounting.shardCount)
          == count)
    }
  }

  @Test func shardIndexMustBeBelowTheShardCount() throws {
    #expect(
      throws: ConfigurationError(
        key: "tracker.shard_index", source: "prod.yaml line 3",
        problem: "expected a shard from 0 to 2 (tracker.shard_count is 3), got 3")
    ) {
      try ServiceConfiguration.parse(
        yaml: "tracker:\n  shard_count: 3\n  shard_index: 3\n", file: "prod.yaml")
    }
    #expect(
      throws: ConfigurationError(
        key: "tracker.shard_count", source: "prod.yaml line 2",
        problem: "expected a value from 1 to 1024, got 0")
    ) { try ServiceConfiguration.parse(yaml: "tracker:\n  shard_count: 0\n", file: "prod.yaml") }
    let config = try ServiceConfiguration.parse(
      yaml: "tracker:\n  shard_count: 3\n", file: "prod.yaml",
      environment: ["PRIVTRAK_TRACKER_SHARD_INDEX": "2"])
    #expect(config.trackerShard == TrackerShard(index: 2, count: 3))
  }
}
