import BitTorrent
import Tracker

/// Decides which address an HTTP request comes from.
///
/// The socket's peer address is used unless that peer is a configured
/// trusted proxy. Behind a trusted proxy:
/// - `X-Forwarded-For` is read **right to left** and the first address that
///   is not itself a trusted proxy is the client ("rightmost untrusted"). The
///   leftmost entry is whatever the client chose to send and can be forged;
///   the rightmost untrusted one was appended by our own proxy chain. If
///   every entry is trusted, the leftmost is used.
/// - Without `X-Forwarded-For`, `X-Real-IP` is used.
/// - Without either header the proxy's own address is used.
/// - A header that is present but unparseable fails the request rather than
///   registering the proxy as a peer.
public struct ClientAddressResolver: Sendable {
  /// Peers whose forwarding headers are believed.
  public var trustedProxies: [IPNetwork]

  /// Creates a resolver.
  public init(trustedProxies: [IPNetwork]) {
    self.trustedProxies = trustedProxies
  }

  /// Whether headers are ever consulted.
  public var isEnabled: Bool { !trustedProxies.isEmpty }

  /// Whether `address` is one of the trusted proxies.
  public func isTrusted(_ address: IPAddress) -> Bool {
    trustedProxies.contains { $0.contains(address) }
  }

  /// The client address for a request from `peer` carrying these header
  /// values (every `X-Forwarded-For` line, in order, and `X-Real-IP`).
  public func resolve(peer: IPAddress, forwardedFor: [String], realIP: String?)
    throws(TrackerFailure) -> IPAddress
  {
    guard isTrusted(peer) else { return peer }
    var entries: [Substring] = []
    for line in forwardedFor {
      for entry in line.split(separator: ",") {
        let trimmed = Self.trim(entry)
        if !trimmed.isEmpty { entries.append(trimmed) }
      }
    }
    if !entries.isEmpty {
      var addresses: [IPAddress] = []
      addresses.reserveCapacity(entries.count)
      for entry in entries {
        guard let address = Self.parseForwarded(entry) else {
          throw TrackerFailure("invalid X-Forwarded-For from proxy")
        }
        addresses.append(address)
      }
      return addresses.last(where: { !isTrusted($0) }) ?? addresses[0]
    }
    if let realIP {
      guard let address = Self.parseForwarded(Self.trim(Substring(realIP))) else {
        throw TrackerFailure("invalid X-Real-IP from proxy")
      }
      return address
    }
    return peer
  }

  private static func trim(_ text: Substring) -> Substring {
    var text = text
    while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
    while let last = text.last, last == " " || last == "\t" { text.removeLast() }
    return text
  }

  /// Accepts `addr`, `v4:port`, `[v6]` and `[v6]:port` (some proxies add ports).
  static func parseForwarded(_ entry: Substring) -> IPAddress? {
    if entry.first == "[" {
      guard let close = entry.firstIndex(of: "]") else { return nil }
      let rest = entry[entry.index(after: close)...]
      guard rest.isEmpty || (rest.first == ":" && rest.dropFirst().allSatisfy(\.isNumber)) else {
        return nil
      }
      return IPAddress(entry[entry.index(after: entry.startIndex)..<close])
    }
    if let address = IPAddress(entry) { return address }
    let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
    if parts.count == 2, !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber) {
      guard case .v4(let value)? = IPAddress(parts[0]) else { return nil }
      return .v4(value)
    }
    return nil
  }
}
