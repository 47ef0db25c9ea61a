import DeltaModel
import FileSink
import Testing

/// Follow mode: the reader returns what completed since its last call while
/// a FileSink keeps appending.
@Suite struct FileDeltaReaderTests {
  @Test func followsAGrowingLog() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("d.ptdl")
    let batches = SampleBatches.batches(6)
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    let reader = try FileDeltaReader(path: path)
    #expect(try reader.readAvailable().isEmpty)

    try await sink.publish(batches[0])
    try await sink.publish(batches[1])
    #expect(try reader.readAvailable() == Array(batches[0...1]))
    #expect(try reader.readAvailable().isEmpty)
    #expect(reader.pendingTail == nil)

    try await sink.publish(batches[2])
    #expect(try reader.readAvailable() == [batches[2]])
    #expect(reader.offset == (await sink.statistics.fileSize))
    try await sink.close()
  }

  /// A record still being written is not returned until it is complete.
  @Test func waitsForARecordBeingWritten() async throws {
    let directory = try TemporaryDirectory()
    let source = directory.file("source.ptdl")
    let batches = SampleBatches.batches(2)
    let sink = try FileSink(configuration: FileSinkConfiguration(path: source))
    for batch in batches { try await sink.publish(batch) }
    try await sink.close()
    let complete = try FileSurgery.bytes(source)
    let secondRecord = Int(try FileSurgery.recordOffsets(source)[1])

    let path = directory.file("growing.ptdl")
    try FileSurgery.write(Array(complete.prefix(3)), to: path)
    let reader = try FileDeltaReader(path: path)
    #expect(try reader.readAvailable().isEmpty)
    #expect(reader.pendingTail == "partial file header (3 bytes)")

    try FileSurgery.write(Array(complete.prefix(secondRecord + 20)), to: path)
    #expect(try reader.readAvailable() == [batches[0]])
    #expect(reader.pendingTail?.contains("partial record") == true)

    try FileSurgery.write(complete, to: path)
    #expect(try reader.readAvailable() == [batches[1]])
    #expect(reader.pendingTail == nil)
  }

  @Test func limitsBatchesPerCall() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("d.ptdl")
    let batches = SampleBatches.batches(5)
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    for batch in batches { try await sink.publish(batch) }
    try await sink.close()

    let reader = try FileDeltaReader(path: path)
    #expect(try reader.readAvailable(maxBatches: 2) == Array(batches[0...1]))
    #expect(try reader.readAvailable(maxBatches: 2) == Array(batches[2...3]))
    #expect(try reader.readAvailable(maxBatches: 2) == [batches[4]])
    #expect(try reader.readAvailable(maxBatches: 2).isEmpty)
  }

  @Test func reportsAFileThatShrankBelowWhatWasRead() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("d.ptdl")
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    for batch in SampleBatches.batches(2) { try await sink.publish(batch) }
    try await sink.close()
    let reader = try FileDeltaReader(path: path)
    #expect(try reader.readAvailable().count == 2)
    try FileSurgery.truncate(path, to: 8)
    #expect(throws: FileSinkError.fileShrank(path: path, readUpTo: reader.offset, size: 8)) {
      try reader.readAvailable()
    }
  }

  @Test func missingFileIsASystemError() {
    #expect(throws: FileSinkError.system(operation: "open", path: "/nonexistent/d.ptdl", errno: 2))
    {
      _ = try FileDeltaReader(path: "/nonexistent/d.ptdl")
    }
  }
}
