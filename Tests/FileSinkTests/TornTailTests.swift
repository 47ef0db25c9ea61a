import DeltaModel
import FileSink
import Testing

/// A crash mid-append leaves a damaged last record; opening the file cuts it
/// off, says so, and appends continue cleanly.
@Suite struct TornTailTests {
  /// A log of three batches; returns its path, the batches and the record offsets.
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

  /// Opens the damaged log, checks the report, appends, and reads everything back.
  func reopenExpectingRepair(
    _ path: String, at offset: Int64, discarding discarded: Int64, reason: String,
    keeping kept: [DeltaBatch]
  ) async throws {
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    let repair = try #require(sink.repair)
    #expect(repair.path == path)
    #expect(repair.offset == offset)
    #expect(repair.discardedBytes == discarded)
    #expect(repair.reason.contains(reason), "\(repair.reason)")
    #expect(repair.description.hasPrefix("\(path): torn tail at offset \(offset)"))
    #expect(try FileSurgery.size(path) == max(offset, 8))  // a cut header is written afresh

    let appended = DeltaBatch(deltas: [SampleBatches.delta(sequence: 999)])
    try await sink.publish(appended)
    try await sink.close()
    #expect(try FileDeltaReader(path: path).readAvailable() == kept + [appended])
    // And the repaired file opens cleanly.
    let again = try FileSink(configuration: FileSinkConfiguration(path: path))
    #expect(again.repair == nil)
    try await again.close()
  }

  @Test func partialLastRecordPayload() async throws {
    let directory = try TemporaryDirectory()
    let (path, batches, offsets) = try await threeBatchLog(in: directory)
    let size = try FileSurgery.size(path)
    try FileSurgery.truncate(path, to: size - 5)
    try await reopenExpectingRepair(
      path, at: offsets[2], discarding: size - 5 - offsets[2], reason: "partial record",
      keeping: Array(batches.prefix(2)))
  }

  @Test func partialLastRecordHeader() async throws {
    let directory = try TemporaryDirectory()
    let (path, batches, offsets) = try await threeBatchLog(in: directory)
    try FileSurgery.truncate(path, to: offsets[2] + 3)
    try await reopenExpectingRepair(
      path, at: offsets[2], discarding: 3, reason: "partial record header (3 of 8 bytes)",
      keeping: Array(batches.prefix(2)))
  }

  @Test func flippedByteInLastRecord() async throws {
    let directory = try TemporaryDirectory()
    let (path, batches, offsets) = try await threeBatchLog(in: directory)
    let size = try FileSurgery.size(path)
    try FileSurgery.flipByte(path, at: size - 10)
    try await reopenExpectingRepair(
      path, at: offsets[2], discarding: size - offsets[2], reason: "checksum mismatch",
      keeping: Array(batches.prefix(2)))
  }

  @Test func zeroFilledTail() async throws {
    let directory = try TemporaryDirectory()
    let (path, batches, _) = try await threeBatchLog(in: directory)
    let size = try FileSurgery.size(path)
    try FileSurgery.append([UInt8](repeating: 0, count: 4096), to: path)
    try await reopenExpectingRepair(
      path, at: size, discarding: 4096, reason: "zero-filled tail", keeping: batches)
  }

  @Test func partialFileHeader() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("deltas.ptdl")
    try FileSurgery.write(Array("PTD".utf8), to: path)
    try await reopenExpectingRepair(
      path, at: 0, discarding: 3, reason: "partial file header", keeping: [])
  }

  /// What the reader sees of a torn tail before any FileSink repairs it:
  /// the good records, and the rest reported as pending, not as data.
  @Test func readerStopsBeforeTornTail() async throws {
    let directory = try TemporaryDirectory()
    let (path, batches, offsets) = try await threeBatchLog(in: directory)
    try FileSurgery.truncate(path, to: try FileSurgery.size(path) - 1)
    let reader = try FileDeltaReader(path: path)
    #expect(try reader.readAvailable() == Array(batches.prefix(2)))
    #expect(reader.offset == offsets[2])
    #expect(reader.pendingTail?.contains("partial record") == true)
    #expect(reader.pendingTail?.hasSuffix("at offset \(offsets[2])") == true)
  }
}
