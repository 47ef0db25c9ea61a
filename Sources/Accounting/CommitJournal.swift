import BitTorrent
import DeltaModel
import Logging
import Synchronization
internal import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// What one durably published delta did to its entry: the entry as it was
/// right after that announce, or its removal.
struct JournalChange: Sendable {
  enum Kind: UInt8, Sendable {
    case upsert = 1
    case remove = 2
  }

  var kind: Kind
  /// The entry's shard in the process that wrote the record (snapshot cuts
  /// are per shard; hash seeds differ between processes).
  var shard: UInt32
  /// The delta's sequence within the writer's instance.
  var sequence: UInt64
  /// The key, and for `upsert` the new baseline.
  var entry: StatsEntry
}

/// A log of what every durably published batch did to the baselines, so a
/// process killed without its shutdown snapshot does not count twice the
/// bytes it had already published since the last periodic snapshot.
///
/// Why: a snapshot is older than the deltas published after it. Restored
/// alone, its baselines make the next announce of every entry count those
/// bytes again (different origins, so consumers cannot deduplicate them).
/// Replaying this journal over the snapshot moves each baseline to where the
/// last *published* delta left it; deltas that were not published are
/// recounted from there — exact either way.
///
/// Files `<prefix>.<generation>`, one generation per process start and per
/// snapshot. A snapshot rotates to a new generation, captures, writes a
/// *cut* record (its identity and the last sequence each shard had folded
/// in) and, once saved, deletes older generations. Recovery finds the cut
/// of the snapshot it restored: older files are skipped, the cut's own file
/// is filtered by the cut's shard sequences, newer files apply whole.
///
/// Records are written (not fsynced) after each publish: they survive a
/// killed process, not a lost kernel; without them recovery falls back to
/// the snapshot alone (bytes counted twice, never lost). Frames carry a
/// CRC-32; a torn tail is reported and ignored.
public final class CommitJournal: Sendable {
  /// Files are `<prefix>.<generation>`.
  public let prefix: String
  private let logger: Logger
  private let state = Mutex(State())

  private struct State {
    var descriptor: Int32 = -1
    var generation: UInt64 = 0
    var bytesSinceRotation = 0
    var failed = false
  }

  static let magic: [UInt8] = Array("PTJRNL\r\n".utf8)
  static let version: UInt32 = 1
  static let headerLength = 28
  static let changeLength = 1 + 4 + 8 + SnapshotCodec.entryLength
  private enum FrameType: UInt8 {
    case commit = 1
    case cut = 2
  }

  /// Keeps journal files at `<prefix>.<generation>` (mode 0600: keys hold passkeys).
  public init(prefix: String, logger: Logger = Logger(label: "privtrak.accounting")) {
    self.prefix = prefix
    self.logger = logger
  }

  deinit {
    state.withLock { if $0.descriptor >= 0 { close($0.descriptor) } }
  }

  /// Bytes written since the last rotation (drives early snapshots).
  public var bytesSinceRotation: Int { state.withLock { $0.bytesSinceRotation } }

  // MARK: Writing

  /// Starts a new generation after every existing one and writes to it from
  /// now on. Returns the generation.
  @discardableResult
  func rotate(instance: UInt64) -> UInt64 {
    let next = (Self.generations(of: prefix).last ?? 0) + 1
    state.withLock { state in
      let generation = max(next, state.generation + 1)
      if state.descriptor >= 0 { close(state.descriptor) }
      let path = Self.path(prefix, generation)
      state.descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
      state.generation = generation
      state.bytesSinceRotation = 0
      if state.descriptor < 0 {
        state.failed = true
        logger.error(
          "cannot open the commit journal; a crash will recount bytes published since the last snapshot",
          metadata: ["path": "\(path)", "errno": "\(errno)"])
        return
      }
      state.failed = false
      var header = Self.magic
      header.appendLittleEndian(Self.version)
      header.appendLittleEndian(generation)
      header.appendLittleEndian(instance)
      writeBytes(header, into: &state)
    }
    return state.withLock { $0.generation }
  }

  /// Records what a durably published batch changed.
  func recordCommit(_ changes: [JournalChange], of batch: DeltaBatch) {
    var committed: [UInt64: UInt64] = [:]
    for delta in batch.deltas {
      committed[delta.origin.instance] = max(
        committed[delta.origin.instance] ?? 0, delta.origin.sequence)
    }
    var payload: [UInt8] = []
    payload.reserveCapacity(8 + committed.count * 16 + changes.count * Self.changeLength)
    payload.appendLittleEndian(UInt32(committed.count))
    for (instance, sequence) in committed {
      payload.appendLittleEndian(instance)
      payload.appendLittleEndian(sequence)
    }
    payload.appendLittleEndian(UInt32(changes.count))
    for change in changes {
      payload.append(change.kind.rawValue)
      payload.appendLittleEndian(change.shard)
      payload.appendLittleEndian(change.sequence)
      SnapshotCodec.encode(change.entry, into: &payload)
    }
    appendFrame(.commit, payload)
  }

