import BitTorrent
import NIOCore

extension SocketAddress {
  /// The address as the tracker's ``IPAddress`` (IPv4-mapped IPv6 becomes
  /// IPv4, so a dual-stack socket still yields 6-byte compact peers); nil
  /// for Unix domain sockets.
  var trackerIPAddress: IPAddress? {
    switch self {
    case .v4(let address):
      return .v4(UInt32(bigEndian: address.address.sin_addr.s_addr))
    case .v6(let address):
      return withUnsafeBytes(of: address.address.sin6_addr) { IPAddress(bytes: $0) }
    case .unixDomainSocket:
      return nil
    }
  }
}
