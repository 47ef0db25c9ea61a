import BitTorrent
import DeltaModel
import Foundation
import Synchronization
import Testing

/// A fresh directory under the system temp folder, removed on deinit.
final class TemporaryDirectory {
  let path: String

  init() throws {
    path =
      FileManager.default.temporaryDirectory
      .appendingPathComponent("filesink-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  func file(_ name: String) -> String { path + "/" + name }

  deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Byte-level edits of a log file, as a crash or bad disk would make them.
enum FileSurgery {
  static func bytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
  }

  static func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
  }

  static func size(_ path: String) throws -> Int64 { Int64(try bytes(path).count) }

  static func truncate(_ path: String, to size: Int64) throws {
    try write(Array(try bytes(path).prefix(Int(size))), to: path)
  }

  static func flipByte(_ path: String, at offset: Int64) throws {
    var content = try bytes(path)
    content[Int(offset)] ^= 0x40
    try write(content, to: path)
  }

  static func append(_ extra: [UInt8], to path: String) throws {
    try write(try bytes(path) + extra, to: path)
  }

  /// Little-endian u32 at `offset`.
  static func u32(_ path: String, at offset: Int64) throws -> UInt32 {
    let content = try bytes(path)
    return (0..<4).reduce(0) { $0 | UInt32(content[Int(offset) + $1]) << UInt32(8 * $1) }
  }

  static func setU32(_ path: String, at offset: Int64, to value: UInt32) throws {
    var content = try bytes(path)
    for index in 0..<4 {
      content[Int(offset) + index] = UInt8(truncatingIfNeeded: value >> UInt32(8 * index))
    }
    try write(content, to: path)
  }

  /// Start offsets of the records of a well-formed log.
  static func recordOffsets(_ path: String) throws -> [Int64] {
    let size = try size(path)
    var offsets: [Int64] = []
    var offset: Int64 = 8
    while offset < size {
      offsets.append(offset)
      offset += 8 + Int64(try u32(path, at: offset))
    }
    return offsets
  }
}

/// Batches shaped like the accounting seals them.
enum SampleBatches {
  static let instance: UInt64 = 0x0123_4567_89ab_cdef

  static func delta(sequence: UInt64) -> Delta {
    var userBytes = [UInt8](repeating: 0, count: 16)
    userBytes[15] = UInt8(truncatingIfNeeded: sequence)
    userBytes[14] = UInt8(truncatingIfNeeded: sequence >> 8)
    return Delta(
      userID: UserID(userBytes)!,
      infoHash: InfoHash(hex: "c12fe1c06bba254a9dc9f519b335aa7c1367a88a")!,
      uploaded: Int64(sequence) * 16384, downloaded: Int64(sequence % 3) * 4096,
      event: DeltaEvent.allCases[Int(sequence % 5)],
      reportedAtMilliseconds: 1_764_061_200_000 + Int64(sequence),
      seeding: sequence % 2 == 0, intervalSeconds: 1800, reset: sequence % 7 == 0,
      origin: DeltaOrigin(instance: instance, sequence: sequence),
      clientIP: sequence % 4 == 0 ? IPAddress("2001:db8::\(sequence % 65536)") : nil)
  }

  /// `count` batches of 1...`maxSize` deltas with consecutive sequences from 1.
  static func batches(_ count: Int, maxSize: Int = 20) -> [DeltaBatch] {
    var sequence: UInt64 = 0
    return (0..<count).map { index in
      DeltaBatch(
        deltas: (0..<(index % maxSize + 1)).map { _ in
          sequence += 1
          return delta(sequence: sequence)
        })
    }
  }
}
