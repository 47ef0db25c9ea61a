import BitTorrent
import DeltaModel

/// The binary snapshot format, version 2. All integers little-endian;
/// identifiers (user id, info hash, peer id, IP) in their network byte order.
///
/// ```
/// header (64 bytes)
///   0  magic "PTSNAP\r\n" (8)     the CR LF catches text-mode mangling
///   8  format version u32 = 2 (version 1 files are read too)
///  12  header length u32 = 64
///  16  instance u64
///  24  next sequence u64
///  32  created at, ms since the Unix epoch, i64
///  40  entry count u64
///  48  pending delta count u64
///  56  body length in bytes u64
/// body
///   entries, 77 bytes each: user id 16, info hash 20, peer id 20,
///     uploaded u64, downloaded u64, last seen u32, flags u8 (bit 0 =
///     seeding, bit 1 = snatch spent; files from before bit 1 existed read
///     as "not spent", so the version stayed 1)
///   pending deltas, 84 bytes + optional fields each: user id 16,
///     info hash 20, uploaded i64, downloaded i64, event u8, reported at i64,
///     seeding u8, interval u32, reset u8, instance u64, sequence u64,
///     optional-field bits u8 (1 = IP, 2 = IP is v6, 4 = peer id,
///     8 = credit factors), then IP (4 or 16), peer id (20) and factors
///     (upload u32, download u32 percent) when present. Version 2 added
///     bit 8; a version 1 reader would misread it, hence the new version.
/// trailer
///   CRC-32 (IEEE) of header and body, u32
/// ```
enum SnapshotCodec {
  static let magic: [UInt8] = Array("PTSNAP\r\n".utf8)
  static let version: UInt32 = 2
  static let readableVersions: ClosedRange<UInt32> = 1...2
  static let headerLength = 64
  static let trailerLength = 4
  static let entryLength = 77
  static let deltaFixedLength = 84

  /// Bytes one pending delta takes.
  static func encodedLength(of delta: Delta) -> Int {
    var length = deltaFixedLength
    switch delta.clientIP {
    case .v4: length += 4
    case .v6: length += 16
    case nil: break
    }
    if delta.peerID != nil { length += 20 }
    if !delta.factors.isUnit { length += 8 }
    return length
  }

  static func header(for snapshot: StatsSnapshot, bodyLength: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(headerLength)
    bytes.append(contentsOf: magic)
    bytes.appendLittleEndian(version)
    bytes.appendLittleEndian(UInt32(headerLength))
    bytes.appendLittleEndian(snapshot.instance)
    bytes.appendLittleEndian(snapshot.nextSequence)
    bytes.appendLittleEndian(snapshot.createdAtMilliseconds)
    bytes.appendLittleEndian(UInt64(snapshot.entries.count))
    bytes.appendLittleEndian(UInt64(snapshot.pendingDeltas.count))
    bytes.appendLittleEndian(UInt64(bodyLength))
    return bytes
  }

  static func encode(_ entry: StatsEntry, into bytes: inout [UInt8]) {
    bytes.appendUserID(entry.userID)
    entry.infoHash.raw.append(to: &bytes)
    entry.peerID.raw.append(to: &bytes)
    bytes.appendLittleEndian(entry.uploaded)
    bytes.appendLittleEndian(entry.downloaded)
    bytes.appendLittleEndian(entry.lastSeen)
    bytes.append(entry.flags.rawValue)
  }

  static func encode(_ delta: Delta, into bytes: inout [UInt8]) {
    bytes.appendUserID(delta.userID)
    delta.infoHash.raw.append(to: &bytes)
    bytes.appendLittleEndian(delta.uploaded)
    bytes.appendLittleEndian(delta.downloaded)
    bytes.append(delta.event.rawValue)
    bytes.appendLittleEndian(delta.reportedAtMilliseconds)
    bytes.append(delta.seeding ? 1 : 0)
    bytes.appendLittleEndian(delta.intervalSeconds)
    bytes.append(delta.reset ? 1 : 0)
    bytes.appendLittleEndian(delta.origin.instance)
    bytes.appendLittleEndian(delta.origin.sequence)
    var optional: UInt8 = 0
    if let address = delta.clientIP { optional |= address.isIPv6 ? 3 : 1 }
    if delta.peerID != nil { optional |= 4 }
    if !delta.factors.isUnit { optional |= 8 }
    bytes.append(optional)
    delta.clientIP?.append(to: &bytes)
    delta.peerID?.raw.append(to: &bytes)
    if !delta.factors.isUnit {
      bytes.appendLittleEndian(delta.factors.uploadPercent)
      bytes.appendLittleEndian(delta.factors.downloadPercent)
    }
  }

