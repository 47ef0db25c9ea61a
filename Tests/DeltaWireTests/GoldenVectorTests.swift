import BitTorrent
import DeltaModel
import DeltaWire
import Foundation
import Testing

/// The Swift codec against `schemas/testdata/`, which Python's reference
/// protobuf encoder wrote (tests/python/make_golden.py) and
/// tests/python/test_golden.py checks too.
@Suite struct GoldenVectorTests {
  static let deltaVectors = [
    "delta_expired", "delta_extremes", "delta_factors", "delta_full", "delta_minimal",
    "delta_reset",
  ]

  @Test func everyDeltaVectorIsCovered() throws {
    #expect(try GoldenVectors.names(ofType: "privtrak.v1.Delta") == Self.deltaVectors)
    #expect(try GoldenVectors.names(ofType: "privtrak.v1.DeltaBatch") == ["batch_three"])
  }

  @Test(arguments: deltaVectors)
  func deltaVectorDecodesToDescribedModelAndReencodesIdentically(name: String) throws {
    let description = try GoldenVectors.description(name)
    let expected = try #require(description.delta).model
    let bytes = try GoldenVectors.bytes(of: description)

    let decoded = try DeltaCodec.decodeDelta(bytes)
    #expect(decoded == expected)
    #expect(DeltaCodec.encode(expected) == bytes)
  }

  @Test func batchVectorDecodesToDescribedModelAndReencodesIdentically() throws {
    let description = try GoldenVectors.description("batch_three")
    let expected = DeltaBatch(deltas: try #require(description.deltas).map { try $0.model })
    let metadata = DeltaBatchMetadata(
      producerInstance: UInt64(try #require(description.producer_instance), radix: 16),
      sealedAtMilliseconds: description.sealed_at_ms)
    let bytes = try GoldenVectors.bytes(of: description)

    let decoded = try DeltaCodec.decodeBatchWithMetadata(bytes)
    #expect(decoded.batch == expected)
    #expect(decoded.metadata == metadata)
    #expect(decoded.batch.deltas.map { $0.clientIP?.isIPv6 } == [true, false, nil])
    #expect(DeltaCodec.encode(expected, metadata: metadata) == bytes)
    // Derived metadata finds the same producer; only the seal time is external.
    #expect(DeltaCodec.encode(expected, sealedAtMilliseconds: description.sealed_at_ms) == bytes)
  }

  /// `privtrak tail --json` prints exactly what the descriptions list: the
  /// same keys, and values of the same JSON types (client_ip compared as an
  /// address, since its textual form is not canonical).
  @Test(arguments: deltaVectors + ["batch_three"])
  func jsonRenderingMatchesDescription(name: String) throws {
    let description = try GoldenVectors.description(name)
    let bytes = try GoldenVectors.bytes(of: description)
    let deltas =
      name.hasPrefix("batch")
      ? try DeltaCodec.decodeBatch(bytes).deltas : [try DeltaCodec.decodeDelta(bytes)]
    let expected = try description.deltas ?? [try #require(description.delta)]
    let expectedKeys = try GoldenVectors.rawDeltaObjects(name).map { Set($0.keys) }
    #expect(deltas.count == expected.count)
    for (index, delta) in deltas.enumerated() {
      let rendered = Data(DeltaJSON.render(delta).utf8)
      let object = try #require(try JSONSerialization.jsonObject(with: rendered) as? [String: Any])
      #expect(Set(object.keys) == expectedKeys[index])
      var parsed = try JSONDecoder().decode(GoldenVectors.DeltaDescription.self, from: rendered)
      var wanted = expected[index]
      #expect(parsed.client_ip.flatMap(IPAddress.init) == wanted.client_ip.flatMap(IPAddress.init))
      parsed.client_ip = nil
      wanted.client_ip = nil
      #expect(parsed == wanted, "\(DeltaJSON.render(delta))")
    }
  }
}
