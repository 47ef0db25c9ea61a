import DeltaModel
import DeltaWire
import Logging

/// The embedded default `DeltaSink`: appends each batch as one record to a
/// local delta log (format: `DeltaLogFormat`).
///
/// Opening the file validates every record. A torn tail (the remains of a
/// write interrupted by a crash) is logged as a warning, reported in
/// `repair`, and cut off so appends continue cleanly; damage before the end
/// of the file makes the initializer throw `FileSinkError.corruptRecord`
/// instead, since cutting there would discard good records. One FileSink per
/// file: an exclusive `flock` keeps a second writer out.
///
/// Writes, and with `.everyBatch` the fdatasync, run inside the actor on the
/// calling task's (cooperative) thread, blocking it for the duration of the
/// system calls. That is acceptable for the embedded default (one write and
/// at most one sync per sealed batch, not per announce); deployments that
/// need more throughput use KafkaSink.
public actor FileSink: DeltaSink {
  /// The log file.
  public nonisolated let path: String
  /// What was cut off the end of the file at open, if anything.
  public nonisolated let repair: TornTailRepair?

  private let configuration: FileSinkConfiguration
  private let logger: Logger
  private var file: OpenFile?
  private var counters: FileSinkStatistics
  private let elapsed: @Sendable () -> Duration
  private let sleep: @Sendable (Duration) async throws -> Void
  private var lastSync: Duration

  /// Opens (or creates) the log, repairing a torn tail, with the real clock.
  /// - Throws: `FileSinkError` when the file cannot be opened, is not a delta
  ///   log, is damaged before its end, or is locked by another FileSink.
  public init(
    configuration: FileSinkConfiguration, logger: Logger = Logger(label: "privtrak.filesink")
  ) throws(FileSinkError) {
    try self.init(configuration: configuration, logger: logger, clock: ContinuousClock())
  }

  /// Opens (or creates) the log, with `clock` timing the `.interval` fsync policy.
  /// - Throws: as `init(configuration:logger:)`.
  public init<C: Clock>(
    configuration: FileSinkConfiguration, logger: Logger = Logger(label: "privtrak.filesink"),
    clock: C
  ) throws(FileSinkError) where C.Duration == Duration {
    let opened = try Self.open(configuration)
    if let repair = opened.repair {
      logger.warning(
        "delta log had a torn tail; truncated it",
        metadata: [
          "path": "\(repair.path)", "offset": "\(repair.offset)",
          "discarded_bytes": "\(repair.discardedBytes)", "reason": "\(repair.reason)",
        ])
    }
    let origin = clock.now
    self.path = configuration.path
    self.repair = opened.repair
    self.configuration = configuration
    self.logger = logger
    self.file = opened.file
    self.counters = FileSinkStatistics(fileSize: opened.end)
    self.elapsed = { origin.duration(to: clock.now) }
    self.sleep = { try await clock.sleep(for: $0) }
    self.lastSync = .zero
  }

  deinit {
    file?.release()
  }

  /// Counters since open.
  public var statistics: FileSinkStatistics { counters }

  /// Appends the batch as one record; with `.everyBatch` returns only after
  /// it is synced. An empty batch writes nothing. On failure the file is cut
  /// back to where the record started, so a retry appends it cleanly.
  /// - Throws: `FileSinkError` (`.closed`, `.batchTooLarge`, `.system`).
  public func publish(_ batch: DeltaBatch) async throws(FileSinkError) {
    guard let file else { throw .closed(path: path) }
    guard !batch.deltas.isEmpty else { return }
    let payload = DeltaCodec.encode(batch)
    guard payload.count <= configuration.maxRecordBytes else {
      throw .batchTooLarge(path: path, bytes: payload.count, limit: configuration.maxRecordBytes)
    }
    let record = DeltaLogFormat.record(payload: payload)
    let start = counters.fileSize
    do {
      try file.write(record, at: start)
      counters.fileSize += Int64(record.count)
      counters.unsyncedBytes += Int64(record.count)
      switch configuration.fsyncPolicy {
      case .everyBatch: try synchronize(file)
      case .interval(let interval): if elapsed() - lastSync >= interval { try synchronize(file) }
      case .never: break
      }
    } catch {
      // Leave no partial or unsynced record behind for the caller's retry
      // to duplicate. Best effort: the next append overwrites from `start`
      // anyway, and a partial record left at the end is repaired on open.
      do {
        try file.truncate(to: start)
      } catch let truncation {
        logger.error(
          "could not cut back a failed append; a retry may duplicate the batch",
          metadata: ["path": "\(path)", "offset": "\(start)", "error": "\(truncation)"])
      }
      counters.unsyncedBytes -= counters.fileSize - start
      counters.fileSize = start
      throw error
    }
    counters.batches += 1
    counters.deltas += batch.deltas.count
  }

  /// Syncs now if anything is unsynced.
  public func sync() throws(FileSinkError) {
    guard let file else { throw .closed(path: path) }
    if counters.unsyncedBytes > 0 { try synchronize(file) }
  }

  /// With `.interval`, syncs if anything is unsynced and the last sync is at
  /// least one interval old; otherwise does nothing.
  public func syncIfDue() throws(FileSinkError) {
    guard case .interval(let interval) = configuration.fsyncPolicy, let file else { return }
    if counters.unsyncedBytes > 0, elapsed() - lastSync >= interval { try synchronize(file) }
  }

  /// With `.interval`, runs until cancelled or closed, calling `syncIfDue()`
  /// every interval, so batches are synced even when no further publish
  /// comes. Returns at once for the other policies.
  /// - Throws: `CancellationError` when cancelled, `FileSinkError` when a sync fails.
  public func runPeriodicSync() async throws {
    guard case .interval(let interval) = configuration.fsyncPolicy else { return }
    while file != nil {
      try await sleep(interval)
      try syncIfDue()
    }
  }

  /// Syncs what is pending (unless the policy is `.never`) and closes the file.
  /// Later publishes throw `.closed`; closing twice is harmless.
  public func close() async throws(FileSinkError) {
    guard let file else { return }
    defer {
      file.release()
      self.file = nil
    }
    if configuration.fsyncPolicy != .never, counters.unsyncedBytes > 0 { try synchronize(file) }
  }

  private func synchronize(_ file: OpenFile) throws(FileSinkError) {
    try file.synchronize()
    counters.syncs += 1
    counters.unsyncedBytes = 0
    lastSync = elapsed()
  }

  /// Opens, locks, validates and if needed repairs the log.
  private static func open(
    _ configuration: FileSinkConfiguration
  ) throws(FileSinkError) -> (file: OpenFile, end: Int64, repair: TornTailRepair?) {
    let path = configuration.path
    let file = try OpenFile.openForWriting(path)
    do throws(FileSinkError) {
      try file.lockExclusively()
      let size = try file.size()
      let headerSize = DeltaLogFormat.fileHeaderSize
      if size < Int64(headerSize) {
        // New file, or a crash while creating it.
        let existing = try file.read(count: Int(size), at: 0)
        guard existing.elementsEqual(DeltaLogFormat.fileHeader.prefix(existing.count)) else {
          throw FileSinkError.notADeltaLog(path: path)
        }
        let repair =
          size == 0
          ? nil
          : TornTailRepair(
            path: path, offset: 0, discardedBytes: size, reason: "partial file header")
        try file.truncate(to: 0)
        try file.write(DeltaLogFormat.fileHeader, at: 0)
        try file.synchronize()
        try file.synchronizeDirectory()
        return (file, Int64(headerSize), repair)
      }
      var scanner = DeltaLogScanner(
        file: file, maxRecordBytes: configuration.maxRecordBytes, fileSize: size)
      try scanner.checkHeader()
      var offset = Int64(headerSize)
      while true {
        switch try scanner.step(at: offset) {
        case .record(_, let next):
          offset = next
        case .end:
          return (file, offset, nil)
        case .corrupt(let reason):
          throw FileSinkError.corruptRecord(path: path, offset: offset, reason: reason)
        case .incomplete(let reason):
          if let valid = try scanner.firstValidRecord(after: offset) {
            throw FileSinkError.corruptRecord(
              path: path, offset: offset,
              reason: "\(reason), yet a valid record follows at offset \(valid)")
          }
          try file.truncate(to: offset)
          try file.synchronize()
          return (
            file, offset,
            TornTailRepair(
              path: path, offset: offset, discardedBytes: size - offset, reason: reason)
          )
        }
      }
    } catch {
      file.release()
      throw error
    }
  }
}
