/// The kinds of registry record, one compacted topic each.
public enum RegistryEntity: String, Sendable, Hashable, CaseIterable {
  /// Users; key = the 16-byte user id.
  case users
  /// Torrents; key = the 20-byte info hash.
  case torrents
  /// Freeleech tokens; key = user id (16 bytes) then info hash (20 bytes).
  case tokens
  /// Site-wide factors; key = the ASCII bytes `global`.
  case global
  /// Client rules; key = the peer id prefix.
  case clients
}

/// The topic of each registry entity (`registry.topics.*`).
public struct RegistryTopics: Sendable, Hashable {
  /// Topic names by entity.
  public var names: [RegistryEntity: String]

  /// The defaults: `privtrak.registry.users`, `.torrents`, `.tokens`,
  /// `.global`, `.clients`.
  public init() {
    names = Dictionary(
      uniqueKeysWithValues: RegistryEntity.allCases.map { ($0, "privtrak.registry.\($0.rawValue)") }
    )
  }

  /// The topic of `entity`.
  public subscript(entity: RegistryEntity) -> String {
    get { names[entity] ?? "privtrak.registry.\(entity.rawValue)" }
    set { names[entity] = newValue }
  }

  /// The entity a topic holds, if it is one of these.
  public func entity(ofTopic topic: String) -> RegistryEntity? {
    RegistryEntity.allCases.first { self[$0] == topic }
  }
}
