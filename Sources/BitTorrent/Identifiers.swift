/// Twenty raw bytes held inline (no heap allocation), the shape of both
/// BitTorrent info hashes and peer ids.
public struct Bytes20: Hashable, Sendable, Comparable {
  @usableFromInline var high: UInt64
  @usableFromInline var middle: UInt64
  @usableFromInline var low: UInt32

  /// The byte count of every value of this type.
  public static let count = 20

  /// Creates a value from exactly 20 bytes; returns nil for any other length.
  @inlinable
  public init?<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
    guard bytes.count == 20 else { return nil }
    var iterator = bytes.makeIterator()
    var high: UInt64 = 0
    var middle: UInt64 = 0
    var low: UInt32 = 0
    for _ in 0..<8 { high = high << 8 | UInt64(iterator.next()!) }
    for _ in 0..<8 { middle = middle << 8 | UInt64(iterator.next()!) }
    for _ in 0..<4 { low = low << 8 | UInt32(iterator.next()!) }
    self.high = high
    self.middle = middle
    self.low = low
  }

  /// The 20 bytes in order.
  public var bytes: [UInt8] {
    var result = [UInt8]()
    result.reserveCapacity(20)
    append(to: &result)
    return result
  }

  /// Appends the 20 bytes to `buffer` without an intermediate array.
  @inlinable
  public func append(to buffer: inout [UInt8]) {
    for shift in stride(from: 56, through: 0, by: -8) {
      buffer.append(UInt8(truncatingIfNeeded: high >> UInt64(shift)))
    }
    for shift in stride(from: 56, through: 0, by: -8) {
      buffer.append(UInt8(truncatingIfNeeded: middle >> UInt64(shift)))
    }
    for shift in stride(from: 24, through: 0, by: -8) {
      buffer.append(UInt8(truncatingIfNeeded: low >> UInt32(shift)))
    }
  }

  /// Byte `index` (0..<20), without building the array.
  @inlinable
  public subscript(byte index: Int) -> UInt8 {
    switch index {
    case 0..<8: UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * index))
    case 8..<16: UInt8(truncatingIfNeeded: middle >> UInt64(56 - 8 * (index - 8)))
    default: UInt8(truncatingIfNeeded: low >> UInt32(24 - 8 * (index - 16)))
    }
  }

  /// Whether the value starts with `prefix` (at most 20 bytes), without allocating.
  @inlinable
  public func starts(with prefix: [UInt8]) -> Bool {
    guard prefix.count <= 20 else { return false }
    for index in prefix.indices where self[byte: index] != prefix[index] { return false }
    return true
  }

  /// Lower-case hexadecimal, 40 characters.
  public var hex: String { Hex.encode(bytes) }

  /// A well-mixed 64-bit value for sharding (info hashes are already uniform).
  @inlinable
  public var shardingKey: UInt64 { high ^ middle ^ UInt64(low) }

  public static func < (lhs: Bytes20, rhs: Bytes20) -> Bool {
    (lhs.high, lhs.middle, lhs.low) < (rhs.high, rhs.middle, rhs.low)
  }
}

/// The SHA-1 info hash naming a torrent.
public struct InfoHash: Hashable, Sendable, Comparable, CustomStringConvertible {
  /// The raw 20 bytes.
  public var raw: Bytes20

  /// Wraps raw bytes.
  @inlinable public init(_ raw: Bytes20) { self.raw = raw }

  /// Creates an info hash from exactly 20 bytes; nil otherwise.
  @inlinable public init?<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
    guard let raw = Bytes20(bytes) else { return nil }
    self.raw = raw
  }

  /// Parses 40 hexadecimal characters.
  public init?(hex: some StringProtocol) {
    guard let bytes = Hex.decode(hex), let raw = Bytes20(bytes) else { return nil }
    self.raw = raw
  }

  /// The 20 bytes in order.
  public var bytes: [UInt8] { raw.bytes }
  /// Lower-case hexadecimal.
  public var description: String { raw.hex }

  public static func < (lhs: InfoHash, rhs: InfoHash) -> Bool { lhs.raw < rhs.raw }
}

