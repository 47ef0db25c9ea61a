import BitTorrent
import DeltaModel
import DeltaWire
import Foundation
import PrivtrakTestSupport
import SwiftProtobuf
import Testing

/// `DeltaCodec.encode` writes protobuf by hand (DeltaProtobufWriter); these
/// hold it to the bytes swift-protobuf's generated messages write for the
/// same values, over edge values and many generated deltas.
@Suite struct DeltaProtobufWriterTests {
  @Test func edgeValuesEncodeAsSwiftProtobufDoes() throws {
    var delta = SampleDeltas.typical()
    let edges: [(inout Delta) -> Void] = [
      { $0.uploaded = 0 },
      { $0.uploaded = -1 },
      { $0.uploaded = .min },
      { $0.uploaded = .max },
      { $0.downloaded = .min },
      { $0.reportedAtMilliseconds = 0 },
      { $0.reportedAtMilliseconds = -1 },
      { $0.reportedAtMilliseconds = .max },
      { $0.intervalSeconds = 0 },
      { $0.intervalSeconds = .max },
      { $0.origin = DeltaOrigin(instance: 0, sequence: 0) },
      { $0.origin = DeltaOrigin(instance: .max, sequence: .max) },
      { $0.origin = DeltaOrigin(instance: 1, sequence: 127) },
      { $0.origin.sequence = 128 },
      { $0.seeding.toggle() },
      { $0.reset.toggle() },
      { $0.clientIP = IPAddress("0.0.0.0") },
      { $0.clientIP = IPAddress("203.0.113.9") },
      { $0.clientIP = IPAddress("::") },
      { $0.clientIP = IPAddress("2001:db8::1") },
      { $0.peerID = SampleDeltas.peerID },
      { $0.factors = CreditFactors(uploadPercent: 0, downloadPercent: 100) },
      { $0.factors = CreditFactors(uploadPercent: 100, downloadPercent: 0) },
      { $0.factors = CreditFactors(uploadPercent: 200, downloadPercent: .max) },
      { $0.userID = UserID(high: 0, low: 0) },
      { $0.infoHash = InfoHash(Bytes20(Array(repeating: 0xff, count: 20))!) },
    ]
    for event in DeltaEvent.allCases {
      delta.event = event
      try expectSameBytes(delta)
    }
    for edit in edges {
      edit(&delta)
      try expectSameBytes(delta)
    }
  }

  @Test func generatedDeltasEncodeAsSwiftProtobufDoes() throws {
    var generator = SplitMix64(seed: 0x5eed)
    for _ in 0..<5_000 {
      try expectSameBytes(Self.delta(from: &generator))
    }
  }

  @Test func batchesEncodeAsSwiftProtobufDoes() throws {
    var generator = SplitMix64(seed: 0xba7c4)
    let metadataCases: [DeltaBatchMetadata] = [
      DeltaBatchMetadata(),
      DeltaBatchMetadata(producerInstance: SampleDeltas.instance, sealedAtMilliseconds: nil),
      DeltaBatchMetadata(producerInstance: nil, sealedAtMilliseconds: 1_764_061_200_999),
      DeltaBatchMetadata(producerInstance: .max, sealedAtMilliseconds: -5),
    ]
    for size in [0, 1, 2, 50, 300] {
      let batch = DeltaBatch(deltas: (0..<size).map { _ in Self.delta(from: &generator) })
      for metadata in metadataCases {
        let expected: [UInt8] = try Privtrak_V1_DeltaBatch(batch, metadata: metadata)
          .serializedBytes()
        #expect(DeltaCodec.encode(batch, metadata: metadata) == expected)
        #expect(try DeltaCodec.decodeBatchWithMetadata(expected).batch == batch)
      }
    }
  }

  @Test func appendAddsTheEncodingAfterWhatIsThere() {
    let delta = SampleDeltas.typical()
    var buffer: [UInt8] = [1, 2, 3]
    DeltaCodec.append(delta, to: &buffer)
    #expect(buffer == [1, 2, 3] + DeltaCodec.encode(delta))
  }

  private func expectSameBytes(
    _ delta: Delta, sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let expected: [UInt8] = try Privtrak_V1_Delta(delta).serializedBytes()
    #expect(DeltaCodec.encode(delta) == expected, "\(delta)", sourceLocation: sourceLocation)
    #expect(try DeltaCodec.decodeDelta(expected) == delta, sourceLocation: sourceLocation)
  }

  /// A delta with every field drawn at random, magnitudes spread over all varint lengths.
  private static func delta(from generator: inout SplitMix64) -> Delta {
    func wide(_ generator: inout SplitMix64) -> UInt64 {
      generator.next() >> (generator.next() % 64)
    }
    let events = DeltaEvent.allCases
    let clientIP: IPAddress? =
      switch generator.next() % 3 {
      case 0: nil
      case 1: .v4(UInt32(truncatingIfNeeded: generator.next()))
      default: IPAddress(bytes: (0..<16).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
      }
    return Delta(
      userID: UserID(high: generator.next(), low: generator.next()),
      infoHash: InfoHash((0..<20).map { _ in UInt8(truncatingIfNeeded: generator.next()) })!,
      uploaded: Int64(bitPattern: wide(&generator)) * (generator.next() % 2 == 0 ? 1 : -1),
      downloaded: Int64(bitPattern: wide(&generator)),
      event: events[Int(generator.next() % UInt64(events.count))],
      reportedAtMilliseconds: Int64(bitPattern: wide(&generator)),
      seeding: generator.next() % 2 == 0,
      intervalSeconds: UInt32(truncatingIfNeeded: wide(&generator)),
      reset: generator.next() % 5 == 0,
      origin: DeltaOrigin(instance: wide(&generator), sequence: wide(&generator)),
      clientIP: clientIP,
      peerID: generator.next() % 2 == 0
        ? PeerID((0..<20).map { _ in UInt8(truncatingIfNeeded: generator.next()) }) : nil,
      factors: generator.next() % 4 == 0
        ? CreditFactors(
          uploadPercent: UInt32(generator.next() % 1000),
          downloadPercent: UInt32(generator.next() % 1000))
        : .unit)
  }
}
