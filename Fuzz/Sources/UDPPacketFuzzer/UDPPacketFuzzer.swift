import BitTorrent
import Frontends
import NIOCore
import Tracker

/// libFuzzer entry point for ``UDPPacketCodec``: the datagram is read as a
/// header, an announce (IPv4 and IPv6 client, with and without the
/// client-supplied IP) and a scrape. Besides "never crash", checks the
/// codec's promises: numwant fits one datagram, a scrape holds whole hashes
/// within the limit, and every error reason is short printable text that
/// makes a small datagram (error packets go only to verified senders).
@_cdecl("LLVMFuzzerTestOneInput")
public func udpPacketFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  let packet = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: count))
  let header = UDPPacketCodec.parseHeader(packet)
  precondition((header != nil) == (count >= UDPPacketCodec.headerLength))

  for client in UDPFuzzFixtures.clients {
    for acceptIP in [false, true] {
      do {
        let request = try UDPPacketCodec.parseAnnounce(
          packet, client: client, acceptClientSuppliedIP: acceptIP)
        precondition(request.numWant <= UDPPacketCodec.maxPeers(ipv6: client.isIPv6))
        precondition(request.endpoint.port != 0)
        precondition(request.transport == .udp)
        if !acceptIP || client.isIPv6 { precondition(request.endpoint.address == client) }
        if let passkey = request.passkey {
          precondition(!passkey.isEmpty && passkey.utf8.count <= TrackerPath.maxPasskeyLength)
        }
      } catch {
        reply(error, to: header)
      }
    }
    do {
      let request = try UDPPacketCodec.parseScrape(packet, client: client)
      precondition(request.infoHashes.count <= UDPPacketCodec.maxScrapeInfoHashes)
      precondition(request.infoHashes.count * 20 + UDPPacketCodec.headerLength == count)
    } catch {
      reply(error, to: header)
    }
  }
  var options = packet
  options.moveReaderIndex(forwardBy: min(count, UDPPacketCodec.announceLength))
  _ = try? UDPPacketCodec.urlData(options)
  return 0
}

private enum UDPFuzzFixtures {
  static let clients: [IPAddress] = [IPAddress("192.0.2.1")!, IPAddress("2001:db8::1")!]
}

/// Writes the error a verified sender would get and checks it stays small and printable.
private func reply(_ failure: TrackerFailure, to header: UDPPacketCodec.Header?) {
  guard let header else { return }
  var buffer = ByteBuffer()
  UDPPacketCodec.writeError(
    transactionID: header.transactionID, message: failure.reason, into: &buffer)
  let reason = failure.reason.utf8
  precondition(buffer.readableBytes == 8 + reason.count, "error packet framing")
  precondition(reason.count <= 96, "error reason too long")
  precondition(reason.allSatisfy { $0 >= 0x20 && $0 < 0x7f }, "unprintable error reason")
}
