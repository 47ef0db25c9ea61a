/// Walks the records of a delta log through a read-ahead window and
/// classifies what it finds at each offset. Shared by the sink (validation
/// and torn-tail repair on open) and the reader.
struct DeltaLogScanner {
  /// What is at a record offset.
  enum Step {
    /// A complete record with a matching checksum; the next one starts at `next`.
    case record(payload: ArraySlice<UInt8>, next: Int64)
    /// The end of the file, exactly at a record boundary.
    case end
    /// A record that is cut short or fails its checksum at the very end
    /// of the file: a torn write, or (for a reader) a write in progress.
    case incomplete(reason: String)
    /// Damage that a torn append cannot explain.
    case corrupt(reason: String)
  }

  let file: OpenFile
  let maxRecordBytes: Int
  /// The file size this scan works with (taken once; later growth is seen by the next scan).
  let fileSize: Int64

  private var window: [UInt8] = []
  private var windowStart: Int64 = 0
  private static let readAhead = 1 << 20

  init(file: OpenFile, maxRecordBytes: Int, fileSize: Int64) {
    self.file = file
    self.maxRecordBytes = maxRecordBytes
    self.fileSize = fileSize
  }

  /// Checks the file header; the file must hold at least `fileHeaderSize` bytes.
  mutating func checkHeader() throws(FileSinkError) {
    let header = try bytes(at: 0, count: DeltaLogFormat.fileHeaderSize)
    guard header.prefix(4).elementsEqual(DeltaLogFormat.magic) else {
      throw .notADeltaLog(path: file.path)
    }
    let version = DeltaLogFormat.readLittleEndian(header, at: header.startIndex + 4)
    guard version == DeltaLogFormat.version else {
      throw .unsupportedVersion(path: file.path, version: version)
    }
  }

  /// Classifies what starts at `offset` (a record boundary).
  mutating func step(at offset: Int64) throws(FileSinkError) -> Step {
    let remaining = fileSize - offset
    if remaining == 0 { return .end }
    let headerSize = Int64(DeltaLogFormat.recordHeaderSize)
    if remaining < headerSize {
      return .incomplete(reason: "partial record header (\(remaining) of \(headerSize) bytes)")
    }
    let header = try bytes(at: offset, count: DeltaLogFormat.recordHeaderSize)
    let length = Int(DeltaLogFormat.readLittleEndian(header, at: header.startIndex))
    let storedChecksum = DeltaLogFormat.readLittleEndian(header, at: header.startIndex + 4)
    guard length >= 1, length <= maxRecordBytes else {
      // A torn append never writes a wrong length, but a crash can
      // leave a zero-filled tail (the size grew before the data landed).
      if try isZeroFilled(from: offset) {
        return .incomplete(reason: "zero-filled tail (\(remaining) bytes)")
      }
      return .corrupt(reason: "invalid record length \(length) (limit \(maxRecordBytes))")
    }
    let end = offset + headerSize + Int64(length)
    if end > fileSize {
      return .incomplete(
        reason: "partial record (\(remaining - headerSize) of \(length) payload bytes)")
    }
    let payload = try bytes(at: offset + headerSize, count: length)
    let checksum = CRC32C.checksum(payload)
    guard checksum == storedChecksum else {
      let reason = "checksum mismatch (stored \(hex(storedChecksum)), computed \(hex(checksum)))"
      return end == fileSize
        ? .incomplete(reason: reason + " in the last record") : .corrupt(reason: reason)
    }
    return .record(payload: payload, next: end)
  }

  /// The first offset after `offset` where a complete, checksum-valid
  /// record starts, if any. A torn tail is followed by nothing valid; a
  /// damaged length field in the middle of the file is.
  mutating func firstValidRecord(after offset: Int64) throws(FileSinkError) -> Int64? {
    let headerSize = Int64(DeltaLogFormat.recordHeaderSize)
    var candidate = offset + 1
    while candidate + headerSize < fileSize {
      let header = try bytes(at: candidate, count: DeltaLogFormat.recordHeaderSize)
      let length = Int64(DeltaLogFormat.readLittleEndian(header, at: header.startIndex))
      if length >= 1, length <= maxRecordBytes, candidate + headerSize + length <= fileSize {
        let storedChecksum = DeltaLogFormat.readLittleEndian(header, at: header.startIndex + 4)
        let payload = try bytes(at: candidate + headerSize, count: Int(length))
        if CRC32C.checksum(payload) == storedChecksum { return candidate }
      }
      candidate += 1
    }
    return nil
  }

  private mutating func isZeroFilled(from offset: Int64) throws(FileSinkError) -> Bool {
    var position = offset
    while position < fileSize {
      let count = Int(min(Int64(Self.readAhead), fileSize - position))
      guard try bytes(at: position, count: count).allSatisfy({ $0 == 0 }) else { return false }
      position += Int64(count)
    }
    return true
  }

  /// `count` bytes at `offset` (which must lie within `fileSize`), served
  /// from the window, refilled with read-ahead when needed.
  private mutating func bytes(at offset: Int64, count: Int) throws(FileSinkError) -> ArraySlice<
    UInt8
  > {
    if offset < windowStart || offset + Int64(count) > windowStart + Int64(window.count) {
      let wanted = Int(min(Int64(max(count, Self.readAhead)), fileSize - offset))
      window = try file.read(count: wanted, at: offset)
      windowStart = offset
      guard window.count >= count else {
        throw .fileShrank(
          path: file.path, readUpTo: offset + Int64(count), size: offset + Int64(window.count))
      }
    }
    let start = Int(offset - windowStart)
    return window[start..<start + count]
  }

  private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
  }
}
