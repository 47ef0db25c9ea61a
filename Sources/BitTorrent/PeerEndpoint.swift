#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// An IPv4 or IPv6 address held inline.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
  /// IPv4, host byte order value of the four bytes read big-endian.
  case v4(UInt32)
  /// IPv6, the 16 bytes as two big-endian halves.
  case v6(high: UInt64, low: UInt64)

  /// Builds an address from 4 or 16 network-order bytes; nil for other lengths.
  /// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes the IPv4 address.
  public init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
    switch bytes.count {
    case 4:
      self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
    case 16:
      var high: UInt64 = 0
      var low: UInt64 = 0
      for (index, byte) in bytes.enumerated() {
        if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
      }
      if high == 0, low >> 32 == 0xffff {
        self = .v4(UInt32(truncatingIfNeeded: low))
      } else {
        self = .v6(high: high, low: low)
      }
    default:
      return nil
    }
  }

  /// Parses dotted IPv4 or textual IPv6 (including `::` compression and an
  /// embedded dotted IPv4 tail, as `inet_pton` reads it). Brackets and zone
  /// ids are rejected.
  public init?(_ text: some StringProtocol) {
    if let v4 = Self.parseIPv4(Substring(text)) {
      self = .v4(v4)
    } else if let bytes = Self.parseIPv6(Substring(text)), let address = IPAddress(bytes: bytes) {
      self = address
    } else {
      return nil
    }
  }

  /// True for IPv6 addresses.
  public var isIPv6: Bool {
    if case .v6 = self { return true }
    return false
  }

  /// Network-order bytes: 4 for IPv4, 16 for IPv6.
  public var bytes: [UInt8] {
    var result = [UInt8]()
    append(to: &result)
    return result
  }

  /// Appends the network-order bytes to `buffer`.
  @inlinable
  public func append(to buffer: inout [UInt8]) {
    switch self {
    case .v4(let value):
      buffer.append(UInt8(truncatingIfNeeded: value >> 24))
      buffer.append(UInt8(truncatingIfNeeded: value >> 16))
      buffer.append(UInt8(truncatingIfNeeded: value >> 8))
      buffer.append(UInt8(truncatingIfNeeded: value))
    case .v6(let high, let low):
      for shift in stride(from: 56, through: 0, by: -8) {
        buffer.append(UInt8(truncatingIfNeeded: high >> UInt64(shift)))
      }
      for shift in stride(from: 56, through: 0, by: -8) {
        buffer.append(UInt8(truncatingIfNeeded: low >> UInt64(shift)))
      }
    }
  }

  public var description: String {
    switch self {
    case .v4(let value):
      return "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    case .v6:
      // inet_ntop writes the RFC 5952 form: lower case, leading zeros and the
      // longest run of zero groups compressed.
      var address = in6_addr()
      withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
      var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
      guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else {
        preconditionFailure("inet_ntop failed on a 16-byte address")
      }
      return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
  }

  private static func parseIPv4(_ text: Substring) -> UInt32? {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var value: UInt32 = 0
    for part in parts {
      guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
        let octet = UInt32(part), octet <= 255
      else { return nil }
      value = value << 8 | octet
    }
    return value
  }

  /// inet_pton(AF_INET6): the RFC 4291 text forms and nothing else (a
  /// hand-written parser accepted `+1::`, since `UInt16("+1", radix: 16)` is 1).
  private static func parseIPv6(_ text: Substring) -> [UInt8]? {
    // A C string ends at the first NUL: "::1\0junk" must not read as ::1.
    guard !text.utf8.contains(0) else { return nil }
    var address = in6_addr()
    let parsed = String(text).withCString { inet_pton(AF_INET6, $0, &address) }
    guard parsed == 1 else { return nil }
    return withUnsafeBytes(of: &address) { Array($0) }
  }
}

/// Where a peer accepts connections.
public struct PeerEndpoint: Hashable, Sendable, CustomStringConvertible {
  /// The peer's address.
  public var address: IPAddress
  /// The peer's listening port (never 0 for a stored peer).
  public var port: UInt16

  /// Creates an endpoint.
  public init(address: IPAddress, port: UInt16) {
    self.address = address
    self.port = port
  }

  public var description: String {
    address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
  }
}
