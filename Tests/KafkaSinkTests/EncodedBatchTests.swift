import DeltaModel
import DeltaWire
import Testing

@testable import KafkaSink

/// `EncodedBatch` writes records straight into one buffer; its records must
/// be exactly the layout's (`KafkaRecordLayout.records`), in both framings.
@Suite struct EncodedBatchTests {
  @Test(arguments: RecordFraming.allCases, [false, true])
  func recordsAreTheLayoutsRecords(framing: RecordFraming, deltaHeaders: Bool) {
    var source = TestDeltaSource(instance: 0x0123_4567_89ab_cdef)
    for size in [1, 2, 37, 1_000] {
      let batch = source.batch(of: size)
      let encoded = EncodedBatch(batch, framing: framing, deltaHeaders: deltaHeaders)
      let expected = KafkaRecordLayout.records(
        for: batch, framing: framing, withDeltaHeaders: deltaHeaders)
      #expect(encoded.deltaCount == size)
      #expect(encoded.records.count == expected.count)
      var logicalBytes = 0
      for (record, layout) in zip(encoded.records, expected) {
        #expect(Array(encoded.storage[record.key]) == layout.key)
        #expect(Array(encoded.storage[record.value]) == layout.value)
        let headers = encoded.headers[record.headers].map { header in
          let name = encoded.storage[header.nameOffset...].prefix { $0 != 0 }
          return KafkaRecordHeader(
            name: String(decoding: name, as: UTF8.self),
            value: Array(encoded.storage[header.value]))
        }
        #expect(headers == layout.headers)
        logicalBytes += layout.key.count + layout.value.count
        for header in layout.headers { logicalBytes += header.name.utf8.count + header.value.count }
      }
      #expect(encoded.byteCount == logicalBytes)
    }
  }

  @Test func anEmptyBatchHasNoRecords() {
    let encoded = EncodedBatch(DeltaBatch(deltas: []), framing: .perDelta)
    #expect(encoded.records.isEmpty)
    #expect(encoded.deltaCount == 0)
    #expect(encoded.byteCount == 0)
  }
}
