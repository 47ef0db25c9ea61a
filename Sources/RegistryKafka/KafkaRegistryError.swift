import Registry

/// Why the Kafka registry source or publisher failed.
public enum KafkaRegistryError: Error, Sendable, Equatable, CustomStringConvertible {
  /// A registry topic does not exist and creating it was not allowed.
  case missingTopic(String)
  /// Reading a registry topic failed.
  case reading(topic: String, message: String)
  /// The topics were not read to their end within the start-up bound.
  case startTimedOut(topics: [String], seconds: Int)
  /// Creating the compacted topics failed.
  case creatingTopics(String)
  /// Publishing registry records failed.
  case publishing(String)
  /// No OS thread could be started.
  case noThread

  public var description: String {
    switch self {
    case .missingTopic(let topic):
      "registry topic '\(topic)' does not exist: create it with cleanup.policy=compact "
        + "(or set registry.create_topics: true)"
    case .reading(let topic, let message): "reading registry topic '\(topic)': \(message)"
    case .startTimedOut(let topics, let seconds):
      "registry topics \(topics.joined(separator: ", ")) not read to their end within \(seconds) s"
    case .creatingTopics(let message): "creating registry topics: \(message)"
    case .publishing(let message): "publishing registry records: \(message)"
    case .noThread: "cannot start the registry reader thread"
    }
  }
}

/// Where the registry topics are and how to reach them.
public struct KafkaRegistryConfiguration: Sendable, Hashable {
  /// `host:port[,host:port]`.
  public var bootstrap: String
  /// Topic names.
  public var topics: RegistryTopics
  /// Whether missing topics are created (compacted) instead of failing.
  public var createTopics: Bool
  /// How long start-up may take to read every topic to its end.
  public var startTimeout: Duration
  /// Extra librdkafka properties (security settings and the like).
  public var properties: [String: String]

  /// Creates a configuration.
  public init(
    bootstrap: String, topics: RegistryTopics = RegistryTopics(),
    createTopics: Bool = false, startTimeout: Duration = .seconds(120),
    properties: [String: String] = [:]
  ) {
    self.bootstrap = bootstrap
    self.topics = topics
    self.createTopics = createTopics
    self.startTimeout = startTimeout
    self.properties = properties
  }
}
