import BitTorrent
import Crypto
import Tracker

/// Stateless BEP 15 connection ids: a keyed MAC (SipHash-2-4, 64-bit tag)
/// over the client's address and a time bucket. SipHash rather than
/// HMAC-SHA256: it was 9% of the UDP announce path's CPU in profiles, and
/// a 64-bit PRF keyed with 128 bits is as strong as the 64-bit id it fills.
/// Nothing is stored per client, so a flood of connects costs no memory. The port is deliberately
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

  private let mac: SipHash24
  private let clock: any TrackerClock

  /// Creates a generator keyed with `secret` (use the same secret on every
  /// process behind one address), reading time from `clock`. Any length
  /// works: the MAC key is the first 16 bytes of the secret's SHA-256.
  public init(secret: [UInt8], clock: any TrackerClock) {
    self.mac = SipHash24(key: Array(SHA256.hash(data: secret)).prefix(16))
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

  /// The MAC of bucket ‖ address as 16 bytes (IPv4 mapped into IPv6), as
  /// three words: no buffer is built.
  private func id(bucket: Int64, address: IPAddress) -> UInt64 {
    let (high, low): (UInt64, UInt64)
    switch address {
    case .v4(let value): (high, low) = (0, 0xffff_0000_0000 | UInt64(value))
    case .v6(let addressHigh, let addressLow): (high, low) = (addressHigh, addressLow)
    }
    return mac.tag(UInt64(bitPattern: bucket), high, low)
  }
}
