/// Where the ledger reads deltas: `kafka://HOST:PORT[,HOST:PORT]/TOPIC`.
public struct LedgerSource: Sendable, Hashable, CustomStringConvertible {
  /// `host:port[,host:port]`.
  public var bootstrap: String
  /// The delta topic.
  public var topic: String

  /// Creates a source.
  public init(bootstrap: String, topic: String) {
    self.bootstrap = bootstrap
    self.topic = topic
  }

  /// Parses `kafka://HOST:PORT[,HOST:PORT]/TOPIC`; nil for anything else.
  public init?(parsing text: String) {
    guard text.hasPrefix("kafka://") else { return nil }
    let rest = text.dropFirst("kafka://".count)
    guard let slash = rest.firstIndex(of: "/") else { return nil }
    let bootstrap = String(rest[..<slash])
    let topic = String(rest[rest.index(after: slash)...])
    guard !bootstrap.isEmpty, !topic.isEmpty, !topic.contains("/"),
      bootstrap.split(separator: ",", omittingEmptySubsequences: false).allSatisfy({
        $0.contains(":") && !$0.hasPrefix(":") && !$0.hasSuffix(":")
      })
    else { return nil }
    self.init(bootstrap: bootstrap, topic: topic)
  }

  public var description: String { "kafka://\(bootstrap)/\(topic)" }
}

/// Where the ledger writes: `postgresql://USER[:PASSWORD]@HOST:PORT/DB`.
/// The password is never printed (``description`` leaves it out); it is
/// better given by the environment than in a URL.
public struct LedgerDestination: Sendable, Hashable, CustomStringConvertible {
  /// The role to log in as.
  public var user: String
  /// Its password, if any.
  public var password: String?
  /// Server host name or address.
  public var host: String
  /// Server port.
  public var port: Int
  /// The database.
  public var database: String

  /// Creates a destination.
  public init(user: String, password: String?, host: String, port: Int, database: String) {
    self.user = user
    self.password = password
    self.host = host
    self.port = port
    self.database = database
  }

  /// Parses `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB` (also `postgres://`);
  /// nil for anything else. The port defaults to 5432.
  public init?(parsing text: String) {
    let rest: Substring
    if text.hasPrefix("postgresql://") {
      rest = text.dropFirst("postgresql://".count)
    } else if text.hasPrefix("postgres://") {
      rest = text.dropFirst("postgres://".count)
    } else {
      return nil
    }
    guard let at = rest.lastIndex(of: "@"), let slash = rest[at...].firstIndex(of: "/") else {
      return nil
    }
    let credentials = rest[..<at]
    let server = rest[rest.index(after: at)..<slash]
    let database = String(rest[rest.index(after: slash)...])
    let user: Substring
    var password: String?
    if let colon = credentials.firstIndex(of: ":") {
      user = credentials[..<colon]
      password = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding
    } else {
      user = credentials
    }
    var host = server
    var port = 5432
    if let colon = server.lastIndex(of: ":") {
      guard let number = Int(server[server.index(after: colon)...]), (1...65535).contains(number)
      else { return nil }
      host = server[..<colon]
      port = number
    }
    guard !user.isEmpty, !host.isEmpty, !database.isEmpty, !database.contains("/") else {
      return nil
    }
    self.init(
      user: String(user), password: password, host: String(host), port: port, database: database)
  }

  /// The URL without its password.
  public var description: String { "postgresql://\(user)@\(host):\(port)/\(database)" }
}

extension String {
  /// `%XX` sequences decoded (passwords in URLs); nil when malformed.
  fileprivate var removingPercentEncoding: String? {
    var bytes: [UInt8] = []
    var iterator = utf8.makeIterator()
    while let byte = iterator.next() {
      guard byte == UInt8(ascii: "%") else {
        bytes.append(byte)
        continue
      }
      guard let high = iterator.next(), let low = iterator.next(),
        let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
      else { return nil }
      bytes.append(value)
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
