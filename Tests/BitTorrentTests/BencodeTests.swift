import Testing

@testable import BitTorrent

@Suite struct BencodeTests {
  let decoder = BencodeDecoder()

  @Test func decodesEveryKindAndReencodesCanonically() throws {
    let input = Array("d4:listli1ei-2e3:abce3:numi42e3:str5:helloe".utf8)
    let value = try decoder.decode(input)
    #expect(value["num"]?.integer == 42)
    #expect(value["str"]?.text == "hello")
    #expect(value["list"] == .list([.integer(1), .integer(-2), .bytes(Array("abc".utf8))]))
    #expect(value.encoded == input)
  }

  @Test(arguments: [
    ("i-0e", BencodeError.Kind.invalidInteger),
    ("i03e", .invalidInteger),
    ("ie", .invalidInteger),
    ("i12", .unexpectedEnd),
    ("i9223372036854775808e", .invalidInteger),
    ("5:abc", .unexpectedEnd),
    ("-1:a", .unexpectedByte(UInt8(ascii: "-"))),
    ("01:a", .invalidInteger),
    ("d3:zzzi1e3:aaai2ee", .unsortedOrDuplicateKey),
    ("d1:ai1e1:ai2ee", .unsortedOrDuplicateKey),
    ("l", .unexpectedEnd),
    ("i1ei2e", .trailingBytes),
    ("x", .unexpectedByte(UInt8(ascii: "x"))),
    ("", .unexpectedEnd),
  ])
  func rejectsMalformedInput(text: String, expected: BencodeError.Kind) {
    #expect(throws: BencodeError.self) { try decoder.decode(Array(text.utf8)) }
    do {
      _ = try decoder.decode(Array(text.utf8))
    } catch {
      #expect(error.kind == expected, "input \(text)")
    }
  }

  @Test func limitsNestingDepth() {
    let deep =
      Array(repeating: UInt8(ascii: "l"), count: 100)
      + Array(repeating: UInt8(ascii: "e"), count: 100)
    #expect(throws: BencodeError.self) { try BencodeDecoder(maxDepth: 64).decode(deep) }
    #expect((try? BencodeDecoder(maxDepth: 128).decode(deep)) != nil)
  }

  @Test func integerExtremesRoundTrip() throws {
    for number in [Int64.min, -1, 0, 1, Int64.max] {
      var writer = BencodeWriter()
      writer.writeInteger(number)
      #expect(try decoder.decode(writer.bytes) == .integer(number))
    }
  }

  @Test func failureBodyCarriesReasonAndRetry() throws {
    let body = try decoder.decode(HTTPTrackerBody.failure("tracker busy", retryInMinutes: 2))
    #expect(body["failure reason"]?.text == "tracker busy")
    #expect(body["retry in"]?.integer == 2)
  }
}
