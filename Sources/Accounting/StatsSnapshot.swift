import DeltaModel

/// Everything the accounting middleware needs to resume after a restart:
/// the entries' baselines and the deltas not yet delivered.
public struct StatsSnapshot: Sendable, Equatable {
  /// The `DeltaOrigin.instance` of the process that wrote the snapshot.
  public var instance: UInt64
  /// The sequence that process would have given its next delta.
  public var nextSequence: UInt64
  /// `TrackerClock` milliseconds when the snapshot was taken.
  public var createdAtMilliseconds: Int64
  /// Every entry with its baseline.
  public var entries: [StatsEntry]
  /// Deltas not yet durably published, oldest first, with their original origins.
  public var pendingDeltas: [Delta]

  /// Creates a snapshot.
  public init(
    instance: UInt64, nextSequence: UInt64, createdAtMilliseconds: Int64, entries: [StatsEntry],
    pendingDeltas: [Delta]
  ) {
    self.instance = instance
    self.nextSequence = nextSequence
    self.createdAtMilliseconds = createdAtMilliseconds
    self.entries = entries
    self.pendingDeltas = pendingDeltas
  }
}

/// Why a snapshot could not be read or written. The description names the
/// location and the problem, e.g. "snapshot /var/lib/privtrak/stats.snap:
/// truncated (expected 1 000 068 bytes, found 4 096)".
public struct SnapshotError: Error, Sendable, Equatable, CustomStringConvertible {
  /// What went wrong.
  public enum Kind: Sendable, Equatable {
    /// There is no snapshot (a first start).
    case missing
    /// The file is shorter than its header says.
    case truncated(expectedBytes: Int, actualBytes: Int)
    /// The file does not start with the snapshot magic: not a snapshot.
    case badMagic
    /// Written by a format version this build cannot read.
    case unsupportedVersion(UInt32)
    /// The content does not match its checksum.
    case checksumMismatch(stored: UInt32, computed: UInt32)
    /// The checksum matched but the content is inconsistent.
    case corrupt(String)
    /// A system call failed.
    case io(operation: String, errno: Int32)
  }

  /// Where the snapshot lives (a file path for ``FileSnapshotStore``).
  public var location: String
  /// What went wrong.
  public var kind: Kind

  /// Creates an error.
  public init(location: String, kind: Kind) {
    self.location = location
    self.kind = kind
  }

  public var description: String {
    let problem: String
    switch kind {
    case .missing: problem = "missing (no snapshot written yet)"
    case .truncated(let expected, let actual):
      problem = "truncated (expected \(expected) bytes, found \(actual))"
    case .badMagic: problem = "not a privtrak stats snapshot (bad magic)"
    case .unsupportedVersion(let version): problem = "unsupported format version \(version)"
    case .checksumMismatch(let stored, let computed):
      problem = "corrupt (checksum \(hex(computed)) does not match stored \(hex(stored)))"
    case .corrupt(let reason): problem = "corrupt (\(reason))"
    case .io(let operation, let errno): problem = "\(operation) failed with errno \(errno)"
    }
    return "snapshot \(location): \(problem)"
  }

  private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
  }
}

/// Where snapshots are kept. Writes must be atomic: after a crash at any
/// point, `load` returns either the previous or the new snapshot, whole.
public protocol StatsSnapshotStore: Sendable {
  /// Replaces the stored snapshot.
  func save(_ snapshot: StatsSnapshot) async throws(SnapshotError)
  /// Reads the stored snapshot; `.missing` when there is none.
  func load() async throws(SnapshotError) -> StatsSnapshot
}