  /// Checks and decodes a whole snapshot file.
  static func decode(_ file: [UInt8], location: String) throws(SnapshotError) -> StatsSnapshot {
    func failure(_ kind: SnapshotError.Kind) -> SnapshotError {
      SnapshotError(location: location, kind: kind)
    }
    let minimum = headerLength + trailerLength
    guard file.count >= magic.count else {
      throw failure(.truncated(expectedBytes: minimum, actualBytes: file.count))
    }
    guard file.starts(with: magic) else { throw failure(.badMagic) }
    guard file.count >= minimum else {
      throw failure(.truncated(expectedBytes: minimum, actualBytes: file.count))
    }

    // `withUnsafeBytes` rethrows untyped errors; carry ours in a Result.
    let result = file.withUnsafeBytes { raw -> Result<StatsSnapshot, SnapshotError> in
      Result { () throws(SnapshotError) -> StatsSnapshot in
        try decodeChecked(raw, fileCount: file.count, location: location)
      }
    }
    return try result.get()
  }

  /// Decodes a file whose first bytes are the magic and which is at least
  /// header plus trailer long.
  private static func decodeChecked(_ raw: UnsafeRawBufferPointer, fileCount: Int, location: String)
    throws(SnapshotError) -> StatsSnapshot
  {
    func failure(_ kind: SnapshotError.Kind) -> SnapshotError {
      SnapshotError(location: location, kind: kind)
    }
    let minimum = headerLength + trailerLength
    var header = ByteReader(raw, end: headerLength)
    header.offset = magic.count
    let version: UInt32 = header.read()
    guard Self.readableVersions.contains(version) else {
      throw failure(.unsupportedVersion(version))
    }
    let declaredHeaderLength: UInt32 = header.read()
    guard declaredHeaderLength == UInt32(headerLength) else {
      throw failure(.corrupt("header length \(declaredHeaderLength), expected \(headerLength)"))
    }
    let instance: UInt64 = header.read()
    let nextSequence: UInt64 = header.read()
    let createdAt: Int64 = header.read()
    let entryCount: UInt64 = header.read()
    let pendingCount: UInt64 = header.read()
    let bodyLength: UInt64 = header.read()

    guard bodyLength <= UInt64(Int.max - minimum) else {
      throw failure(.corrupt("body length \(bodyLength) is impossible"))
    }
    let expected = minimum + Int(bodyLength)
    guard fileCount >= expected else {
      throw failure(.truncated(expectedBytes: expected, actualBytes: fileCount))
    }
    guard fileCount == expected else {
      throw failure(.corrupt("\(fileCount - expected) unexpected bytes after the checksum"))
    }
    var checksum = CRC32()
    checksum.update(UnsafeRawBufferPointer(rebasing: raw[0..<(expected - trailerLength)]))
    var trailer = ByteReader(raw, end: expected)
    trailer.offset = expected - trailerLength
    let stored: UInt32 = trailer.read()
    guard stored == checksum.value else {
      throw failure(.checksumMismatch(stored: stored, computed: checksum.value))
    }

    let bodyEnd = expected - trailerLength
    guard entryCount <= UInt64(bodyLength) / UInt64(entryLength) else {
      throw failure(.corrupt("\(entryCount) entries cannot fit in a \(bodyLength)-byte body"))
    }
    var body = ByteReader(raw, end: bodyEnd)
    body.offset = headerLength
    var entries: [StatsEntry] = []
    entries.reserveCapacity(Int(entryCount))
    for _ in 0..<entryCount {
      let userID = body.readUserID()
      let infoHash = InfoHash(body.readBytes20())
      let peerID = PeerID(body.readBytes20())
      let uploaded: UInt64 = body.read()
      let downloaded: UInt64 = body.read()
      let lastSeen: UInt32 = body.read()
      let flags: UInt8 = body.read()
      entries.append(
        StatsEntry(
          userID: userID, infoHash: infoHash, peerID: peerID, uploaded: uploaded,
          downloaded: downloaded,
          lastSeen: lastSeen, flags: StatsEntry.Flags(rawValue: flags)))
    }
    guard pendingCount <= UInt64(bodyEnd - body.offset) / UInt64(deltaFixedLength) else {
      throw failure(.corrupt("\(pendingCount) pending deltas cannot fit in the body"))
    }
    var pending: [Delta] = []
    pending.reserveCapacity(Int(pendingCount))
    for index in 0..<pendingCount {
      guard body.remaining >= deltaFixedLength else {
        throw failure(.corrupt("pending delta \(index) runs past the end of the body"))
      }
      let userID = body.readUserID()
      let infoHash = InfoHash(body.readBytes20())
      let uploaded: Int64 = body.read()
      let downloaded: Int64 = body.read()
      let eventValue: UInt8 = body.read()
      let reportedAt: Int64 = body.read()
      let seeding: UInt8 = body.read()
      let interval: UInt32 = body.read()
      let reset: UInt8 = body.read()
      let originInstance: UInt64 = body.read()
      let sequence: UInt64 = body.read()
      let optional: UInt8 = body.read()
      guard let event = DeltaEvent(rawValue: eventValue) else {
        throw failure(.corrupt("pending delta \(index) has unknown event \(eventValue)"))
      }
      var clientIP: IPAddress?
      if optional & 1 != 0 {
        let length = optional & 2 != 0 ? 16 : 4
        guard body.remaining >= length else {
          throw failure(.corrupt("pending delta \(index) runs past the end of the body"))
        }
        clientIP = IPAddress(bytes: body.readBytes(length))
      }
      var peerID: PeerID?
      if optional & 4 != 0 {
        guard body.remaining >= 20 else {
          throw failure(.corrupt("pending delta \(index) runs past the end of the body"))
        }
        peerID = PeerID(body.readBytes20())
      }
      var factors = CreditFactors.unit
      if optional & 8 != 0 {
        guard body.remaining >= 8 else {
          throw failure(.corrupt("pending delta \(index) runs past the end of the body"))
        }
        let upload: UInt32 = body.read()
        let download: UInt32 = body.read()
        factors = CreditFactors(uploadPercent: upload, downloadPercent: download)
      }
      pending.append(
        Delta(
          userID: userID, infoHash: infoHash, uploaded: uploaded, downloaded: downloaded,
          event: event,
          reportedAtMilliseconds: reportedAt, seeding: seeding != 0, intervalSeconds: interval,
          reset: reset != 0, origin: DeltaOrigin(instance: originInstance, sequence: sequence),
          clientIP: clientIP, peerID: peerID, factors: factors))
    }
    guard body.remaining == 0 else {
      throw failure(.corrupt("\(body.remaining) bytes left over after the last pending delta"))
    }
    return StatsSnapshot(
      instance: instance, nextSequence: nextSequence, createdAtMilliseconds: createdAt,
      entries: entries,
      pendingDeltas: pending)
  }
}

