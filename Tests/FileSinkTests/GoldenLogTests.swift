import DeltaModel
import DeltaWire
import FileSink
import Foundation
import Testing

/// `schemas/testdata/deltalog_v1.ptdl`, written by the Python reference
/// (tests/python/make_golden.py), pins the file format: FileSink writes the
/// same bytes and FileDeltaReader reads the described batches.
@Suite struct GoldenLogTests {
  static let testdata = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("schemas/testdata")

  func bytes(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: Self.testdata.appendingPathComponent(name)))
  }

  /// The two batches deltalog_v1.json lists, from the vectors it names
  /// (which GoldenVectorTests and test_golden.py check against their descriptions).
  func expectedBatches() throws -> [DeltaBatch] {
    let description = String(decoding: try bytes("deltalog_v1.json"), as: UTF8.self)
    #expect(description.contains(#"["delta_full.json", "delta_reset.json", "delta_expired.json"]"#))
    #expect(description.contains(#"["batch_three.json"]"#))
    let first = try ["delta_full.bin", "delta_reset.bin", "delta_expired.bin"].map {
      try DeltaCodec.decodeDelta(try bytes($0))
    }
    return [DeltaBatch(deltas: first), try DeltaCodec.decodeBatch(try bytes("batch_three.bin"))]
  }

  @Test func readerDecodesTheGoldenLog() throws {
    let reader = try FileDeltaReader(
      path: Self.testdata.appendingPathComponent("deltalog_v1.ptdl").path)
    #expect(try reader.readAvailable() == (try expectedBatches()))
    #expect(reader.pendingTail == nil)
  }

  @Test func sinkWritesTheGoldenBytes() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("d.ptdl")
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path))
    for batch in try expectedBatches() { try await sink.publish(batch) }
    try await sink.close()
    #expect(try FileSurgery.bytes(path) == (try bytes("deltalog_v1.ptdl")))
  }
}
