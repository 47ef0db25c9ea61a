import Yams

/// A configuration problem, always naming the key, the file and what was expected.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
  /// The dotted key path, e.g. `tracker.announce_interval_s`.
  public var key: String
  /// The file the value came from (or the environment variable that overrode it).
  public var source: String
  /// What is wrong and what is expected.
  public var problem: String

  /// Creates an error.
  public init(key: String, source: String, problem: String) {
    self.key = key
    self.source = source
    self.problem = problem
  }

  public var description: String {
    key.isEmpty
      ? "configuration error in \(source): \(problem)"
      : "configuration error in \(source): \(key): \(problem)"
  }
}

/// Walks a YAML document key by key, applying `PRIVTRAK_<SECTION>_<KEY>`
/// environment overrides and rejecting unknown keys (typos must not pass silently).
struct ConfigReader {
  let file: String
  let environment: [String: String]
  private var root: [String: Node]
  private var consumed: Set<String> = []
  /// Environment prefixes of free-form maps read so far (`PRIVTRAK_KAFKA_PROPERTIES_`).
  private var mapPrefixes: [String] = []
  private var lines: [String: Int] = [:]

  init(yaml: String, file: String, environment: [String: String]) throws(ConfigurationError) {
    self.file = file
    self.environment = environment
    root = [:]
    let node: Node?
    do {
      node = try Yams.compose(yaml: yaml)
    } catch {
      throw ConfigurationError(key: "", source: file, problem: "not valid YAML: \(error)")
    }
    guard let node else { return }
    guard let mapping = node.mapping else {
      throw ConfigurationError(
        key: "", source: file, problem: "the top level must be a mapping of sections")
    }
    try flatten(mapping, prefix: "")
  }

  private mutating func flatten(_ mapping: Node.Mapping, prefix: String) throws(ConfigurationError)
  {
    for (keyNode, value) in mapping {
      guard let key = keyNode.string else {
        throw ConfigurationError(key: prefix, source: file, problem: "keys must be strings")
      }
      let path = prefix.isEmpty ? key : prefix + "." + key
      if let nested = value.mapping {
        try flatten(nested, prefix: path)
      } else {
        root[path] = value
        if let line = value.mark?.line { lines[path] = line }
      }
    }
  }

  /// The environment variable that overrides `key`.
  static func environmentName(for key: String) -> String {
    "PRIVTRAK_"
      + key.uppercased().map { $0 == "." || $0 == "-" ? "_" : $0 }.reduce(into: "") {
        $0.append($1)
      }
  }

  private func location(_ key: String) -> String {
    if environment[Self.environmentName(for: key)] != nil {
      return "environment variable \(Self.environmentName(for: key))"
    }
    if let line = lines[key] { return "\(file) line \(line)" }
    return file
  }

  private mutating func rawValue(_ key: String) throws(ConfigurationError) -> String? {
    consumed.insert(key)
    if let override = environment[Self.environmentName(for: key)] { return override }
    guard let node = root[key] else { return nil }
    if node.sequence != nil {
      throw ConfigurationError(
        key: key, source: location(key), problem: "expected a single value, got a list")
    }
    return node.string
  }

  func fail(_ key: String, _ problem: String) -> ConfigurationError {
    ConfigurationError(key: key, source: location(key), problem: problem)
  }

  /// A string, or nil when absent (for defaults that have no text form).
  mutating func string(_ key: String) throws(ConfigurationError) -> String? {
    try rawValue(key)
  }

  /// A string, or `defaultValue` when absent.
  mutating func string(_ key: String, default defaultValue: String) throws(ConfigurationError)
    -> String
  {
    try rawValue(key) ?? defaultValue
  }

  /// An integer within `range`, or `defaultValue` when absent.
  mutating func integer<T: FixedWidthInteger>(
    _ key: String, default defaultValue: T, range: ClosedRange<T>, unit: String = ""
  ) throws(ConfigurationError) -> T {
    guard let text = try rawValue(key) else { return defaultValue }
    let cleaned = text.filter { $0 != "_" }
    guard let value = T(cleaned) else {
      throw fail(key, "expected an integer\(unit.isEmpty ? "" : " (\(unit))"), got '\(text)'")
    }
    guard range.contains(value) else {
      throw fail(
        key,
        "expected a value from \(range.lowerBound) to \(range.upperBound)\(unit.isEmpty ? "" : " \(unit)"), got \(value)"
      )
    }
    return value
  }

