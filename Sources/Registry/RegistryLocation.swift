/// Where a registry lives: `file:PATH` or `kafka://HOST:PORT[,HOST:PORT]`
/// (the topics come from `registry.topics.*`). Used by `registry.source`,
/// `serve --registry` and the `privtrak registry` commands.
public enum RegistryLocation: Sendable, Hashable, CustomStringConvertible {
  /// A registry file (JSON Lines; see ``RegistryFile``).
  case file(path: String)
  /// A Kafka cluster's compacted registry topics.
  case kafka(bootstrap: String)

  /// Parses `file:PATH` or `kafka://HOST:PORT[,HOST:PORT]`; nil otherwise.
  public init?(parsing text: String) {
    if text.hasPrefix("file:") {
      let path = String(text.dropFirst(5))
      guard !path.isEmpty else { return nil }
      self = .file(path: path)
    } else if text.hasPrefix("kafka://") {
      var bootstrap = text.dropFirst(8)
      if bootstrap.hasSuffix("/") { bootstrap = bootstrap.dropLast() }
      guard !bootstrap.isEmpty, !bootstrap.contains("/") else { return nil }
      self = .kafka(bootstrap: String(bootstrap))
    } else {
      return nil
    }
  }

  public var description: String {
    switch self {
    case .file(let path): "file:\(path)"
    case .kafka(let bootstrap): "kafka://\(bootstrap)"
    }
  }
}
