import BitTorrent
import Crypto
import Tracker

/// Stateless BEP 15 connection ids: a keyed MAC (HMAC-SHA256, first 64 bits)
/// over the client's address and a time bucket. Nothing is stored per
/// client, so a flood of connects costs no memory. The port is deliberately
/// not part of the MAC: clients share one id across sockets of a host
/// (libtorrent caches it per tracker, process-wide), and spoofing protection
/// is about the address.
///
/// A bucket lasts ``bucketSeconds``; an id is accepted in its own bucket and
/// the next, so it stays valid between one and two minutes — BEP 15 asks
/// clients to reuse an id for at most one minute and servers to accept it for
/// two.
public struct UDPConnectionIDs: Sendable {
  /// Length of one time bucket.
  public static let bucketSeconds: Int64 = 60

  private let key: SymmetricKey
  private let clock: any TrackerClock

  /// Creates a generator keyed with `secret` (use the same secret on every
  /// process behind one address), reading time from `clock`.
  public init(secret: [UInt8], clock: any TrackerClock) {
    self.key = SymmetricKey(data: secret)
    self.clock = clock
  }

  /// 32 fresh random bytes, for a per-process secret.
  public static func randomSecret() -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
  }

  /// A connection id for `address`, valid from now.
  public func make(for address: IPAddress) -> UInt64 {
    id(bucket: currentBucket(), address: address)
  }

  /// Whether `id` was issued to `address` in this bucket or the previous one.
  public func isValid(_ id: UInt64, for address: IPAddress) -> Bool {
    let bucket = currentBucket()
    return id == self.id(bucket: bucket, address: address)
      || id == self.id(bucket: bucket - 1, address: address)
  }

  private func currentBucket() -> Int64 {
    clock.nowMilliseconds() / 1000 / Self.bucketSeconds
  }

  private func id(bucket: Int64, address: IPAddress) -> UInt64 {
    // bucket (8) ‖ address as 16 bytes, IPv4 mapped (16)
    var message = [UInt8]()
    message.reserveCapacity(24)
    for shift in stride(from: 56, through: 0, by: -8) {
      message.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: bucket) >> UInt64(shift)))
    }
    if case .v4 = address {
      message.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])
    }
    address.append(to: &message)
    let mac = HMAC<SHA256>.authenticationCode(for: message, using: key)
    return mac.withUnsafeBytes { bytes in
      bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
  }
}
