/// When FileSink forces written batches to stable storage.
public enum FsyncPolicy: Sendable, Hashable {
  /// `publish` returns only after the batch is on disk (fdatasync). Survives
  /// power loss; the default, and the only policy that fully meets the
  /// `DeltaSink` durability contract.
  case everyBatch
  /// Sync when a publish finds the last sync older than the interval, from
  /// `runPeriodicSync()`, and at close. A crash of the machine loses at most
  /// about one interval of batches; a crash of the process loses nothing.
  case interval(Duration)
  /// Leave it to the kernel's writeback. A crash of the process loses
  /// nothing; a crash of the machine loses whatever was not written back.
  case never
}

/// How a FileSink writes its delta log.
public struct FileSinkConfiguration: Sendable, Hashable {
  /// The log file; created (with its header) if missing.
  public var path: String
  /// When to fsync.
  public var fsyncPolicy: FsyncPolicy
  /// Largest batch payload written or read; larger batches are refused, and
  /// larger length fields in a file are treated as corruption.
  public var maxRecordBytes: Int

  /// Creates a configuration.
  public init(
    path: String, fsyncPolicy: FsyncPolicy = .everyBatch,
    maxRecordBytes: Int = DeltaLogFormat.defaultMaxRecordBytes
  ) {
    precondition(
      maxRecordBytes >= 1 && maxRecordBytes <= Int(UInt32.max), "maxRecordBytes must fit a u32")
    self.path = path
    self.fsyncPolicy = fsyncPolicy
    self.maxRecordBytes = maxRecordBytes
  }
}

/// Counters of one FileSink since it opened its file.
public struct FileSinkStatistics: Sendable, Hashable {
  /// Batches appended (one record each).
  public var batches = 0
  /// Deltas in those batches.
  public var deltas = 0
  /// The file's size, header included.
  public var fileSize: Int64 = 0
  /// fdatasync calls made for appended batches.
  public var syncs = 0
  /// Bytes appended but not yet synced.
  public var unsyncedBytes: Int64 = 0
}