/// The 20-byte id a client picks for itself.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
  /// The raw 20 bytes.
  public var raw: Bytes20

  /// Wraps raw bytes.
  @inlinable public init(_ raw: Bytes20) { self.raw = raw }

  /// Creates a peer id from exactly 20 bytes; nil otherwise.
  @inlinable public init?<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
    guard let raw = Bytes20(bytes) else { return nil }
    self.raw = raw
  }

  /// The 20 bytes in order.
  public var bytes: [UInt8] { raw.bytes }
  /// Lower-case hexadecimal.
  public var description: String { raw.hex }
}

/// A tracker user: anything unique that fits 16 bytes (by default the
/// 32-hex-character passkey decoded).
public struct UserID: Hashable, Sendable, Comparable, CustomStringConvertible {
  /// First 8 bytes, big-endian.
  public var high: UInt64
  /// Last 8 bytes, big-endian.
  public var low: UInt64

  /// Creates a user id from its two big-endian halves.
  @inlinable public init(high: UInt64, low: UInt64) {
    self.high = high
    self.low = low
  }

  /// Creates a user id from exactly 16 bytes; nil otherwise.
  public init?<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
    guard bytes.count == 16 else { return nil }
    var high: UInt64 = 0
    var low: UInt64 = 0
    for (index, byte) in bytes.enumerated() {
      if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
    }
    self.init(high: high, low: low)
  }

  /// Parses 32 hexadecimal characters.
  public init?(hex: some StringProtocol) {
    guard hex.utf8.count == 32, let bytes = Hex.decode(hex) else { return nil }
    self.init(bytes)
  }

  /// The 16 bytes in order.
  public var bytes: [UInt8] {
    var result = [UInt8]()
    result.reserveCapacity(16)
    append(to: &result)
    return result
  }

  /// Appends the 16 bytes in order to `buffer` (no array of their own).
  @inlinable
  public func append(to buffer: inout [UInt8]) {
    for shift in stride(from: 56, through: 0, by: -8) {
      buffer.append(UInt8(truncatingIfNeeded: high >> UInt64(shift)))
    }
    for shift in stride(from: 56, through: 0, by: -8) {
      buffer.append(UInt8(truncatingIfNeeded: low >> UInt64(shift)))
    }
  }

  /// Lower-case hexadecimal, 32 characters.
  public var hex: String { Hex.encode(bytes) }

  /// A redacted form safe for logs and metrics: the first 4 hex characters only.
  public var redacted: String { String(hex.prefix(4)) + "…" }

  /// Redacted, so that printing a user id never leaks a passkey.
  public var description: String { redacted }

  public static func < (lhs: UserID, rhs: UserID) -> Bool {
    (lhs.high, lhs.low) < (rhs.high, rhs.low)
  }
}

/// Hexadecimal helpers shared by identifiers and tools.
public enum Hex {
  private static let digits = Array("0123456789abcdef".utf8)

  /// Lower-case hex of `bytes`.
  public static func encode<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    var utf8 = [UInt8]()
    utf8.reserveCapacity(bytes.underestimatedCount * 2)
    for byte in bytes {
      utf8.append(digits[Int(byte >> 4)])
      utf8.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: utf8, as: UTF8.self)
  }

  /// Decodes hex (either case); nil on odd length or a non-hex character.
  public static func decode(_ text: some StringProtocol) -> [UInt8]? {
    let utf8 = Array(text.utf8)
    guard utf8.count % 2 == 0 else { return nil }
    var result = [UInt8]()
    result.reserveCapacity(utf8.count / 2)
    var index = 0
    while index < utf8.count {
      guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
      result.append(high << 4 | low)
      index += 2
    }
    return result
  }

  /// The value of one hex digit, or nil.
  @inlinable
  public static func nibble(_ character: UInt8) -> UInt8? {
    switch character {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
    default: return nil
    }
  }
}
