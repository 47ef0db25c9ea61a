import BitTorrent
import Foundation
import Frontends
import NIOCore
import Testing
import Tracker

/// Replays the libFuzzer corpus (`Tests/FuzzCorpus`, grown and minimised by
/// `scripts/fuzz`) through the entry points the harnesses in `Fuzz/` use,
/// plus the real frontends over loopback, on every `make test`: an input
/// that once crashed or broke a promise stays fixed without a fuzzer.
@Suite("Fuzz corpus replay")
struct FuzzCorpusReplayTests {
  /// `Tests/FuzzCorpus`, found from this file's place in the tree.
  static let corpus = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("FuzzCorpus")

  /// Every input of one fuzzer's corpus, with its file name, in a stable order.
  static func inputs(_ fuzzer: String) throws -> [(name: String, bytes: [UInt8])] {
    let folder = corpus.appendingPathComponent(fuzzer)
    let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    return try names.map { name in
      (name, Array(try Data(contentsOf: folder.appendingPathComponent(name))))
    }
  }

  static let clients: [IPAddress] = [IPAddress("192.0.2.1")!, IPAddress("2001:db8::1")!]

  // MARK: bencode

  @Test func bencodeInputsThatDecodeAreCanonicalAndRoundTrip() throws {
    let inputs = try Self.inputs("bencode")
    #expect(inputs.count >= 6, "the seed corpus is there")
    var decoded = 0
    for (name, input) in inputs {
      let decoder = BencodeDecoder(maxDepth: 64, maxStringLength: 1 << 16)
      let value: BencodeValue
      do {
        value = try decoder.decode(input)
      } catch {
        #expect(error.offset >= 0 && error.offset <= input.count, "\(name): offset out of range")
        continue
      }
      decoded += 1
      #expect(value.encoded == input, "\(name): accepted non-canonical bencode")
      #expect(try decoder.decode(value.encoded) == value, "\(name): does not round-trip")
      do {
        _ = try BencodeDecoder(maxDepth: 2).decode(input)
      } catch {
        #expect(error.kind == .tooDeep, "\(name): a shallower limit failed with \(error.kind)")
      }
    }
    #expect(decoded > 0, "some inputs are valid bencode")
  }

  // MARK: HTTP

