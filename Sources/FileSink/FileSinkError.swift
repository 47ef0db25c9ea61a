import DeltaWire

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Why a delta log could not be opened, written or read. Every case names the file.
public enum FileSinkError: Error, Hashable, Sendable, CustomStringConvertible {
  /// A system call failed.
  case system(operation: String, path: String, errno: Int32)
  /// The file does not start with the delta log header.
  case notADeltaLog(path: String)
  /// The file is a delta log of a format version this code does not read.
  case unsupportedVersion(path: String, version: UInt32)
  /// A record before the end of the file is damaged; nothing after it is
  /// trusted or skipped silently. Move the file aside or repair it.
  case corruptRecord(path: String, offset: Int64, reason: String)
  /// A record's checksum is right but its payload is not a valid batch.
  case undecodableRecord(path: String, offset: Int64, error: DeltaWireError)
  /// Another FileSink (in this or another process) has the file open.
  case locked(path: String)
  /// The sink was closed.
  case closed(path: String)
  /// A batch encodes to more than the configured record limit.
  case batchTooLarge(path: String, bytes: Int, limit: Int)
  /// The file became shorter than what was already read (replaced or truncated by someone else).
  case fileShrank(path: String, readUpTo: Int64, size: Int64)

  public var description: String {
    switch self {
    case .system(let operation, let path, let code):
      "\(path): \(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
    case .notADeltaLog(let path):
      "\(path): not a privtrak delta log (no PTDL header)"
    case .unsupportedVersion(let path, let version):
      "\(path): delta log format version \(version) is not supported (this build reads \(DeltaLogFormat.version))"
    case .corruptRecord(let path, let offset, let reason):
      "\(path): corrupt record at offset \(offset): \(reason)"
    case .undecodableRecord(let path, let offset, let error):
      "\(path): record at offset \(offset) is not a valid DeltaBatch: \(error)"
    case .locked(let path):
      "\(path): already open for writing by another FileSink"
    case .closed(let path):
      "\(path): the sink is closed"
    case .batchTooLarge(let path, let bytes, let limit):
      "\(path): batch encodes to \(bytes) bytes, above the record limit of \(limit)"
    case .fileShrank(let path, let readUpTo, let size):
      "\(path): file shrank to \(size) bytes below the \(readUpTo) already read"
    }
  }
}

/// What a FileSink found and cut off at the end of an existing file when it
/// opened it: the remains of a write interrupted by a crash.
public struct TornTailRepair: Sendable, Hashable, CustomStringConvertible {
  /// The file.
  public var path: String
  /// Where the damaged tail started; the file now ends here (offset 0: a
  /// partial file header, replaced by a fresh one).
  public var offset: Int64
  /// How many bytes were cut off.
  public var discardedBytes: Int64
  /// What was wrong with them.
  public var reason: String

  /// Creates a report.
  public init(path: String, offset: Int64, discardedBytes: Int64, reason: String) {
    self.path = path
    self.offset = offset
    self.discardedBytes = discardedBytes
    self.reason = reason
  }

  public var description: String {
    "\(path): torn tail at offset \(offset) (\(reason)); truncated \(discardedBytes) bytes"
  }
}
