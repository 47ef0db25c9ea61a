import DeltaModel
import DeltaWire

/// Reads the batches of a delta log in order, including one another process
/// is still appending to: `readAvailable()` returns the records completed
/// since the previous call and never blocks, so a follower polls it.
///
/// Damage before the end of the file throws (`corruptRecord`,
/// `undecodableRecord`) at the damaged record, every time it is reached (a
/// call that already has good batches returns them first; the next call
/// throws): it is never skipped. An incomplete record at the very end is treated as a write
/// in progress: it is not returned and is described in `pendingTail` until
/// it completes (or a FileSink opening the file cuts it off).
public final class FileDeltaReader {
  /// The log file.
  public let path: String
  /// Where the next record starts: the end of the last record returned.
  public private(set) var offset: Int64
  /// Why the bytes after `offset` were not returned, when some are there.
  public private(set) var pendingTail: String?

  private let file: OpenFile
  private let maxRecordBytes: Int
  private var headerChecked = false

  /// Opens the log for reading (it must exist; it may still be empty).
  /// - Throws: `FileSinkError.system` when it cannot be opened.
  public init(path: String, maxRecordBytes: Int = DeltaLogFormat.defaultMaxRecordBytes)
    throws(FileSinkError)
  {
    self.path = path
    self.file = try OpenFile.openForReading(path)
    self.maxRecordBytes = maxRecordBytes
    self.offset = Int64(DeltaLogFormat.fileHeaderSize)
  }

  deinit {
    file.release()
  }

  /// The batches of the records completed since the last call, in file
  /// order, at most `maxBatches` of them (the rest come with the next call).
  /// - Throws: `FileSinkError` for a wrong header, damage before the end of
  ///   the file, an undecodable batch, or a file that shrank below `offset`.
  public func readAvailable(maxBatches: Int = .max) throws(FileSinkError) -> [DeltaBatch] {
    let size = try file.size()
    var scanner = DeltaLogScanner(file: file, maxRecordBytes: maxRecordBytes, fileSize: size)
    if !headerChecked {
      guard size >= Int64(DeltaLogFormat.fileHeaderSize) else {
        pendingTail = size == 0 ? nil : "partial file header (\(size) bytes)"
        return []
      }
      try scanner.checkHeader()
      headerChecked = true
    }
    guard size >= offset else { throw .fileShrank(path: path, readUpTo: offset, size: size) }
    var batches: [DeltaBatch] = []
    pendingTail = nil
    while batches.count < maxBatches {
      switch try scanner.step(at: offset) {
      case .record(let payload, let next):
        let batch: DeltaBatch
        do {
          batch = try DeltaCodec.decodeBatch(Array(payload))
        } catch {
          // Hand out the good batches first; the next call throws here again.
          if !batches.isEmpty { return batches }
          throw .undecodableRecord(path: path, offset: offset, error: error)
        }
        batches.append(batch)
        offset = next
      case .end:
        return batches
      case .incomplete(let reason):
        pendingTail = "\(reason) at offset \(offset)"
        return batches
      case .corrupt(let reason):
        if !batches.isEmpty { return batches }
        throw .corruptRecord(path: path, offset: offset, reason: reason)
      }
    }
    return batches
  }
}