  /// Records which deltas the snapshot `snapshot` folded in, per shard.
  func recordCut(of snapshot: StatsSnapshot, shardSequences: [UInt64]) {
    var payload: [UInt8] = []
    payload.appendLittleEndian(snapshot.instance)
    payload.appendLittleEndian(snapshot.nextSequence)
    payload.appendLittleEndian(snapshot.createdAtMilliseconds)
    payload.appendLittleEndian(UInt32(shardSequences.count))
    for sequence in shardSequences { payload.appendLittleEndian(sequence) }
    appendFrame(.cut, payload)
  }

  /// Deletes generations older than `generation` (their records are in a saved snapshot).
  func removeGenerations(before generation: UInt64) {
    for old in Self.generations(of: prefix) where old < generation {
      unlink(Self.path(prefix, old))
    }
  }

  private func appendFrame(_ type: FrameType, _ payload: [UInt8]) {
    var checksum = CRC32()
    checksum.update(payload)
    var frame: [UInt8] = [type.rawValue]
    frame.reserveCapacity(9 + payload.count)
    frame.appendLittleEndian(UInt32(payload.count))
    frame.appendLittleEndian(checksum.value)
    frame.append(contentsOf: payload)
    state.withLock { writeBytes(frame, into: &$0) }
  }

  private func writeBytes(_ bytes: [UInt8], into state: inout State) {
    guard !state.failed, state.descriptor >= 0 else { return }
    do {
      // Retries partial and interrupted writes.
      try FileDescriptor(rawValue: state.descriptor).writeAll(bytes)
    } catch {
      state.failed = true
      logger.error(
        "writing the commit journal failed; a crash will recount bytes published since the last snapshot",
        metadata: [
          "path": "\(Self.path(prefix, state.generation))", "errno": "\(Errno(error).rawValue)",
        ])
      return
    }
    state.bytesSinceRotation += bytes.count
  }

  // MARK: Recovery

  /// What the journal says happened after a snapshot.
  struct Recovery {
    /// Changes to apply over the snapshot, in order.
    var changes: [JournalChange] = []
    /// Per instance, the highest sequence known to be published.
    var published: [UInt64: UInt64] = [:]
    /// Files read.
    var files = 0
    /// Problems (torn tails, bad headers), for the log.
    var problems: [String] = []
    /// Whether the snapshot's cut was found (nil snapshot: not looked for).
    var cutFound = false
  }

  /// Reads every generation and works out what to apply over `snapshot`
  /// (nil: no snapshot could be restored; every record applies).
  func recover(after snapshot: StatsSnapshot?) -> Recovery {
    var recovery = Recovery()
    var files: [(generation: UInt64, instance: UInt64, frames: [Frame])] = []
    for generation in Self.generations(of: prefix) {
      let path = Self.path(prefix, generation)
      recovery.files += 1
      switch Self.readFile(path) {
      case .failure(let problem):
        recovery.problems.append("\(path): \(problem)")
      case .success(let file):
        if let problem = file.problem { recovery.problems.append("\(path): \(problem)") }
        files.append((generation, file.instance, file.frames))
      }
    }
    for file in files {
      for frame in file.frames {
        if case .commit(let published, _) = frame {
          for (instance, sequence) in published {
            recovery.published[instance] = max(recovery.published[instance] ?? 0, sequence)
          }
        }
      }
    }
    var start = 0
    var filter: [UInt64]?
    if let snapshot {
      let match = files.lastIndex { file in
        file.frames.contains { frame in
          if case .cut(let instance, let next, let created, _) = frame {
            return instance == snapshot.instance && next == snapshot.nextSequence
              && created == snapshot.createdAtMilliseconds
          }
          return false
        }
      }
      guard let match else {
        if !files.isEmpty {
          recovery.problems.append(
            "no journal generation matches the restored snapshot; journal ignored")
        }
        return recovery
      }
      recovery.cutFound = true
      start = match
      for frame in files[match].frames {
        if case .cut(let instance, let next, let created, let sequences) = frame,
          instance == snapshot.instance, next == snapshot.nextSequence,
          created == snapshot.createdAtMilliseconds
        {
          filter = sequences
        }
      }
    }
    for (position, file) in files.enumerated() where position >= start {
      for frame in file.frames {
        guard case .commit(_, let changes) = frame else { continue }
        for change in changes {
          if position == start, let filter {
            // Folded into the snapshot already.
            let shard = Int(change.shard)
            if shard < filter.count, change.sequence <= filter[shard] { continue }
          }
          recovery.changes.append(change)
        }
      }
    }
    return recovery
  }

  private enum Frame {
    case commit(published: [(UInt64, UInt64)], changes: [JournalChange])
    case cut(instance: UInt64, nextSequence: UInt64, createdAt: Int64, shardSequences: [UInt64])
  }

