import DeltaModel
import FileSink
import Testing

/// Damage before the end of the file is reported with the file and offset,
/// never cut off or skipped.
@Suite struct CorruptionTests {
  func threeBatchLog(in directory: TemporaryDirectory) async throws -> (
    String, [DeltaBatch], [Int64]
  ) {
    let path = directory.file("deltas.ptdl")
    let batches = SampleBatches.batches(3, maxSize: 4)
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    for batch in batches { try await sink.publish(batch) }
    try await sink.close()
    return (path, batches, try FileSurgery.recordOffsets(path))
  }

  func expectCorruption(
    _ path: String, at offset: Int64, reason: String,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let before = try FileSurgery.bytes(path)
    let error = #expect(throws: FileSinkError.self, sourceLocation: sourceLocation) {
      _ = try FileSink(configuration: FileSinkConfiguration(path: path))
    }
    guard case .corruptRecord(let errorPath, let errorOffset, let errorReason) = error else {
      Issue.record(
        "expected corruptRecord, got \(String(describing: error))", sourceLocation: sourceLocation)
      return
    }
    #expect(errorPath == path, sourceLocation: sourceLocation)
    #expect(errorOffset == offset, sourceLocation: sourceLocation)
    #expect(errorReason.contains(reason), "\(errorReason)", sourceLocation: sourceLocation)
    #expect(
      error?.description.hasPrefix("\(path): corrupt record at offset \(offset): ") == true,
      sourceLocation: sourceLocation)
    #expect(
      try FileSurgery.bytes(path) == before, "the file must be left as it was",
      sourceLocation: sourceLocation)
  }

  @Test func flippedPayloadByteInTheMiddle() async throws {
    let directory = try TemporaryDirectory()
    let (path, batches, offsets) = try await threeBatchLog(in: directory)
    try FileSurgery.flipByte(path, at: offsets[1] + 12)
    try expectCorruption(path, at: offsets[1], reason: "checksum mismatch")

    // The reader hands out the good batch, then stops at the damage every time.
    let reader = try FileDeltaReader(path: path)
    #expect(try reader.readAvailable() == [batches[0]])
    for _ in 0..<2 {
      #expect(throws: FileSinkError.self) { try reader.readAvailable() }
      #expect(reader.offset == offsets[1])
    }
  }

  /// A length field damaged so the record seems to run past the end of the
  /// file looks like a torn tail, but valid records follow it.
  @Test func lengthRunningPastEndWithValidRecordsAfter() async throws {
    let directory = try TemporaryDirectory()
    let (path, _, offsets) = try await threeBatchLog(in: directory)
    try FileSurgery.setU32(path, at: offsets[0], to: UInt32(try FileSurgery.size(path)))
    try expectCorruption(
      path, at: offsets[0], reason: "valid record follows at offset \(offsets[1])")
  }

  @Test func impossibleLengthInTheMiddle() async throws {
    let directory = try TemporaryDirectory()
    let (path, _, offsets) = try await threeBatchLog(in: directory)
    try FileSurgery.setU32(path, at: offsets[1], to: 0)
    try expectCorruption(path, at: offsets[1], reason: "invalid record length 0")
    try FileSurgery.setU32(path, at: offsets[1], to: 0xffff_fff0)
    try expectCorruption(path, at: offsets[1], reason: "invalid record length 4294967280")
    let reader = try FileDeltaReader(path: path)
    #expect(try reader.readAvailable().count == 1)
    #expect(
      throws: FileSinkError.corruptRecord(
        path: path, offset: offsets[1], reason: "invalid record length 4294967280 (limit 67108864)")
    ) {
      try reader.readAvailable()
    }
  }

  /// A record whose checksum matches but whose payload is not a batch
  /// (written by something else) is reported by the reader with its offset.
  @Test func undecodablePayloadIsReported() async throws {
    let directory = try TemporaryDirectory()
    let (path, batches, offsets) = try await threeBatchLog(in: directory)
    let garbage: [UInt8] = [0x0a, 0x05, 0x01]  // field 1, length 5, only 1 byte follows
    let crc = try crcOf(garbage)
    var record: [UInt8] = [UInt8(garbage.count), 0, 0, 0]
    record += (0..<4).map { UInt8(truncatingIfNeeded: crc >> UInt32(8 * $0)) }
    try FileSurgery.append(record + garbage, to: path)

    let reader = try FileDeltaReader(path: path)
    #expect(try reader.readAvailable() == batches)
    let error = #expect(throws: FileSinkError.self) { try reader.readAvailable() }
    guard case .undecodableRecord(let errorPath, let offset, _) = error else {
      Issue.record("expected undecodableRecord, got \(String(describing: error))")
      return
    }
    #expect(errorPath == path)
    #expect(offset == offsets[2] + 8 + Int64(try FileSurgery.u32(path, at: offsets[2])))
  }

  /// CRC-32C of `bytes`, via the Python-independent reference in this test target.
  func crcOf(_ bytes: [UInt8]) throws -> UInt32 { ReferenceCRC32C.checksum(bytes) }
}
