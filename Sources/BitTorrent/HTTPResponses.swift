/// Bencoded HTTP tracker response bodies (BEP 3, BEP 7, BEP 23, BEP 48).
public enum HTTPTrackerBody {
  /// `d14:failure reason<len>:<reason>e`, optionally with a `retry in`
  /// (minutes, BEP 31) so well-behaved clients back off.
  public static func failure(_ reason: String, retryInMinutes: Int? = nil) -> [UInt8] {
    var writer = BencodeWriter(capacity: 32 + reason.utf8.count)
    writer.beginDictionary()
    writer.writeString("failure reason")
    writer.writeString(reason)
    if let retryInMinutes {
      writer.writeString("retry in")
      writer.writeInteger(Int64(retryInMinutes))
    }
    writer.end()
    return writer.bytes
  }

  /// Encodes an announce response; compact lists use `peers` (6 bytes each)
  /// and `peers6` (18 bytes each), otherwise a list of dictionaries.
  public static func announce(_ response: AnnounceResponse, compact: Bool, noPeerID: Bool)
    -> [UInt8]
  {
    let peerCount = response.peers4.count + response.peers6.count
    var writer = BencodeWriter(capacity: 96 + peerCount * (compact ? 18 : 80))
    writer.beginDictionary()
    writer.writeString("complete")
    writer.writeInteger(Int64(response.complete))
    writer.writeString("downloaded")
    writer.writeInteger(Int64(response.downloaded))
    writer.writeString("incomplete")
    writer.writeInteger(Int64(response.incomplete))
    writer.writeString("interval")
    writer.writeInteger(Int64(response.interval))
    writer.writeString("min interval")
    writer.writeInteger(Int64(response.minInterval))
    if compact {
      writer.writeString("peers")
      writer.writeBytesHeader(length: response.peers4.count * 6)
      for peer in response.peers4 { CompactPeers.append(peer.endpoint, to: &writer.bytes) }
      if !response.peers6.isEmpty {
        writer.writeString("peers6")
        writer.writeBytesHeader(length: response.peers6.count * 18)
        for peer in response.peers6 { CompactPeers.append(peer.endpoint, to: &writer.bytes) }
      }
    } else {
      writer.writeString("peers")
      writer.beginList()
      for peer in response.peers4 + response.peers6 {
        writer.beginDictionary()
        writer.writeString("ip")
        writer.writeString(peer.endpoint.address.description)
        if !noPeerID {
          writer.writeString("peer id")
          writer.writeBytesHeader(length: 20)
          peer.peerID.raw.append(to: &writer.bytes)
        }
        writer.writeString("port")
        writer.writeInteger(Int64(peer.endpoint.port))
        writer.end()
      }
      writer.end()
    }
    writer.end()
    return writer.bytes
  }

  /// Encodes a scrape response: `d5:filesd<20-byte hash>d8:completei..e10:downloadedi..e10:incompletei..eee`.
  public static func scrape(_ response: ScrapeResponse) -> [UInt8] {
    var writer = BencodeWriter(capacity: 16 + response.files.count * 70)
    writer.beginDictionary()
    writer.writeString("files")
    writer.beginDictionary()
    var seen = Set<InfoHash>()
    for file in response.files.sorted(by: { $0.infoHash < $1.infoHash })
    where seen.insert(file.infoHash).inserted {
      writer.writeBytesHeader(length: 20)
      file.infoHash.raw.append(to: &writer.bytes)
      writer.beginDictionary()
      writer.writeString("complete")
      writer.writeInteger(Int64(file.stats.complete))
      writer.writeString("downloaded")
      writer.writeInteger(Int64(file.stats.downloaded))
      writer.writeString("incomplete")
      writer.writeInteger(Int64(file.stats.incomplete))
      writer.end()
    }
    writer.end()
    writer.end()
    return writer.bytes
  }
}

/// Compact peer encoding: 4 or 16 address bytes then a big-endian port.
public enum CompactPeers {
  /// Appends 6 (IPv4) or 18 (IPv6) bytes for `endpoint`.
  @inlinable
  public static func append(_ endpoint: PeerEndpoint, to buffer: inout [UInt8]) {
    endpoint.address.append(to: &buffer)
    buffer.append(UInt8(truncatingIfNeeded: endpoint.port >> 8))
    buffer.append(UInt8(truncatingIfNeeded: endpoint.port))
  }

  /// Decodes a compact list of `addressLength`-byte addresses (4 or 16) plus
  /// ports; nil when the length is not a multiple of the entry size.
  public static func decode(_ bytes: [UInt8], addressLength: Int) -> [PeerEndpoint]? {
    let entry = addressLength + 2
    guard addressLength == 4 || addressLength == 16, bytes.count % entry == 0 else { return nil }
    return stride(from: 0, to: bytes.count, by: entry).compactMap { start in
      guard let address = IPAddress(bytes: bytes[start..<start + addressLength]) else { return nil }
      let port =
        UInt16(bytes[start + addressLength]) << 8 | UInt16(bytes[start + addressLength + 1])
      return PeerEndpoint(address: address, port: port)
    }
  }
}