  /// A decimal number of seconds ≥ `minimum`, as a Duration.
  mutating func seconds(_ key: String, default defaultValue: Duration, minimum: Double = 0)
    throws(ConfigurationError) -> Duration
  {
    guard let text = try rawValue(key) else { return defaultValue }
    guard let value = Double(text), value.isFinite, value >= minimum, value <= 86_400 * 365 else {
      throw fail(key, "expected a number of seconds ≥ \(minimum), got '\(text)'")
    }
    return .milliseconds(Int64(value * 1000))
  }

  /// A boolean (`true`/`false`/`yes`/`no`/`1`/`0`).
  mutating func bool(_ key: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
    guard let text = try rawValue(key) else { return defaultValue }
    switch text.lowercased() {
    case "true", "yes", "on", "1": return true
    case "false", "no", "off", "0": return false
    default: throw fail(key, "expected true or false, got '\(text)'")
    }
  }

  /// A list of strings (YAML sequence, or comma-separated in the environment).
  mutating func stringList(_ key: String) throws(ConfigurationError) -> [String] {
    consumed.insert(key)
    if let override = environment[Self.environmentName(for: key)] {
      return override.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
    }
    guard let node = root[key] else { return [] }
    if let sequence = node.sequence {
      var result: [String] = []
      for item in sequence {
        guard let text = item.string else { throw fail(key, "expected a list of strings") }
        result.append(text)
      }
      return result
    }
    if let text = node.string, text.isEmpty || text == "[]" { return [] }
    throw fail(key, "expected a list of strings")
  }

  /// Every `prefix.<name>` key (file and environment), consumed, with the
  /// remainder of the key as name: for free-form maps like `kafka.properties`.
  ///
  /// In the environment, `PRIVTRAK_KAFKA_PROPERTIES_SASL_PASSWORD` sets
  /// `sasl.password`: the rest of the variable name, lowercased, with `_`
  /// read as `.` (so secrets can come from a Kubernetes Secret). The
  /// environment wins over the file.
  mutating func map(withPrefix prefix: String) throws(ConfigurationError) -> [String: String] {
    var result: [String: String] = [:]
    for key in root.keys where key.hasPrefix(prefix + ".") {
      consumed.insert(key)
      guard let value = root[key]?.string else { throw fail(key, "expected a single value") }
      result[String(key.dropFirst(prefix.count + 1))] = value
    }
    let environmentPrefix = Self.environmentName(for: prefix) + "_"
    mapPrefixes.append(environmentPrefix)
    for (variable, value) in environment where variable.hasPrefix(environmentPrefix) {
      let name = String(
        variable.dropFirst(environmentPrefix.count).lowercased().map { $0 == "_" ? "." : $0 })
      guard !name.isEmpty else { continue }
      result[name] = value
    }
    return result
  }

  /// Keys present in the file that no reader asked for: almost always typos.
  func unknownKeys() -> [String] {
    root.keys.filter { !consumed.contains($0) }.sorted()
  }

  /// `PRIVTRAK_*` variables that override no key read so far and are not in
  /// `exempt`: almost always typos, which must not pass silently either.
  func unknownEnvironmentVariables(exempt: Set<String>) -> [String] {
    let known = Set(consumed.map(Self.environmentName(for:)))
    return environment.keys.filter { variable in
      variable.hasPrefix("PRIVTRAK_") && !known.contains(variable) && !exempt.contains(variable)
        && !mapPrefixes.contains { variable.hasPrefix($0) }
    }.sorted()
  }
}

extension String {
  var trimmingSpaces: String {
    var text = Substring(self)
    while text.first == " " { text.removeFirst() }
    while text.last == " " { text.removeLast() }
    return String(text)
  }
}
