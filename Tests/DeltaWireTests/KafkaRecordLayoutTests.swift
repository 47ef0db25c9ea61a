import BitTorrent
import DeltaModel
import DeltaWire
import Testing

@Suite struct KafkaRecordLayoutTests {
  let batch = DeltaBatch(deltas: [
    SampleDeltas.typical(sequence: 1, user: SampleDeltas.user),
    SampleDeltas.typical(sequence: 2, user: SampleDeltas.otherUser),
    SampleDeltas.typical(sequence: 3, user: SampleDeltas.user),
  ])

  func header(_ record: KafkaRecord, _ name: String) -> String? {
    record.headers.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) }
  }

  @Test(arguments: [false, true])
  func perDeltaRecordsAreKeyedByUserWithOneDeltaEach(withDeltaHeaders: Bool) throws {
    let records = KafkaRecordLayout.records(
      for: batch, framing: .perDelta, withDeltaHeaders: withDeltaHeaders)
    #expect(records.count == 3)
    #expect(records.map(\.key) == batch.deltas.map { $0.userID.bytes })
    #expect(records.allSatisfy { $0.key.count == 16 })
    for (record, delta) in zip(records, batch.deltas) {
      if withDeltaHeaders {
        #expect(header(record, "privtrak-type") == "privtrak.v1.Delta")
        #expect(header(record, "privtrak-schema") == "1")
      } else {
        #expect(record.headers.isEmpty)
      }
      #expect(record.value == DeltaCodec.encode(delta))
      #expect(try KafkaRecordLayout.decode(value: record.value, headers: record.headers) == [delta])
      #expect(
        try KafkaRecordLayout.decode(key: record.key, value: record.value, headers: record.headers)
          == [delta])
    }
  }

  @Test func aHeaderlessRecordIsADeltaKeyedByItsUser() throws {
    let delta = SampleDeltas.typical()
    let value = DeltaCodec.encode(delta)
    #expect(
      try KafkaRecordLayout.decode(key: delta.userID.bytes, value: value, headers: []) == [delta])
    #expect(throws: DeltaWireError.keyMismatch) {
      try KafkaRecordLayout.decode(key: SampleDeltas.otherUser.bytes, value: value, headers: [])
    }
    #expect(throws: DeltaWireError.keyMismatch) {
      try KafkaRecordLayout.decode(key: [], value: value, headers: [])
    }
    // Someone else's bytes without headers are not read as a delta.
    for foreign in [Array("not a delta".utf8), [0x08, 0x96, 0x01], []] {
      #expect(throws: DeltaWireError.self) {
        try KafkaRecordLayout.decode(key: delta.userID.bytes, value: foreign, headers: [])
      }
    }
    // A per-batch value is not a delta either.
    let batchValue = DeltaCodec.encode(batch, sealedAtMilliseconds: 5)
    #expect(throws: DeltaWireError.self) {
      try KafkaRecordLayout.decode(key: delta.userID.bytes, value: batchValue, headers: [])
    }
  }

  @Test func perBatchRecordIsKeyedByProducerInstance() throws {
    let records = KafkaRecordLayout.records(for: batch, framing: .perBatch, sealedAtMilliseconds: 5)
    let record = try #require(records.first)
    #expect(records.count == 1)
    #expect(record.key == [0x8f, 0x3a, 0x2c, 0x1d, 0x5e, 0x6b, 0x7a, 0x90])
    #expect(header(record, "privtrak-type") == "privtrak.v1.DeltaBatch")
    #expect(header(record, "privtrak-schema") == "1")
    #expect(try DeltaCodec.decodeBatchWithMetadata(record.value).metadata.sealedAtMilliseconds == 5)
    #expect(
      try KafkaRecordLayout.decode(value: record.value, headers: record.headers) == batch.deltas)
  }

  @Test func emptyBatchHasNoRecords() {
    for framing in RecordFraming.allCases {
      #expect(KafkaRecordLayout.records(for: DeltaBatch(deltas: []), framing: framing).isEmpty)
    }
  }

  @Test func framingParsesFromConfigurationWords() {
    #expect(RecordFraming(rawValue: "per-delta") == .perDelta)
    #expect(RecordFraming(rawValue: "per-batch") == .perBatch)
    #expect(RecordFraming(rawValue: "batch") == nil)
  }

  @Test func decodeRejectsForeignRecords() throws {
    let record = KafkaRecordLayout.record(for: SampleDeltas.typical(), withDeltaHeaders: true)
    #expect(throws: DeltaWireError.missingHeader(name: "privtrak-schema")) {
      try KafkaRecordLayout.decode(
        value: record.value,
        headers: [KafkaRecordHeader(name: "privtrak-type", value: Array("privtrak.v1.Delta".utf8))])
    }
    #expect(throws: DeltaWireError.missingHeader(name: "privtrak-type")) {
      try KafkaRecordLayout.decode(
        value: record.value,
        headers: [KafkaRecordHeader(name: "privtrak-schema", value: Array("1".utf8))])
    }
    #expect(throws: DeltaWireError.unsupportedSchema(version: "2")) {
      try KafkaRecordLayout.decode(
        value: record.value,
        headers: record.headers + [
          KafkaRecordHeader(name: "privtrak-schema", value: Array("2".utf8))
        ])
    }
    #expect(throws: DeltaWireError.unsupportedType(name: "privtrak.v1.Other")) {
      try KafkaRecordLayout.decode(
        value: record.value,
        headers: [
          KafkaRecordHeader(name: "privtrak-schema", value: Array("1".utf8)),
          KafkaRecordHeader(name: "privtrak-type", value: Array("privtrak.v1.Other".utf8)),
        ])
    }
  }
}
