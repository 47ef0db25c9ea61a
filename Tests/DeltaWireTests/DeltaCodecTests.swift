import BitTorrent
import DeltaModel
import DeltaWire
import Foundation
import SwiftProtobuf
import Testing

@Suite struct DeltaCodecTests {
  @Test func deltaRoundTripsWithAndWithoutOptionalFields() throws {
    var delta = SampleDeltas.typical()
    #expect(try DeltaCodec.decodeDelta(DeltaCodec.encode(delta)) == delta)
    delta.clientIP = IPAddress("2001:db8::1")
    delta.peerID = SampleDeltas.peerID
    for event in DeltaEvent.allCases {
      delta.event = event
      #expect(try DeltaCodec.decodeDelta(DeltaCodec.encode(delta)) == delta)
    }
  }

  @Test func batchRoundTripsInOrder() throws {
    let batch = DeltaBatch(deltas: (1...50).map { SampleDeltas.typical(sequence: UInt64($0)) })
    let decoded = try DeltaCodec.decodeBatchWithMetadata(
      DeltaCodec.encode(batch, sealedAtMilliseconds: 77))
    #expect(decoded.batch == batch)
    #expect(
      decoded.metadata
        == DeltaBatchMetadata(producerInstance: SampleDeltas.instance, sealedAtMilliseconds: 77))
  }

  @Test func emptyBatchEncodesToNothingAndDecodesEmpty() throws {
    let bytes = DeltaCodec.encode(DeltaBatch(deltas: []))
    #expect(bytes.isEmpty)
    #expect(try DeltaCodec.decodeBatch(bytes).deltas.isEmpty)
  }

  @Test func mixedInstancesLeaveProducerUnknown() {
    var other = SampleDeltas.typical()
    other.origin.instance = 7
    let metadata = DeltaBatchMetadata(
      deriving: DeltaBatch(deltas: [SampleDeltas.typical(), other]))
    #expect(metadata.producerInstance == nil)
  }

  /// The ids' lengths are checked; each error names the field and both sizes.
  @Test func invalidLengthsAreRejectedByName() throws {
    var message = Privtrak_V1_Delta(SampleDeltas.typical())
    func decodeError() -> DeltaWireError? {
      do {
        _ = try DeltaCodec.decodeDelta(try message.serializedBytes() as [UInt8])
        return nil
      } catch let error as DeltaWireError {
        return error
      } catch {
        return nil
      }
    }
    message.userID = Data(repeating: 1, count: 15)
    #expect(decodeError() == .invalidLength(field: "user_id", expected: "16", actual: 15))
    message.userID = Data(SampleDeltas.user.bytes)

    message.infoHash = Data()
    #expect(decodeError() == .invalidLength(field: "info_hash", expected: "20", actual: 0))
    #expect(decodeError()?.description == "info_hash must be 20 bytes, got 0")
    message.infoHash = Data(SampleDeltas.torrent.bytes)

    message.clientIp = Data([1, 2, 3, 4, 5])
    #expect(decodeError() == .invalidLength(field: "client_ip", expected: "4 or 16", actual: 5))
    message.clientIp = Data()  // present but empty is still wrong
    #expect(decodeError() == .invalidLength(field: "client_ip", expected: "4 or 16", actual: 0))
    message.clearClientIp()

    message.peerID = Data(repeating: 0x2d, count: 19)
    #expect(decodeError() == .invalidLength(field: "peer_id", expected: "20", actual: 19))
    message.clearPeerID()

    message.event = .UNRECOGNIZED(9)
    #expect(decodeError() == .unknownEvent(rawValue: 9))
    message.event = .stopped
    #expect(decodeError() == nil)
  }

  @Test func batchErrorNamesTheDelta() throws {
    var message = Privtrak_V1_DeltaBatch(
      DeltaBatch(deltas: [SampleDeltas.typical(sequence: 1), SampleDeltas.typical(sequence: 2)]),
      metadata: DeltaBatchMetadata())
    message.deltas[1].userID = Data([1, 2])
    #expect(
      throws: DeltaWireError.invalidDeltaInBatch(
        index: 1, error: .invalidLength(field: "user_id", expected: "16", actual: 2))
    ) {
      try DeltaCodec.decodeBatch(try message.serializedBytes() as [UInt8])
    }
  }

  @Test func malformedBytesAreReported() throws {
    let bytes = DeltaCodec.encode(SampleDeltas.typical())
    let error = try #require(throws: DeltaWireError.self) {
      try DeltaCodec.decodeDelta(Array(bytes.dropLast(3)))
    }
    guard case .malformed(let message, _) = error else {
      Issue.record("expected .malformed, got \(error)")
      return
    }
    #expect(message == "privtrak.v1.Delta")
  }

  /// A newer producer's extra field (number 99, varint) does not break an old reader.
  @Test func unknownFieldsAreIgnoredByTheModelAndKeptByTheMessage() throws {
    let delta = SampleDeltas.typical()
    // Field 99, varint: tag (99 << 3 | 0) = 792 = 0x98 0x06, value 42.
    let extended = DeltaCodec.encode(delta) + [0x98, 0x06, 0x2a]
    #expect(try DeltaCodec.decodeDelta(extended) == delta)
    let message = try Privtrak_V1_Delta(serializedBytes: extended)
    #expect(Array(message.unknownFields.data) == [0x98, 0x06, 0x2a])
    #expect(try message.serializedBytes() as [UInt8] == extended)
  }

  /// IPv4-mapped IPv6 addresses travel as their 4-byte IPv4 form (the model normalises them).
  @Test func ipv4MappedAddressEncodesAsFourBytes() throws {
    var delta = SampleDeltas.typical()
    delta.clientIP = IPAddress("::ffff:192.0.2.1")
    let message = try Privtrak_V1_Delta(serializedBytes: DeltaCodec.encode(delta))
    #expect(Array(message.clientIp) == [192, 0, 2, 1])
  }

  /// A change detector, not a proof: the figures quoted in schemas/README.md,
  /// read off the encoder itself. When it fires, the encoding changed; check
  /// that was meant and update the README. `typicalDeltaSizeFollowsTheWireFormat`
  /// derives the first figure independently.
  @Test func encodedSizesChangeDetector() {
    var delta = SampleDeltas.typical()
    #expect(DeltaCodec.encode(delta).count == 70)
    // A leecher: downloaded set (+5), seeding false (absent, -2).
    delta.downloaded = 50 << 20
    delta.seeding = false
    #expect(DeltaCodec.encode(delta).count == 73)
    delta.clientIP = IPAddress("203.0.113.7")
    #expect(DeltaCodec.encode(delta).count == 79)
    delta.clientIP = IPAddress("2001:db8::8a2e:370:7334")
    #expect(DeltaCodec.encode(delta).count == 91)
    delta.peerID = SampleDeltas.peerID
    #expect(DeltaCodec.encode(delta).count == 113)
    // In a batch each delta costs 2 more bytes (tag + length).
    let batch = DeltaBatch(
      deltas: (1...100).map { SampleDeltas.typical(sequence: 1_234_500 + UInt64($0)) })
    #expect(DeltaCodec.encode(batch).count == 100 * (70 + 2) + 9)
  }

  /// The typical delta's 70 bytes from the protobuf wire-format rules
  /// (https://protobuf.dev/programming-guides/encoding/) and the field
  /// numbers in schemas/privtrak/v1/delta.proto, without the encoder: each
  /// present field is a 1-byte tag (numbers below 16) plus its payload;
  /// proto3 leaves zero and false fields out.
  @Test func typicalDeltaSizeFollowsTheWireFormat() {
    func varintSize(_ value: UInt64) -> Int { max(1, (64 - value.leadingZeroBitCount + 6) / 7) }
    func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }
    let delta = SampleDeltas.typical()
    let fields = [
      1 + 1 + 16,  // 1 user_id: tag, length, 16 bytes
      1 + 1 + 20,  // 2 info_hash: tag, length, 20 bytes
      1 + varintSize(zigzag(50 << 20)),  // 3 uploaded (sint64): 4-byte varint
      0,  // 4 downloaded = 0, 5 event = none: absent
      1 + varintSize(1_764_061_200_123),  // 6 reported_at_ms: 6-byte varint
      1 + 1,  // 7 seeding = true
      1 + varintSize(1800),  // 8 interval_s: 2-byte varint
      0,  // 9 reset = false: absent
      1 + 8,  // 10 instance (fixed64)
      1 + varintSize(1_234_567),  // 11 sequence: 3-byte varint
    ]
    #expect(fields.reduce(0, +) == 70)
    #expect(DeltaCodec.encode(delta).count == fields.reduce(0, +))
  }

  /// `Delta.estimatedSize` (Accounting's batcher bound) covers real encodings
  /// with realistic values, including maximal byte counts and interval.
  @Test func estimatedSizeCoversRealisticWorstCase() {
    var delta = SampleDeltas.typical(sequence: 1 << 34)
    delta.uploaded = .max
    delta.downloaded = .min
    delta.intervalSeconds = .max
    delta.reset = true
    delta.event = .completed
    #expect(DeltaCodec.encode(delta).count <= delta.estimatedSize)
    delta.clientIP = IPAddress("2001:db8::1")
    delta.peerID = SampleDeltas.peerID
    #expect(DeltaCodec.encode(delta).count <= delta.estimatedSize)
  }
}
