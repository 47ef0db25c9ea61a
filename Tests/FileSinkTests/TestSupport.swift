import Accounting
import BitTorrent
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

/// A clock tests move by hand; sleepers wake when it passes their deadline.
final class ManualTestClock: Clock, Sendable {
  struct Instant: InstantProtocol {
    var offset: Duration
    func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
    func duration(to other: Instant) -> Duration { other.offset - offset }
    static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
  }

  private struct Sleeper {
    var id: Int
    var deadline: Instant
    var continuation: CheckedContinuation<Void, any Error>
  }

  private struct State {
    var now = Instant(offset: .zero)
    var nextID = 0
    var sleepers: [Sleeper] = []
    var cancelled: Set<Int> = []
  }

  private let state = Mutex(State())

  var now: Instant { state.withLock { $0.now } }
  var minimumResolution: Duration { .nanoseconds(1) }

  /// How many tasks are sleeping on this clock.
  var sleeperCount: Int { state.withLock { $0.sleepers.count } }

  func advance(by duration: Duration) {
    let due = state.withLock { state -> [Sleeper] in
      state.now = state.now.advanced(by: duration)
      let now = state.now
      let due = state.sleepers.filter { $0.deadline <= now }
      state.sleepers.removeAll { $0.deadline <= now }
      return due
    }
    for sleeper in due { sleeper.continuation.resume() }
  }

  func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
    let id = state.withLock { state -> Int in
      state.nextID += 1
      return state.nextID
    }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation {
        (continuation: CheckedContinuation<Void, any Error>) in
        let outcome = state.withLock { state -> Result<Void, any Error>? in
          if state.cancelled.contains(id) { return .failure(CancellationError()) }
          if deadline <= state.now { return .success(()) }
          state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
          return nil
        }
        if let outcome { continuation.resume(with: outcome) }
      }
    } onCancel: {
      let sleeper = state.withLock { state -> Sleeper? in
        state.cancelled.insert(id)
        guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
        return state.sleepers.remove(at: index)
      }
      sleeper?.continuation.resume(throwing: CancellationError())
    }
  }
}

/// Waits for a condition the code under test makes true, failing the test
/// after a generous deadline instead of hanging (the deadline never decides
/// a passing run).
func eventually(
  _ what: String, within limit: Duration = .seconds(10), _ condition: () async -> Bool,
  sourceLocation: SourceLocation = #_sourceLocation
) async {
  let deadline = ContinuousClock.now + limit
  while ContinuousClock.now < deadline {
    if await condition() { return }
    try? await Task.sleep(for: .milliseconds(1))
  }
  Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
}