/// Reads fixed-width fields from a buffer whose length the caller checked.
struct ByteReader {
  let raw: UnsafeRawBufferPointer
  let end: Int
  var offset = 0

  init(_ raw: UnsafeRawBufferPointer, end: Int) {
    self.raw = raw
    self.end = end
  }

  var remaining: Int { end - offset }

  mutating func read<Value: FixedWidthInteger>() -> Value {
    precondition(
      offset + MemoryLayout<Value>.size <= end, "snapshot reader overran a checked length")
    let value = raw.loadUnaligned(fromByteOffset: offset, as: Value.self)
    offset += MemoryLayout<Value>.size
    return Value(littleEndian: value)
  }

  mutating func readBytes(_ count: Int) -> UnsafeRawBufferPointer {
    precondition(offset + count <= end, "snapshot reader overran a checked length")
    defer { offset += count }
    return UnsafeRawBufferPointer(rebasing: raw[offset..<offset + count])
  }

  mutating func readBytes20() -> Bytes20 {
    Bytes20(readBytes(20))!
  }

  mutating func readUserID() -> UserID {
    precondition(offset + 16 <= end, "snapshot reader overran a checked length")
    let high = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    let low = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
    offset += 16
    return UserID(high: high, low: low)
  }
}

extension [UInt8] {
  mutating func appendLittleEndian<Value: FixedWidthInteger>(_ value: Value) {
    Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
  }

  mutating func appendUserID(_ userID: UserID) {
    Swift.withUnsafeBytes(of: userID.high.bigEndian) { append(contentsOf: $0) }
    Swift.withUnsafeBytes(of: userID.low.bigEndian) { append(contentsOf: $0) }
  }
}
