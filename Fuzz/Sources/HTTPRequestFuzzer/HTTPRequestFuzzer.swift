import BitTorrent
import Frontends
import Tracker

/// libFuzzer entry point for the HTTP frontend's pure parts.
///
/// Input layout: the first line is a request target, fed to
/// ``HTTPAnnounceParser`` (both client-IP policies, an IPv4 and an IPv6
/// client); the following lines are headers, whose `X-Forwarded-For` and
/// `X-Real-IP` values go to ``ClientAddressResolver``; the whole input is
/// also a raw byte stream for ``HTTPHeadLimitScanner``, scanned at once and
/// in two chunks, which must agree.
@_cdecl("LLVMFuzzerTestOneInput")
public func httpRequestFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  let input = UnsafeBufferPointer(start: data, count: count)
  let lines = input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
  let target = lines.first.map { String(decoding: $0, as: UTF8.self) } ?? ""

  for parser in [HTTPAnnounceParser(), HTTPAnnounceParser(acceptClientSuppliedIP: true)] {
    for client in HTTPFuzzFixtures.clients {
      check(parser.parse(target: target, clientAddress: client), parser: parser, client: client)
    }
  }
  resolveForwardingHeaders(lines.dropFirst())
  scanHead(input)
  return 0
}

private enum HTTPFuzzFixtures {
  static let clients: [IPAddress] = [IPAddress("192.0.2.1")!, IPAddress("2001:db8::1")!]
  static let resolver = ClientAddressResolver(trustedProxies: [
    IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!,
  ])
  static let proxy = IPAddress("127.0.0.1")!
}

/// What every outcome must satisfy beyond not crashing.
private func check(
  _ outcome: HTTPAnnounceParser.Outcome, parser: HTTPAnnounceParser, client: IPAddress
) {
  switch outcome {
  case .announce(let request):
    precondition(request.endpoint.port != 0, "port 0 accepted")
    precondition(request.transport == .http)
    precondition(Int64(clamping: request.uploaded) >= 0 && request.uploaded <= UInt64(Int64.max))
    precondition(request.downloaded <= UInt64(Int64.max) && request.left <= UInt64(Int64.max))
    if !parser.acceptClientSuppliedIP {
      precondition(request.endpoint.address == client, "client address replaced without consent")
    }
    checkPasskey(request.passkey)
  case .scrape(let request):
    precondition(request.transport == .http)
    checkPasskey(request.passkey)
  case .failure(let failure):
    // Reasons echo at most 32 bytes of client text, printable ASCII only.
    precondition(failure.reason.utf8.count <= 96, "failure reason too long")
    precondition(failure.reason.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }, "unprintable reason")
  case .notFound:
    break
  }
}

private func checkPasskey(_ passkey: Substring?) {
  guard let passkey else { return }
  precondition(!passkey.isEmpty && passkey.utf8.count <= TrackerPath.maxPasskeyLength)
  precondition(
    passkey.utf8.allSatisfy { byte in
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "_"), UInt8(ascii: "~"):
        true
      default: false
      }
    }, "implausible passkey routed")
}

private func resolveForwardingHeaders(_ lines: ArraySlice<UnsafeBufferPointer<UInt8>.SubSequence>) {
  var forwardedFor: [String] = []
  var realIP: String?
  for line in lines {
    let text = String(decoding: line, as: UTF8.self)
    guard let colon = text.firstIndex(of: ":") else { continue }
    let name = text[..<colon].lowercased()
    let value = String(text[text.index(after: colon)...])
    if name == "x-forwarded-for" { forwardedFor.append(value) }
    if name == "x-real-ip", realIP == nil { realIP = value }
    _ = IPNetwork(value)
  }
  let resolver = HTTPFuzzFixtures.resolver
  let proxy = HTTPFuzzFixtures.proxy
  if let address = try? resolver.resolve(peer: proxy, forwardedFor: forwardedFor, realIP: realIP) {
    // Only a trusted proxy's own address or a parsed header value comes back.
    _ = address.description
  }
  let stranger = HTTPFuzzFixtures.clients[0]
  precondition(
    (try? resolver.resolve(peer: stranger, forwardedFor: forwardedFor, realIP: realIP)) == stranger,
    "headers believed from an untrusted peer")
}

/// Scanning in one chunk or two must report the same violation at the same offset.
private func scanHead(_ input: UnsafeBufferPointer<UInt8>) {
  let raw = UnsafeRawBufferPointer(input)
  var whole = HTTPHeadLimitScanner(maxRequestLineLength: 64, maxHeadLength: 256)
  let once = whole.scan(raw)
  if let once { precondition(once.offset >= 0 && once.offset < raw.count) }

  let split = raw.isEmpty ? 0 : Int(raw[0]) % (raw.count + 1)
  var chunked = HTTPHeadLimitScanner(maxRequestLineLength: 64, maxHeadLength: 256)
  var twice = chunked.scan(UnsafeRawBufferPointer(rebasing: raw[..<split]))
  if twice == nil, let second = chunked.scan(UnsafeRawBufferPointer(rebasing: raw[split...])) {
    twice = (second.violation, second.offset + split)
  }
  precondition(
    once?.violation == twice?.violation && once?.offset == twice?.offset,
    "chunking changed the scanner's verdict")
  if once == nil {
    precondition(whole.isInsideHead == chunked.isInsideHead)
    precondition(whole.completedHeads == chunked.completedHeads)
  }
}
