import BitTorrent
import NIOCore
import Tracker

/// BEP 15 packet layouts, with BEP 41 URL data on announces. Pure and total:
/// decoding takes the datagram's bytes and returns a request or a
/// ``TrackerFailure`` (or nil for what must be silently dropped), never
/// crashing on hostile input, so it can be unit-tested and fuzzed apart from
/// the NIO handler. Encoders append to a `ByteBuffer`.
public enum UDPPacketCodec {
  /// The magic constant in the connection id field of a connect request.
  public static let protocolID: UInt64 = 0x417_2710_1980
  /// Bytes every request starts with: connection id, action, transaction id.
  public static let headerLength = 16
  /// Bytes of an announce request before any BEP 41 option.
  public static let announceLength = 98
  /// Most info hashes in one scrape packet (BEP 15: "up to about 74").
  public static let maxScrapeInfoHashes = 74
  /// Payload budget of an IPv4 answer (1500-byte MTU less IP and UDP headers).
  public static let maxIPv4Payload = 1472
  /// Payload budget of an IPv6 answer (IPv6 minimum MTU 1280 less headers), so it never fragments.
  public static let maxIPv6Payload = 1232

  /// The `action` field.
  public enum Action: UInt32, Sendable {
    /// Obtain a connection id.
    case connect = 0
    /// Announce.
    case announce = 1
    /// Scrape.
    case scrape = 2
    /// Error (tracker to client only).
    case error = 3
  }

  /// The first 16 bytes of every request.
  public struct Header: Sendable, Equatable {
    /// The connection id (the protocol magic for connect).
    public var connectionID: UInt64
    /// The raw action value (may be unknown).
    public var action: UInt32
    /// Echoed in the response.
    public var transactionID: UInt32

    /// Creates a header.
    public init(connectionID: UInt64, action: UInt32, transactionID: UInt32) {
      self.connectionID = connectionID
      self.action = action
      self.transactionID = transactionID
    }
  }

  /// Reads the header; nil for packets shorter than 16 bytes, which are
  /// dropped without an answer.
  public static func parseHeader(_ packet: ByteBuffer) -> Header? {
    guard packet.readableBytes >= headerLength,
      let connectionID = packet.getInteger(at: packet.readerIndex, as: UInt64.self),
      let action = packet.getInteger(at: packet.readerIndex + 8, as: UInt32.self),
      let transactionID = packet.getInteger(at: packet.readerIndex + 12, as: UInt32.self)
    else { return nil }
    return Header(connectionID: connectionID, action: action, transactionID: transactionID)
  }

  /// Most peers that fit one answer for a client of this family.
  public static func maxPeers(ipv6: Bool) -> Int {
    ipv6 ? (maxIPv6Payload - 20) / 18 : (maxIPv4Payload - 20) / 6
  }

  /// Decodes an announce (header included) from a client at `client`.
  /// `numWant` is passed through (−1 means default) except that it is
  /// capped at what fits one datagram. The BEP 41 URL data, when present,
  /// must be an announce path; its passkey segment becomes `passkey`.
  public static func parseAnnounce(
    _ packet: ByteBuffer, client: IPAddress, acceptClientSuppliedIP: Bool = false
  ) throws(TrackerFailure) -> AnnounceRequest {
    guard packet.readableBytes >= announceLength else {
      throw TrackerFailure("truncated announce: \(packet.readableBytes) of \(announceLength) bytes")
    }
    let start = packet.readerIndex
    // Read in place: no intermediate arrays on the hot path.
    let (infoHash, peerID) = packet.withUnsafeReadableBytes { bytes in
      (InfoHash(bytes[16..<36]), PeerID(bytes[36..<56]))
    }
    guard let infoHash, let peerID,
      let downloaded = packet.getInteger(at: start + 56, as: Int64.self),
      let left = packet.getInteger(at: start + 64, as: Int64.self),
      let uploaded = packet.getInteger(at: start + 72, as: Int64.self),
      let rawEvent = packet.getInteger(at: start + 80, as: UInt32.self),
      let rawIP = packet.getInteger(at: start + 84, as: UInt32.self),
      let key = packet.getInteger(at: start + 88, as: UInt32.self),
      let numWant = packet.getInteger(at: start + 92, as: Int32.self),
      let port = packet.getInteger(at: start + 96, as: UInt16.self)
    else { throw TrackerFailure("truncated announce") }
    guard downloaded >= 0 else { throw TrackerFailure("invalid downloaded: negative") }
    guard left >= 0 else { throw TrackerFailure("invalid left: negative") }
    guard uploaded >= 0 else { throw TrackerFailure("invalid uploaded: negative") }
    guard rawEvent <= 3, let event = AnnounceEvent(rawValue: UInt8(rawEvent)) else {
      throw TrackerFailure("unknown event: \(rawEvent)")
    }
    guard port != 0 else { throw TrackerFailure("invalid port: 0") }
    var address = client
    if acceptClientSuppliedIP, rawIP != 0, !client.isIPv6 { address = .v4(rawIP) }
    var passkey: Substring?
    if let urlData = try urlData(
      packet.getSlice(at: start + announceLength, length: packet.readableBytes - announceLength))
    {
      let text = String(decoding: urlData, as: UTF8.self)
      // Byte-wise, not Character-wise: grapheme breaking cost more than the
      // rest of the parse.
      let pathEnd =
        text.utf8.firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
        ?? text.utf8.endIndex
      let path = text[..<pathEnd]
      guard let route = TrackerPath.route(path), route.action == .announce else {
        throw TrackerFailure("invalid URL data: not an announce path")
      }
      passkey = route.passkey
    }
    var wanted = Int(numWant)
    if wanted >= 0 { wanted = min(wanted, maxPeers(ipv6: client.isIPv6)) }
    return AnnounceRequest(
      infoHash: infoHash, peerID: peerID, endpoint: PeerEndpoint(address: address, port: port),
      uploaded: UInt64(uploaded), downloaded: UInt64(downloaded), left: UInt64(left), event: event,
      numWant: wanted, compact: true, noPeerID: true, key: key, passkey: passkey, transport: .udp)
  }

