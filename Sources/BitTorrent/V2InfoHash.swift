/// The SHA-256 info hash of a BitTorrent v2 torrent (BEP 52), 32 bytes.
///
/// Trackers never see all of it: an announce or scrape carries its first 20
/// bytes (``announceHash``) where a v1 torrent's SHA-1 goes. A hybrid
/// torrent (v1 + v2, what libtorrent 2 makes by default) has both hashes,
/// and libtorrent announces it once with each.
public struct V2InfoHash: Hashable, Sendable, Comparable, CustomStringConvertible {
  /// The first 20 bytes: what announces and scrapes carry.
  public let announceHash: InfoHash
  private let tailHigh: UInt64
  private let tailLow: UInt32

  /// The byte count of every value of this type.
  public static let count = 32

  /// Creates a hash from exactly 32 bytes; nil for any other length.
  public init?<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
    guard bytes.count == Self.count else { return nil }
    let head = bytes.prefix(20)
    guard let announceHash = InfoHash(head) else { return nil }
    var high: UInt64 = 0
    var low: UInt32 = 0
    var tail = bytes.dropFirst(20).makeIterator()
    for _ in 0..<8 { high = high << 8 | UInt64(tail.next()!) }
    for _ in 0..<4 { low = low << 8 | UInt32(tail.next()!) }
    self.announceHash = announceHash
    self.tailHigh = high
    self.tailLow = low
  }

  /// Parses 64 hexadecimal characters (either case).
  public init?(hex: some StringProtocol) {
    guard let bytes = Hex.decode(hex) else { return nil }
    self.init(bytes)
  }

  /// The 32 bytes in order.
  public var bytes: [UInt8] {
    var result = announceHash.bytes
    result.reserveCapacity(Self.count)
    for shift in stride(from: 56, through: 0, by: -8) {
      result.append(UInt8(truncatingIfNeeded: tailHigh >> UInt64(shift)))
    }
    for shift in stride(from: 24, through: 0, by: -8) {
      result.append(UInt8(truncatingIfNeeded: tailLow >> UInt32(shift)))
    }
    return result
  }

  /// Lower-case hexadecimal, 64 characters.
  public var description: String { Hex.encode(bytes) }

  public static func < (lhs: V2InfoHash, rhs: V2InfoHash) -> Bool {
    (lhs.announceHash, lhs.tailHigh, lhs.tailLow) < (rhs.announceHash, rhs.tailHigh, rhs.tailLow)
  }
}
