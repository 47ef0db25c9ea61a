/// The secret in a user's announce URL: 32 hexadecimal characters (either
/// case), kept as their 16 bytes. Without a registry the passkey is the user
/// id; with one, the registry maps it to the user (and a rotated passkey
/// stops working).
public struct Passkey: Hashable, Sendable {
  /// The first 8 bytes, big-endian.
  public var high: UInt64
  /// The last 8 bytes, big-endian.
  public var low: UInt64

  /// Creates a passkey from its two halves.
  @inlinable public init(high: UInt64, low: UInt64) {
    self.high = high
    self.low = low
  }

  /// Reads exactly 32 hex digits (either case) without allocating; nil otherwise.
  public init?(hex passkey: Substring) {
    // Native strings expose contiguous UTF-8: read it directly (the
    // generic UTF8View walk costs several times more per announce).
    if let parsed = passkey.utf8.withContiguousStorageIfAvailable({ Self.parse(utf8: $0) }) {
      guard let parsed else { return nil }
      self = parsed
      return
    }
    guard let parsed = Array(passkey.utf8).withUnsafeBufferPointer({ Self.parse(utf8: $0) })
    else { return nil }
    self = parsed
  }

  /// Reads exactly 32 hex digits; nil otherwise.
  public init?(hex passkey: String) {
    self.init(hex: passkey[...])
  }

  /// The 16 bytes read as a user id (the `passkey-is-user-id` mode).
  public var asUserID: UserID { UserID(high: high, low: low) }

  /// 32 lower-case hex characters.
  public var hex: String { asUserID.hex }

  /// Nibble value of every byte; 0xFF for a non-hex byte.
  private static let nibbles: [UInt8] = (0...255).map { Hex.nibble(UInt8($0)) ?? 0xFF }

  private static func parse(utf8: UnsafeBufferPointer<UInt8>) -> Passkey? {
    guard utf8.count == 32 else { return nil }
    return nibbles.withUnsafeBufferPointer { nibbles in
      // Branch-free: collect invalid bits and check once at the end.
      var high: UInt64 = 0
      var low: UInt64 = 0
      var invalid: UInt8 = 0
      for position in 0..<16 {
        let nibble = nibbles[Int(utf8[position])]
        invalid |= nibble
        high = high << 4 | UInt64(nibble & 0x0f)
      }
      for position in 16..<32 {
        let nibble = nibbles[Int(utf8[position])]
        invalid |= nibble
        low = low << 4 | UInt64(nibble & 0x0f)
      }
      return invalid & 0xf0 == 0 ? Passkey(high: high, low: low) : nil
    }
  }
}
