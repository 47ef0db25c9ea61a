import Registry
import Testing

@testable import PrivtrakService

/// The `registry.*` keys: what they parse to and how bad values fail.
@Suite struct RegistryConfigurationTests {
  @Test func defaultsAreAnOpenTrackerWithoutARegistry() throws {
    let configuration = try ServiceConfiguration.parse(yaml: "", file: "empty.yaml")
    #expect(configuration.registry.source == nil)
    #expect(configuration.registry.modes == RegistryModes(users: .passkeyIsUserID, torrents: .any))
  }

  @Test func sourcesModesAndTopicsParse() throws {
    let yaml = """
      registry:
        source: kafka://a:9092,b:9092
        users: registered
        torrents: registered
        topics:
          users: site.users
        create_topics: true
      """
    let registry = try ServiceConfiguration.parse(yaml: yaml, file: "r.yaml").registry
    #expect(registry.source == .kafka(bootstrap: "a:9092,b:9092"))
    #expect(registry.modes == RegistryModes(users: .registered, torrents: .registered))
    #expect(registry.topics[.users] == "site.users")
    #expect(registry.topics[.torrents] == "privtrak.registry.torrents")
    #expect(registry.createTopics)
    let file = try ServiceConfiguration.parse(
      yaml: "", file: "e.yaml", environment: ["PRIVTRAK_REGISTRY_SOURCE": "file:/srv/r.jsonl"])
    #expect(file.registry.source == .file(path: "/srv/r.jsonl"))
  }

  @Test func registeredModesWithoutASourceAreRefusedNamingTheKey() {
    #expect {
      try ServiceConfiguration.parse(yaml: "registry:\n  users: registered\n", file: "r.yaml")
    } throws: { error in
      guard let error = error as? ConfigurationError else { return false }
      return error.key == "registry.source" && error.description.contains("r.yaml")
        && error.problem.contains("registry.users: registered")
    }
  }

  @Test(arguments: [
    ("registry:\n  source: http://x\n", "registry.source"),
    ("registry:\n  users: everyone\n", "registry.users"),
    ("registry:\n  torrents: some\n", "registry.torrents"),
    ("registry:\n  topics:\n    users: \"\"\n", "registry.topics.users"),
    ("registry:\n  pending_retry_minutes: 0\n", "registry.pending_retry_minutes"),
  ])
  func badValuesNameTheirKey(yaml: String, key: String) {
    #expect {
      try ServiceConfiguration.parse(yaml: yaml, file: "bad.yaml")
    } throws: { error in
      (error as? ConfigurationError)?.key == key
    }
  }
}
