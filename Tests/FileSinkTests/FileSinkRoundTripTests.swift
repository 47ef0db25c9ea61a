import DeltaModel
import FileSink
import Testing

@Suite struct FileSinkRoundTripTests {
  @Test func manyBatchesComeBackInOrder() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("deltas.ptdl")
    let batches = SampleBatches.batches(300)
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    #expect(sink.repair == nil)
    for batch in batches { try await sink.publish(batch) }
    let statistics = await sink.statistics
    try await sink.close()

    #expect(statistics.batches == 300)
    #expect(statistics.deltas == batches.reduce(0) { $0 + $1.deltas.count })
    #expect(statistics.fileSize == (try FileSurgery.size(path)))
    #expect(try FileDeltaReader(path: path).readAvailable() == batches)
  }

  @Test func reopeningAppendsAfterExistingRecords() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("deltas.ptdl")
    let batches = SampleBatches.batches(5)
    let first = try FileSink(configuration: FileSinkConfiguration(path: path))
    for batch in batches.prefix(3) { try await first.publish(batch) }
    try await first.close()

    let second = try FileSink(configuration: FileSinkConfiguration(path: path))
    #expect(second.repair == nil)
    #expect(await second.statistics.fileSize == (try FileSurgery.size(path)))
    for batch in batches.suffix(2) { try await second.publish(batch) }
    try await second.close()

    #expect(try FileDeltaReader(path: path).readAvailable() == batches)
  }

  @Test func newFileStartsWithHeader() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("deltas.ptdl")
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    try await sink.close()
    #expect(try FileSurgery.bytes(path) == Array("PTDL".utf8) + [1, 0, 0, 0])
  }

  @Test func emptyBatchWritesNothing() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("deltas.ptdl")
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    try await sink.publish(DeltaBatch(deltas: []))
    #expect(await sink.statistics.batches == 0)
    try await sink.close()
    #expect(try FileSurgery.size(path) == 8)
  }

  @Test func secondWriterIsLockedOutUntilTheFirstCloses() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("deltas.ptdl")
    let first = try FileSink(configuration: FileSinkConfiguration(path: path))
    #expect(throws: FileSinkError.locked(path: path)) {
      _ = try FileSink(configuration: FileSinkConfiguration(path: path))
    }
    try await first.close()
    let second = try FileSink(configuration: FileSinkConfiguration(path: path))
    try await second.close()
  }

  @Test func publishAfterCloseThrows() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("deltas.ptdl")
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    try await sink.close()
    try await sink.close()  // harmless
    await #expect(throws: FileSinkError.closed(path: path)) {
      try await sink.publish(SampleBatches.batches(1)[0])
    }
  }

  @Test func oversizedBatchIsRefusedAndLeavesTheFileUsable() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("deltas.ptdl")
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path, maxRecordBytes: 300))
    let big = SampleBatches.batches(10)[9]  // 10 deltas, ~800 bytes
    let small = SampleBatches.batches(1)[0]
    await #expect {
      try await sink.publish(big)
    } throws: { error in
      guard case .batchTooLarge(let errorPath, let bytes, let limit) = error as? FileSinkError
      else { return false }
      return errorPath == path && bytes > 300 && limit == 300
    }
    try await sink.publish(small)
    try await sink.close()
    #expect(try FileDeltaReader(path: path, maxRecordBytes: 300).readAvailable() == [small])
  }

  @Test func refusesFilesThatAreNotDeltaLogs() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("notes.txt")
    try FileSurgery.write(Array("hello, this is not a log".utf8), to: path)
    #expect(throws: FileSinkError.notADeltaLog(path: path)) {
      _ = try FileSink(configuration: FileSinkConfiguration(path: path))
    }
    #expect(throws: FileSinkError.notADeltaLog(path: path)) {
      try FileDeltaReader(path: path).readAvailable()
    }
    // The refused file is untouched.
    #expect(try FileSurgery.bytes(path) == Array("hello, this is not a log".utf8))

    let short = directory.file("short")
    try FileSurgery.write(Array("PX".utf8), to: short)
    #expect(throws: FileSinkError.notADeltaLog(path: short)) {
      _ = try FileSink(configuration: FileSinkConfiguration(path: short))
    }

    let future = directory.file("future.ptdl")
    try FileSurgery.write(Array("PTDL".utf8) + [2, 0, 0, 0], to: future)
    #expect(throws: FileSinkError.unsupportedVersion(path: future, version: 2)) {
      _ = try FileSink(configuration: FileSinkConfiguration(path: future))
    }
  }

  @Test func missingDirectoryIsASystemErrorNamingTheFile() throws {
    let path = "/nonexistent-privtrak-dir/deltas.ptdl"
    let error = #expect(throws: FileSinkError.self) {
      _ = try FileSink(configuration: FileSinkConfiguration(path: path))
    }
    #expect(error?.description.hasPrefix(path + ": open failed: No such file or directory") == true)
  }
}
