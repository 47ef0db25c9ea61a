internal import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file descriptor with the few positional operations the delta log needs;
/// every failure becomes a `FileSinkError.system` naming the file.
struct OpenFile: Sendable {
  let descriptor: Int32
  let path: String

  /// Opens `path` for appending records (created with mode 0644 if missing).
  static func openForWriting(_ path: String) throws(FileSinkError) -> OpenFile {
    try openDescriptor(path, flags: O_RDWR | O_CREAT | O_CLOEXEC)
  }

  /// Opens `path` read-only.
  static func openForReading(_ path: String) throws(FileSinkError) -> OpenFile {
    try openDescriptor(path, flags: O_RDONLY | O_CLOEXEC)
  }

  private static func openDescriptor(_ path: String, flags: Int32) throws(FileSinkError) -> OpenFile
  {
    while true {
      let descriptor = open(path, flags, 0o644)
      if descriptor >= 0 { return OpenFile(descriptor: descriptor, path: path) }
      if errno != EINTR { throw .system(operation: "open", path: path, errno: errno) }
    }
  }

  /// Takes the exclusive advisory lock that keeps a second writer out.
  func lockExclusively() throws(FileSinkError) {
    while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
      if errno == EWOULDBLOCK { throw .locked(path: path) }
      if errno != EINTR { throw .system(operation: "flock", path: path, errno: errno) }
    }
  }

  /// The current file size.
  func size() throws(FileSinkError) -> Int64 {
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
      throw .system(operation: "fstat", path: path, errno: errno)
    }
    return Int64(status.st_size)
  }

  /// Up to `count` bytes at `offset`; fewer only at the end of the file.
  func read(count: Int, at offset: Int64) throws(FileSinkError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var done = 0
    // pread may return fewer bytes than asked before the end of the file;
    // SystemPackage retries only interrupted calls.
    while done < count {
      let result: Int
      do {
        result = try bytes.withUnsafeMutableBytes { buffer in
          try FileDescriptor(rawValue: descriptor).read(
            fromAbsoluteOffset: offset + Int64(done),
            into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
        }
      } catch {
        throw .system(operation: "pread", path: path, errno: Self.errnoCode(of: error))
      }
      if result == 0 { break }
      done += result
    }
    bytes.removeLast(count - done)
    return bytes
  }

  /// Writes all of `bytes` at `offset`.
  func write(_ bytes: [UInt8], at offset: Int64) throws(FileSinkError) {
    do {
      // Retries partial and interrupted writes.
      try FileDescriptor(rawValue: descriptor).writeAll(toAbsoluteOffset: offset, bytes)
    } catch {
      throw .system(operation: "pwrite", path: path, errno: Self.errnoCode(of: error))
    }
  }

  /// The errno of a SystemPackage error (its operations throw only `Errno`).
  private static func errnoCode(of error: any Error) -> Int32 {
    (error as? Errno)?.rawValue ?? EIO
  }

  /// Cuts the file to `size` bytes.
  func truncate(to size: Int64) throws(FileSinkError) {
    while ftruncate(descriptor, off_t(size)) != 0 {
      if errno != EINTR { throw .system(operation: "ftruncate", path: path, errno: errno) }
    }
  }

  /// Makes written data (and the file size) durable.
  func synchronize() throws(FileSinkError) {
    while fdatasync(descriptor) != 0 {
      if errno != EINTR { throw .system(operation: "fdatasync", path: path, errno: errno) }
    }
  }

  /// Makes the file's directory entry durable (after creating the file).
  func synchronizeDirectory() throws(FileSinkError) {
    let directory: String
    if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) {
      directory = slash == path.utf8.startIndex ? "/" : String(path[..<slash])
    } else {
      directory = "."
    }
    let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard descriptor >= 0 else {
      throw .system(operation: "open directory", path: directory, errno: errno)
    }
    defer { _ = close(descriptor) }
    guard fsync(descriptor) == 0 else {
      throw .system(operation: "fsync directory", path: directory, errno: errno)
    }
  }

  /// Releases the lock and the descriptor.
  ///
  /// The explicit unlock matters: a child process spawned by another thread
  /// holds a copy of the descriptor until its `exec`, and `close` alone would
  /// leave the lock held through that copy, refusing an immediate reopen.
  func release() {
    _ = flock(descriptor, LOCK_UN)
    _ = close(descriptor)
  }
}