  private struct ReadFile {
    var instance: UInt64
    var frames: [Frame]
    var problem: String?
  }

  private static func readFile(_ path: String) -> Result<ReadFile, JournalReadError> {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return .failure(JournalReadError("open failed, errno \(errno)")) }
    defer { close(descriptor) }
    let bytes: [UInt8]
    do {
      bytes = try FileDescriptor(rawValue: descriptor).readToEnd()
    } catch {
      return .failure(JournalReadError("read failed, errno \(error.rawValue)"))
    }
    guard bytes.count >= headerLength, bytes.starts(with: magic) else {
      return .failure(JournalReadError("not a commit journal (bad or short header)"))
    }
    return bytes.withUnsafeBytes { raw in
      var reader = ByteReader(raw, end: raw.count)
      _ = reader.readBytes(magic.count)
      let version: UInt32 = reader.read()
      guard version == Self.version else {
        return .failure(JournalReadError("unsupported journal version \(version)"))
      }
      let _: UInt64 = reader.read()
      let instance: UInt64 = reader.read()
      var file = ReadFile(instance: instance, frames: [])
      while reader.remaining > 0 {
        guard reader.remaining >= 9 else {
          file.problem = "torn tail (\(reader.remaining) bytes) ignored"
          break
        }
        let type: UInt8 = reader.read()
        let length = Int(reader.read() as UInt32)
        let stored: UInt32 = reader.read()
        guard length <= reader.remaining else {
          file.problem = "torn tail (frame of \(length) bytes, \(reader.remaining) present) ignored"
          break
        }
        let payload = reader.readBytes(length)
        var checksum = CRC32()
        checksum.update(payload)
        guard checksum.value == stored, let frame = decodeFrame(type, payload) else {
          file.problem = "corrupt frame ignored with everything after it"
          break
        }
        file.frames.append(frame)
      }
      return .success(file)
    }
  }

  private static func decodeFrame(_ type: UInt8, _ payload: UnsafeRawBufferPointer) -> Frame? {
    var reader = ByteReader(payload, end: payload.count)
    switch FrameType(rawValue: type) {
    case .commit:
      guard reader.remaining >= 4 else { return nil }
      let instances = Int(reader.read() as UInt32)
      guard reader.remaining >= instances * 16 + 4 else { return nil }
      var published: [(UInt64, UInt64)] = []
      for _ in 0..<instances { published.append((reader.read(), reader.read())) }
      let count = Int(reader.read() as UInt32)
      guard reader.remaining == count * changeLength else { return nil }
      var changes: [JournalChange] = []
      changes.reserveCapacity(count)
      for _ in 0..<count {
        guard let kind = JournalChange.Kind(rawValue: reader.read()) else { return nil }
        let shard: UInt32 = reader.read()
        let sequence: UInt64 = reader.read()
        let userID = reader.readUserID()
        let infoHash = InfoHash(reader.readBytes20())
        let peerID = PeerID(reader.readBytes20())
        let uploaded: UInt64 = reader.read()
        let downloaded: UInt64 = reader.read()
        let lastSeen: UInt32 = reader.read()
        let flags: UInt8 = reader.read()
        changes.append(
          JournalChange(
            kind: kind, shard: shard, sequence: sequence,
            entry: StatsEntry(
              userID: userID, infoHash: infoHash, peerID: peerID, uploaded: uploaded,
              downloaded: downloaded, lastSeen: lastSeen, flags: StatsEntry.Flags(rawValue: flags))
          ))
      }
      return .commit(published: published, changes: changes)
    case .cut:
      guard reader.remaining >= 28 else { return nil }
      let instance: UInt64 = reader.read()
      let next: UInt64 = reader.read()
      let created: Int64 = reader.read()
      let count = Int(reader.read() as UInt32)
      guard reader.remaining == count * 8 else { return nil }
      return .cut(
        instance: instance, nextSequence: next, createdAt: created,
        shardSequences: (0..<count).map { _ in reader.read() })
    case nil:
      return nil
    }
  }

  // MARK: Files

  static func path(_ prefix: String, _ generation: UInt64) -> String {
    let digits = String(generation)
    return prefix + "." + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
  }

  /// Existing generations, ascending.
  static func generations(of prefix: String) -> [UInt64] {
    let slash = prefix.lastIndex(of: "/")
    let directory = slash.map { $0 == prefix.startIndex ? "/" : String(prefix[..<$0]) } ?? "."
    let base = slash.map { String(prefix[prefix.index(after: $0)...]) } ?? prefix
    guard let handle = opendir(directory) else { return [] }
    defer { closedir(handle) }
    var found: [UInt64] = []
    while let item = readdir(handle) {
      let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
        String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
      }
      guard name.hasPrefix(base + "."), let generation = UInt64(name.dropFirst(base.count + 1))
      else { continue }
      found.append(generation)
    }
    return found.sorted()
  }
}

private struct JournalReadError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
