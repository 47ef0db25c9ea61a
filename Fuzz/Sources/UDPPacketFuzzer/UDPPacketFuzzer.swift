import BitTorrent
import Frontends
import NIOCore
import Tracker

/// libFuzzer entry point for ``UDPPacketCodec``: the datagram is read as a
/// header, an announce (IPv4 and IPv6 client, with and without the
/// client-supplied IP) and a scrape. Besides "never crash", checks the
/// codec's promises: numwant fits one datagram, a scrape holds whole hashes
/// within the limit, and an error answer to an unverified sender is never
/// larger than its request.
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
        reply(error, to: header, requestLength: count)
      }
    }
    do {
      let request = try UDPPacketCodec.parseScrape(packet, client: client)
      precondition(request.infoHashes.count <= UDPPacketCodec.maxScrapeInfoHashes)
      precondition(request.infoHashes.count * 20 + UDPPacketCodec.headerLength == count)
    } catch {
      reply(error, to: header, requestLength: count)
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

/// Writes the error an unverified sender would get and checks it is no larger than the request.
private func reply(_ failure: TrackerFailure, to header: UDPPacketCodec.Header?, requestLength: Int) {
  guard let header else { return }
  var buffer = ByteBuffer()
  UDPPacketCodec.writeError(
    transactionID: header.transactionID, message: failure.reason, maxLength: requestLength,
    into: &buffer)
  precondition(buffer.readableBytes <= requestLength, "error answer amplifies")
}