  /// The request target: the input's first line, as the HTTP harness reads it.
  static func target(_ input: [UInt8]) -> String {
    String(decoding: input.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
  }

  @Test func httpTargetsParseWithinTheParsersPromises() throws {
    let inputs = try Self.inputs("http-request")
    #expect(inputs.count >= 8)
    var outcomes: Set<String> = []
    for (name, input) in inputs {
      let target = Self.target(input)
      for parser in [HTTPAnnounceParser(), HTTPAnnounceParser(acceptClientSuppliedIP: true)] {
        for client in Self.clients {
          switch parser.parse(target: target, clientAddress: client) {
          case .announce(let request):
            outcomes.insert("announce")
            #expect(request.endpoint.port != 0, "\(name)")
            #expect(request.uploaded <= UInt64(Int64.max), "\(name)")
            if !parser.acceptClientSuppliedIP {
              #expect(request.endpoint.address == client, "\(name): address replaced")
            }
            #expect(Self.isPlausible(request.passkey), "\(name): passkey \(request.passkey ?? "")")
          case .scrape(let request):
            outcomes.insert("scrape")
            #expect(Self.isPlausible(request.passkey), "\(name)")
          case .failure(let failure):
            outcomes.insert("failure")
            #expect(failure.reason.utf8.count <= 96, "\(name): reason too long")
            #expect(
              failure.reason.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }, "\(name): unprintable")
          case .notFound:
            outcomes.insert("notFound")
          }
        }
      }
    }
    #expect(outcomes.isSuperset(of: ["announce", "scrape", "failure"]), "\(outcomes)")
  }

  static func isPlausible(_ passkey: Substring?) -> Bool {
    guard let passkey else { return true }
    return !passkey.isEmpty && passkey.utf8.count <= TrackerPath.maxPasskeyLength
      && passkey.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
          UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
          UInt8(ascii: "_"), UInt8(ascii: "~"):
          true
        default: false
        }
      }
  }

  @Test func httpInputsScanTheSameInOneChunkOrTwo() throws {
    for (name, input) in try Self.inputs("http-request") {
      input.withUnsafeBytes { raw in
        var whole = HTTPHeadLimitScanner(maxRequestLineLength: 64, maxHeadLength: 256)
        let once = whole.scan(raw)
        let split = raw.isEmpty ? 0 : Int(raw[0]) % (raw.count + 1)
        var chunked = HTTPHeadLimitScanner(maxRequestLineLength: 64, maxHeadLength: 256)
        var twice = chunked.scan(UnsafeRawBufferPointer(rebasing: raw[..<split]))
        if twice == nil, let second = chunked.scan(UnsafeRawBufferPointer(rebasing: raw[split...]))
        {
          twice = (second.violation, second.offset + split)
        }
        #expect(once?.violation == twice?.violation, "\(name)")
        #expect(once?.offset == twice?.offset, "\(name)")
        if once == nil {
          #expect(whole.completedHeads == chunked.completedHeads, "\(name)")
        }
      }
    }
  }

  /// Each target as a real request: whatever it is, the answer is a
  /// well-formed HTTP response with a bencoded tracker body.
  @Test func httpTargetsOverARealSocketGetBencodedAnswers() async throws {
    let targets = try Self.inputs("http-request").map { ($0.name, Self.target($0.bytes)) }
      // Bytes that would end the request line early are the scanner's business, above.
      .filter { !$0.1.utf8.contains { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: " ") } }
    #expect(!targets.isEmpty)
    try await withHTTPFrontend { _, address in
      for (name, target) in targets {
        let connection = try await TestHTTPConnection.connect(to: address)
        try await connection.send(
          Array("GET ".utf8) + Array(target.utf8) + Array(" HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
        let response = try #require(try await connection.readResponse(), "\(name): no answer")
        #expect([200, 400, 404, 414, 431].contains(response.status), "\(name): \(response.status)")
        let body = try response.bencode()
        #expect(
          body["failure reason"] != nil || body["interval"] != nil || body["files"] != nil,
          "\(name): \(body)")
      }
    }
  }

  // MARK: UDP

  @Test func udpPacketsDecodeWithinTheCodecsPromises() throws {
    let inputs = try Self.inputs("udp-packet")
    #expect(inputs.count >= 6)
    for (name, input) in inputs {
      let packet = ByteBuffer(bytes: input)
      let header = UDPPacketCodec.parseHeader(packet)
      #expect((header != nil) == (input.count >= UDPPacketCodec.headerLength), "\(name)")
      for client in Self.clients {
        for acceptIP in [false, true] {
          if let request = try? UDPPacketCodec.parseAnnounce(
            packet, client: client, acceptClientSuppliedIP: acceptIP)
          {
            #expect(request.numWant <= UDPPacketCodec.maxPeers(ipv6: client.isIPv6), "\(name)")
            #expect(request.endpoint.port != 0, "\(name)")
            if !acceptIP || client.isIPv6 { #expect(request.endpoint.address == client) }
          }
        }
        do {
          let request = try UDPPacketCodec.parseScrape(packet, client: client)
          #expect(request.infoHashes.count <= UDPPacketCodec.maxScrapeInfoHashes, "\(name)")
          #expect(request.infoHashes.count * 20 + UDPPacketCodec.headerLength == input.count)
        } catch {
          #expect(error.reason.utf8.count <= 96, "\(name)")
        }
      }
    }
  }

  /// Every packet sent twice to a real frontend: as it is, then with a valid
  /// connection id. The unverified copy is answered only when it is a
  /// well-formed connect; the verified one always is (an answer or an
  /// error); no answer exceeds one IPv4 datagram.
  @Test func udpPacketsOverARealSocketAnswerOnlyVerifiedSenders() async throws {
    let inputs = try Self.inputs("udp-packet").filter { $0.bytes.count >= 16 }
    #expect(!inputs.isEmpty)
    try await withUDPFrontend { frontend, address in
      let client = try await TestUDPClient.connect(to: address, bindHost: "127.0.0.1")
      let validID = frontend.connectionIDs.make(for: IPAddress("127.0.0.1")!)
      for start in stride(from: 0, to: inputs.count, by: 16) {
        var expected: Set<UInt32> = []
        for (index, input) in inputs[start..<min(inputs.count, start + 16)].enumerated() {
          let number = UInt32(start + index)
          var plain = input.bytes
          plain.replaceSubrange(12..<16, with: Self.bigEndian(2 * number))
          let isConnect =
            plain.readUInt32(at: 8) == 0 && plain.readUInt64(at: 0) == UDPPacketCodec.protocolID
          if isConnect { expected.insert(2 * number) }
          try await client.send(plain)
          if !isConnect {
            var verified = plain
            verified.replaceSubrange(0..<8, with: Self.bigEndian(validID))
            verified.replaceSubrange(12..<16, with: Self.bigEndian(2 * number + 1))
            expected.insert(2 * number + 1)
            try await client.send(verified)
          }
        }
        // Unverified packets are dropped at once, so any answer to them would
        // come before this connect's; verified answers may come after it.
        try await client.send(UDPPackets.connect(transactionID: 0xFFFF_FFFF))
        var sentinelSeen = false
        while !sentinelSeen || !expected.isEmpty {
          let answer = try await client.receive()
          #expect(answer.count >= 8 && answer.count <= UDPPacketCodec.maxIPv4Payload)
          let transactionID = answer.readUInt32(at: 4)
          if transactionID == 0xFFFF_FFFF {
            sentinelSeen = true
            continue
          }
          guard Int(transactionID / 2) < inputs.count else {
            Issue.record("an answer nobody asked for: \(answer)")
            continue
          }
          let name = inputs[Int(transactionID / 2)].name
          #expect(
            expected.remove(transactionID) != nil,
            "\(name) (\(transactionID % 2 == 0 ? "unverified" : "verified")) answered unexpectedly")
          if answer.readUInt32(at: 0) == 0 { #expect(answer.count == 16, "\(name)") }
        }
      }
    }
  }

  static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    var bytes = [UInt8]()
    bytes.appendInteger(value)
    return bytes
  }
}