  /// Concatenates the BEP 41 URL-data options that follow an announce; nil
  /// when there are none. Parsing stops at EndOfOptions or at an unknown
  /// option type (unknown types carry no length, so nothing after them can be read).
  public static func urlData(_ options: ByteBuffer?) throws(TrackerFailure) -> [UInt8]? {
    guard var options else { return nil }
    var data: [UInt8]?
    while let type = options.readInteger(as: UInt8.self) {
      switch type {
      case 0x0:
        return data
      case 0x1:
        continue
      case 0x2:
        guard let length = options.readInteger(as: UInt8.self),
          let bytes = options.readBytes(length: Int(length))
        else { throw TrackerFailure("truncated URL data option") }
        data = (data ?? []) + bytes
      default:
        return data
      }
    }
    return data
  }

  /// Decodes a scrape (header included): whole 20-byte info hashes after
  /// the header, at most ``maxScrapeInfoHashes``.
  public static func parseScrape(_ packet: ByteBuffer, client: IPAddress) throws(TrackerFailure)
    -> ScrapeRequest
  {
    let hashBytes = packet.readableBytes - headerLength
    // The count first: an oversized scrape arrives cut at the receive
    // buffer, and "too many" is the true reason, not the ragged tail.
    guard hashBytes <= maxScrapeInfoHashes * 20 else {
      throw TrackerFailure("too many info hashes: at most \(maxScrapeInfoHashes) per packet")
    }
    guard hashBytes >= 0, hashBytes % 20 == 0 else {
      throw TrackerFailure("invalid scrape: info hashes must be 20 bytes each")
    }
    let count = hashBytes / 20
    var infoHashes: [InfoHash] = []
    infoHashes.reserveCapacity(count)
    var offset = packet.readerIndex + headerLength
    for _ in 0..<count {
      guard let hash = packet.getBytes(at: offset, length: 20).flatMap({ InfoHash($0) }) else {
        throw TrackerFailure("invalid scrape: info hashes must be 20 bytes each")
      }
      infoHashes.append(hash)
      offset += 20
    }
    return ScrapeRequest(infoHashes: infoHashes, clientAddress: client, transport: .udp)
  }

  /// Appends a connect response (16 bytes).
  public static func writeConnect(
    transactionID: UInt32, connectionID: UInt64, into buffer: inout ByteBuffer
  ) {
    buffer.writeInteger(Action.connect.rawValue)
    buffer.writeInteger(transactionID)
    buffer.writeInteger(connectionID)
  }

  /// Appends an announce response with peers of the client's family only
  /// (6-byte IPv4 or 18-byte IPv6 entries), at most what fits one datagram.
  public static func writeAnnounce(
    _ response: AnnounceResponse, transactionID: UInt32, ipv6: Bool, into buffer: inout ByteBuffer
  ) {
    let peers = ipv6 ? response.peers6 : response.peers4
    let count = min(peers.count, maxPeers(ipv6: ipv6))
    buffer.reserveCapacity(minimumWritableBytes: announceLength(response, ipv6: ipv6))
    buffer.writeInteger(Action.announce.rawValue)
    buffer.writeInteger(transactionID)
    buffer.writeInteger(response.interval)
    buffer.writeInteger(response.incomplete)
    buffer.writeInteger(response.complete)
    for peer in peers.prefix(count) {
      switch peer.endpoint.address {
      case .v4(let value):
        buffer.writeInteger(value)
      case .v6(let high, let low):
        buffer.writeInteger(high)
        buffer.writeInteger(low)
      }
      buffer.writeInteger(peer.endpoint.port)
    }
  }

  /// Appends a scrape response: seeders, completed, leechers per torrent, in request order.
  public static func writeScrape(
    _ response: ScrapeResponse, transactionID: UInt32, into buffer: inout ByteBuffer
  ) {
    buffer.reserveCapacity(minimumWritableBytes: 8 + response.files.count * 12)
    buffer.writeInteger(Action.scrape.rawValue)
    buffer.writeInteger(transactionID)
    for file in response.files {
      buffer.writeInteger(file.stats.complete)
      buffer.writeInteger(file.stats.downloaded)
      buffer.writeInteger(file.stats.incomplete)
    }
  }

  /// Bytes of the announce answer ``writeAnnounce(_:transactionID:ipv6:into:)`` writes.
  public static func announceLength(_ response: AnnounceResponse, ipv6: Bool) -> Int {
    let peers = ipv6 ? response.peers6.count : response.peers4.count
    return 20 + min(peers, maxPeers(ipv6: ipv6)) * (ipv6 ? 18 : 6)
  }

  /// Bytes of the error packet ``writeError(transactionID:message:into:)`` writes.
  public static func errorLength(message: String) -> Int {
    8 + message.utf8.count
  }

  /// Appends an error packet. The frontend sends one only to a sender with
  /// a valid connection id (an unverified sender gets no answer but the
  /// connect reply), so its size needs no cap against amplification.
  public static func writeError(
    transactionID: UInt32, message: String, into buffer: inout ByteBuffer
  ) {
    buffer.writeInteger(Action.error.rawValue)
    buffer.writeInteger(transactionID)
    buffer.writeString(message)
  }
}
