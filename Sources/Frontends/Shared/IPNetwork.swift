import BitTorrent

/// An address block such as `10.0.0.0/8` or `fd00::/8`; a bare address is a
/// block of one. Used to name trusted reverse proxies.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
  /// The first address of the block (host bits cleared).
  public let base: IPAddress
  /// Leading bits that must match: 0…32 for IPv4, 0…128 for IPv6.
  public let prefixLength: Int

  /// Creates a block; host bits of `address` are cleared. Nil when the prefix
  /// length does not fit the address family.
  public init?(address: IPAddress, prefixLength: Int) {
    switch address {
    case .v4(let value):
      guard (0...32).contains(prefixLength) else { return nil }
      base = .v4(value & Self.mask32(prefixLength))
    case .v6(let high, let low):
      guard (0...128).contains(prefixLength) else { return nil }
      let (maskHigh, maskLow) = Self.mask128(prefixLength)
      base = .v6(high: high & maskHigh, low: low & maskLow)
    }
    self.prefixLength = prefixLength
  }

  /// Parses `address` or `address/prefix` (IPv4 or IPv6).
  public init?(_ text: some StringProtocol) {
    let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    guard let address = IPAddress(parts[0]) else { return nil }
    let fullLength = address.isIPv6 ? 128 : 32
    var prefixLength = fullLength
    if parts.count == 2 {
      guard parts[1].utf8.count <= 3, parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
        let parsed = Int(parts[1])
      else { return nil }
      prefixLength = parsed
    }
    self.init(address: address, prefixLength: prefixLength)
  }

  /// Whether `address` lies in this block (an IPv4 address never lies in an IPv6 block).
  public func contains(_ address: IPAddress) -> Bool {
    switch (base, address) {
    case (.v4(let network), .v4(let value)):
      return value & Self.mask32(prefixLength) == network
    case (.v6(let networkHigh, let networkLow), .v6(let high, let low)):
      let (maskHigh, maskLow) = Self.mask128(prefixLength)
      return high & maskHigh == networkHigh && low & maskLow == networkLow
    default:
      return false
    }
  }

  public var description: String { "\(base)/\(prefixLength)" }

  private static func mask32(_ length: Int) -> UInt32 {
    length == 0 ? 0 : UInt32.max << UInt32(32 - length)
  }

  private static func mask128(_ length: Int) -> (UInt64, UInt64) {
    if length <= 64 {
      return (length == 0 ? 0 : UInt64.max << UInt64(64 - length), 0)
    }
    return (UInt64.max, length == 128 ? UInt64.max : UInt64.max << UInt64(128 - length))
  }
}
