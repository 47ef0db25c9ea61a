/// A `HOST:PORT` the tracker listens on; `[v6]:PORT` for IPv6 literals.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
  /// Host name or literal address.
  public var host: String
  /// Port; 0 asks the system for a free one.
  public var port: Int

  /// Creates an address.
  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// Parses `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces); nil when malformed.
  public init?(parsing text: String) {
    let hostPart: Substring
    let portPart: Substring
    if text.hasPrefix("[") {
      guard let close = text.firstIndex(of: "]") else { return nil }
      hostPart = text[text.index(after: text.startIndex)..<close]
      let rest = text[text.index(after: close)...]
      guard rest.hasPrefix(":") else { return nil }
      portPart = rest.dropFirst()
    } else {
      guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
      hostPart = text[..<colon]
      portPart = text[text.index(after: colon)...]
    }
    guard let port = Int(portPart), (0...65535).contains(port) else { return nil }
    self.host = hostPart.isEmpty ? "0.0.0.0" : String(hostPart)
    self.port = port
  }

  public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
