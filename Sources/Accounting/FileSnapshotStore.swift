import BitTorrent
internal import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Keeps the snapshot in one file (format: ``SnapshotCodec``). A save
/// writes `<path>.tmp`, fsyncs it, renames it over `<path>` and fsyncs the
/// directory, so a crash leaves either the old or the new snapshot whole.
/// The file is created mode 0600: user ids are passkeys.
///
/// I/O is blocking; the middleware calls it from its own snapshot task,
/// yielding between 1 MiB chunks so other tasks on that thread get turns.
public struct FileSnapshotStore: StatsSnapshotStore {
  /// The snapshot file.
  public let path: String

  /// Uses the file at `path`.
  public init(path: String) {
    self.path = path
  }

  public func save(_ snapshot: StatsSnapshot) async throws(SnapshotError) {
    let temporary = path + ".tmp"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw failure(.io(operation: "open \(temporary)", errno: errno)) }
    do throws(SnapshotError) {
      try await encode(snapshot, to: descriptor, name: temporary)
      guard fsync(descriptor) == 0 else {
        throw failure(.io(operation: "fsync \(temporary)", errno: errno))
      }
    } catch {
      close(descriptor)
      unlink(temporary)
      throw error
    }
    guard close(descriptor) == 0 else {
      let code = errno
      unlink(temporary)
      throw failure(.io(operation: "close \(temporary)", errno: code))
    }
    guard rename(temporary, path) == 0 else {
      let code = errno
      unlink(temporary)
      throw failure(.io(operation: "rename \(temporary) to \(path)", errno: code))
    }
    // Make the rename itself durable.
    let directory = Self.directory(of: path)
    let directoryDescriptor = open(directory, O_RDONLY | O_CLOEXEC)
    if directoryDescriptor >= 0 {
      defer { close(directoryDescriptor) }
      guard fsync(directoryDescriptor) == 0 else {
        throw failure(.io(operation: "fsync directory \(directory)", errno: errno))
      }
    }
  }

  public func load() async throws(SnapshotError) -> StatsSnapshot {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
      let code = errno
      throw failure(code == ENOENT ? .missing : .io(operation: "open", errno: code))
    }
    defer { close(descriptor) }
    let bytes: [UInt8]
    do {
      bytes = try FileDescriptor(rawValue: descriptor).readToEnd()
    } catch {
      throw failure(.io(operation: "read", errno: error.rawValue))
    }
    return try SnapshotCodec.decode(bytes, location: path)
  }

  private func encode(_ snapshot: StatsSnapshot, to descriptor: Int32, name: String)
    async throws(SnapshotError)
  {
    let entriesLength = snapshot.entries.count * SnapshotCodec.entryLength
    let pendingLength = snapshot.pendingDeltas.reduce(0) {
      $0 + SnapshotCodec.encodedLength(of: $1)
    }
    var checksum = CRC32()
    var buffer = SnapshotCodec.header(for: snapshot, bodyLength: entriesLength + pendingLength)
    buffer.reserveCapacity(1 << 20 + 256)

    func emit(force: Bool) async throws(SnapshotError) {
      guard force || buffer.count >= 1 << 20 else { return }
      checksum.update(buffer)
      try writeAll(buffer, to: descriptor, name: name)
      buffer.removeAll(keepingCapacity: true)
      await Task.yield()
    }

    for entry in snapshot.entries {
      SnapshotCodec.encode(entry, into: &buffer)
      try await emit(force: false)
    }
    for delta in snapshot.pendingDeltas {
      SnapshotCodec.encode(delta, into: &buffer)
      try await emit(force: false)
    }
    try await emit(force: true)
    var trailer: [UInt8] = []
    trailer.appendLittleEndian(checksum.value)
    try writeAll(trailer, to: descriptor, name: name)
  }

  private func writeAll(_ bytes: [UInt8], to descriptor: Int32, name: String) throws(SnapshotError)
  {
    do {
      // Retries partial and interrupted writes.
      try FileDescriptor(rawValue: descriptor).writeAll(bytes)
    } catch {
      throw failure(.io(operation: "write \(name)", errno: Errno(error).rawValue))
    }
  }

  private func failure(_ kind: SnapshotError.Kind) -> SnapshotError {
    SnapshotError(location: path, kind: kind)
  }

  private static func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }
}
