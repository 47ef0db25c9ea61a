import NIOCore

/// Writes announces as UDP (BEP 15 + BEP 41) packets or HTTP/1.1 requests.
/// Identities are encoded once up front so the per-announce work is copying.
struct AnnounceEncoder {
  /// BEP 15 protocol id of the connect request.
  static let protocolID: UInt64 = 0x417_2710_1980

  private let infoHashes: [[UInt8]]
  private let percentEncodedInfoHashes: [[UInt8]]
  /// `/<passkey>/announce` per passkey, or one `/announce`.
  private let paths: [[UInt8]]
  private let hostHeader: [UInt8]
  private let numWant: Int32

  init(configuration: LoadConfiguration) {
    infoHashes = (0..<configuration.torrents).map { LoadPopulation.infoHash(torrent: $0) }
    percentEncodedInfoHashes = infoHashes.map(Self.percentEncode)
    paths =
      configuration.passkeys == 0
      ? [Array("/announce".utf8)]
      : (0..<configuration.passkeys).map { Array("/\(LoadPopulation.passkey($0))/announce".utf8) }
    let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
    let connection = configuration.connectionPerAnnounce ? "\r\nConnection: close" : ""
    hostHeader = Array("\r\nHost: \(host):\(configuration.port)\(connection)\r\n\r\n".utf8)
    numWant = Int32(configuration.numWant)
  }

  /// A BEP 15 connect request.
  func writeConnect(transactionID: UInt32, into buffer: inout ByteBuffer) {
    buffer.writeInteger(Self.protocolID)
    buffer.writeInteger(UInt32(0))
    buffer.writeInteger(transactionID)
  }

  /// A BEP 15 announce; the passkey path goes in a BEP 41 URL-data option.
  func writeUDPAnnounce(
    _ parameters: AnnounceParameters, connectionID: UInt64, transactionID: UInt32,
    into buffer: inout ByteBuffer
  ) {
    buffer.writeInteger(connectionID)
    buffer.writeInteger(UInt32(1))
    buffer.writeInteger(transactionID)
    buffer.writeBytes(infoHashes[parameters.torrent])
    buffer.writeBytes(LoadPopulation.peerID(peer: parameters.peer))
    buffer.writeInteger(parameters.downloaded)
    buffer.writeInteger(parameters.left)
    buffer.writeInteger(parameters.uploaded)
    buffer.writeInteger(parameters.event.rawValue)
    buffer.writeInteger(UInt32(0))  // IP: the sender's
    buffer.writeInteger(UInt32(truncatingIfNeeded: parameters.peer &* 2_654_435_761))  // key
    buffer.writeInteger(numWant)
    buffer.writeInteger(parameters.port)
    if let passkey = parameters.passkey {
      let path = paths[passkey]
      buffer.writeInteger(UInt8(2))
      buffer.writeInteger(UInt8(path.count))
      buffer.writeBytes(path)
    }
  }

  /// `GET <path>?<query> HTTP/1.1` with a Host header; keep-alive is HTTP/1.1's
  /// default, `Connection: close` is added for one connection per announce.
  func writeHTTPAnnounce(_ parameters: AnnounceParameters, into buffer: inout ByteBuffer) {
    buffer.writeStaticString("GET ")
    buffer.writeBytes(paths[parameters.passkey ?? 0])
    buffer.writeStaticString("?info_hash=")
    buffer.writeBytes(percentEncodedInfoHashes[parameters.torrent])
    buffer.writeStaticString("&peer_id=")
    buffer.writeBytes(LoadPopulation.peerID(peer: parameters.peer))
    buffer.writeStaticString("&port=")
    buffer.writeString(String(parameters.port))
    buffer.writeStaticString("&uploaded=")
    buffer.writeString(String(parameters.uploaded))
    buffer.writeStaticString("&downloaded=")
    buffer.writeString(String(parameters.downloaded))
    buffer.writeStaticString("&left=")
    buffer.writeString(String(parameters.left))
    switch parameters.event {
    case .none: break
    case .started: buffer.writeStaticString("&event=started")
    case .completed: buffer.writeStaticString("&event=completed")
    case .stopped: buffer.writeStaticString("&event=stopped")
    }
    buffer.writeStaticString("&compact=1&numwant=")
    buffer.writeString(String(numWant))
    buffer.writeStaticString(" HTTP/1.1")
    buffer.writeBytes(hostHeader)
  }

  /// Every byte as `%XX`: always valid, whatever the byte.
  static func percentEncode(_ bytes: [UInt8]) -> [UInt8] {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 3)
    for byte in bytes {
      out.append(UInt8(ascii: "%"))
      out.append(hex[Int(byte >> 4)])
      out.append(hex[Int(byte & 0xf)])
    }
    return out
  }
}
