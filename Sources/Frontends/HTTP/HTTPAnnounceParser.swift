import BitTorrent
import Tracker

/// Turns an HTTP request target (`/<passkey>/announce?info_hash=...`) into a
/// validated ``AnnounceRequest`` or ``ScrapeRequest``. Pure and total: any
/// input yields an outcome, never a crash, so it can be unit-tested and fuzzed
/// apart from the NIO handler.
///
/// Leniency, chosen to match what real clients send:
/// - a parameter given twice: the first occurrence wins (scrape collects every `info_hash`);
/// - `+` in a value decodes to a space (form encoding);
/// - `compact` absent means compact (BEP 23 trackers may prefer it); `compact=0` asks for a list;
/// - `no_peer_id` is true for any non-empty value other than `0`;
/// - `key`: up to 8 hex digits (libtorrent, Transmission, µTorrent), else up to 10
///   decimal digits fitting 32 bits, else a 32-bit FNV-1a hash of the raw text — it
///   only has to compare equal between announces of one client;
/// - `numwant` empty means default; out-of-range values saturate (the tracker clamps);
/// - `ip`/`ipv4`/`ipv6` are ignored unless ``acceptClientSuppliedIP`` is set.
public struct HTTPAnnounceParser: Sendable {
  /// Whether `ip`, `ipv4` or `ipv6` (first present, in that order) replace
  /// the address the request came from.
  public var acceptClientSuppliedIP: Bool

  /// Creates a parser.
  public init(acceptClientSuppliedIP: Bool = false) {
    self.acceptClientSuppliedIP = acceptClientSuppliedIP
  }

  /// What a request target asks for.
  public enum Outcome: Sendable {
    /// A valid announce.
    case announce(AnnounceRequest)
    /// A valid scrape (it may still list no info hash; the tracker rejects that).
    case scrape(ScrapeRequest)
    /// The path is not a tracker path (answered with 404).
    case notFound
    /// The path is known but a parameter is malformed; `reason` tells which.
    case failure(TrackerFailure)
  }

  /// Parses `target` (origin-form: path plus optional query) for a client at `clientAddress`.
  public func parse(target: String, clientAddress: IPAddress) -> Outcome {
    var target = target
    target.makeContiguousUTF8()
    return target.utf8.withContiguousStorageIfAvailable { bytes in
      parse(bytes, target: target, clientAddress: clientAddress)
    } ?? .notFound
  }

  private func parse(_ bytes: UnsafeBufferPointer<UInt8>, target: String, clientAddress: IPAddress)
    -> Outcome
  {
    var pathEnd = 0
    while pathEnd < bytes.count, bytes[pathEnd] != UInt8(ascii: "?"),
      bytes[pathEnd] != UInt8(ascii: "#")
    {
      pathEnd += 1
    }
    var queryEnd = pathEnd
    while queryEnd < bytes.count, bytes[queryEnd] != UInt8(ascii: "#") { queryEnd += 1 }
    let queryStart = pathEnd < queryEnd ? pathEnd + 1 : pathEnd
    let pathEndIndex = target.utf8.index(target.utf8.startIndex, offsetBy: pathEnd)
    guard let route = TrackerPath.route(target[..<pathEndIndex]) else { return .notFound }
    let query = queryStart..<queryEnd
    switch route.action {
    case .announce:
      do {
        return .announce(
          try parseAnnounce(
            bytes, query: query, clientAddress: clientAddress, passkey: route.passkey))
      } catch {
        return .failure(error)
      }
    case .scrape:
      do {
        let infoHashes = try parseScrape(bytes, query: query)
        return .scrape(
          ScrapeRequest(
            infoHashes: infoHashes, passkey: route.passkey, clientAddress: clientAddress,
            transport: .http))
      } catch {
        return .failure(error)
      }
    }
  }

  /// Where each known parameter's value lies; nil when absent.
  private struct AnnounceFields {
    var infoHash: Range<Int>?
    var peerID: Range<Int>?
    var port: Range<Int>?
    var uploaded: Range<Int>?
    var downloaded: Range<Int>?
    var left: Range<Int>?
    var event: Range<Int>?
    var compact: Range<Int>?
    var numWant: Range<Int>?
    var noPeerID: Range<Int>?
    var key: Range<Int>?
    var ip: Range<Int>?
    var ipv4: Range<Int>?
    var ipv6: Range<Int>?
  }

  private func parseAnnounce(
    _ bytes: UnsafeBufferPointer<UInt8>, query: Range<Int>, clientAddress: IPAddress,
    passkey: Substring?
  ) throws(TrackerFailure) -> AnnounceRequest {
    var fields = AnnounceFields()
    Self.forEachParameter(bytes, query) { name, value in
      switch name.count {
      case 2:
        if QueryBytes.equals(bytes, name, "ip") { set(&fields.ip, value) }
      case 3:
        if QueryBytes.equals(bytes, name, "key") { set(&fields.key, value) }
      case 4:
        if QueryBytes.equals(bytes, name, "port") {
          set(&fields.port, value)
        } else if QueryBytes.equals(bytes, name, "left") {
          set(&fields.left, value)
        } else if QueryBytes.equals(bytes, name, "ipv4") {
          set(&fields.ipv4, value)
        } else if QueryBytes.equals(bytes, name, "ipv6") {
          set(&fields.ipv6, value)
        }
      case 5:
        if QueryBytes.equals(bytes, name, "event") { set(&fields.event, value) }
      case 7:
        if QueryBytes.equals(bytes, name, "peer_id") {
          set(&fields.peerID, value)
        } else if QueryBytes.equals(bytes, name, "compact") {
          set(&fields.compact, value)
        } else if QueryBytes.equals(bytes, name, "numwant") {
          set(&fields.numWant, value)
        }
      case 8:
        if QueryBytes.equals(bytes, name, "uploaded") {
          set(&fields.uploaded, value)
        } else if QueryBytes.equals(bytes, name, "num_want") {
          set(&fields.numWant, value)
        }
      case 9:
        if QueryBytes.equals(bytes, name, "info_hash") { set(&fields.infoHash, value) }
      case 10:
        if QueryBytes.equals(bytes, name, "downloaded") {
          set(&fields.downloaded, value)
        } else if QueryBytes.equals(bytes, name, "no_peer_id") {
          set(&fields.noPeerID, value)
        }
      default:
        break
      }
    }

    guard let infoHashRange = fields.infoHash else { throw TrackerFailure("missing info_hash") }
    let infoHash = InfoHash(try Self.bytes20(bytes, infoHashRange, name: "info_hash"))
    guard let peerIDRange = fields.peerID else { throw TrackerFailure("missing peer_id") }
    let peerID = PeerID(try Self.bytes20(bytes, peerIDRange, name: "peer_id"))
    let port = try Self.port(bytes, fields.port)
    let uploaded = try Self.counter(bytes, fields.uploaded, name: "uploaded")
    let downloaded = try Self.counter(bytes, fields.downloaded, name: "downloaded")
    let left = try Self.counter(bytes, fields.left, name: "left")
    let event = try Self.event(bytes, fields.event)
    var numWant = -1
    if let range = fields.numWant, !range.isEmpty {
      guard let value = QueryBytes.saturatingInteger(bytes, range) else {
        throw TrackerFailure("invalid numwant: not an integer")
      }
      numWant = value
    }
    var address = clientAddress
    if acceptClientSuppliedIP {
      if let range = fields.ip {
        address = try Self.address(bytes, range, name: "ip")
      } else if let range = fields.ipv4 {
        address = try Self.address(bytes, range, name: "ipv4")
      } else if let range = fields.ipv6 {
        address = try Self.address(bytes, range, name: "ipv6")
      }
    }
    return AnnounceRequest(
      infoHash: infoHash, peerID: peerID, endpoint: PeerEndpoint(address: address, port: port),
      uploaded: uploaded, downloaded: downloaded, left: left, event: event, numWant: numWant,
      compact: fields.compact.map { !QueryBytes.equals(bytes, $0, "0") } ?? true,
      noPeerID: fields.noPeerID.map { !$0.isEmpty && !QueryBytes.equals(bytes, $0, "0") } ?? false,
      key: fields.key.flatMap { Self.key(bytes, $0) }, passkey: passkey, transport: .http)
  }

  private func parseScrape(_ bytes: UnsafeBufferPointer<UInt8>, query: Range<Int>)
    throws(TrackerFailure)
    -> [InfoHash]
  {
    var infoHashes: [InfoHash] = []
    var failure: TrackerFailure?
    Self.forEachParameter(bytes, query) { name, value in
      guard failure == nil, QueryBytes.equals(bytes, name, "info_hash") else { return }
      do throws(TrackerFailure) {
        infoHashes.append(InfoHash(try Self.bytes20(bytes, value, name: "info_hash")))
      } catch {
        failure = error
      }
    }
    if let failure { throw failure }
    return infoHashes
  }

  /// First occurrence wins.
  @inline(__always)
  private func set(_ field: inout Range<Int>?, _ value: Range<Int>) {
    if field == nil { field = value }
  }

  /// Calls `body(name, value)` for each `name=value` between `&`s; a
  /// parameter without `=` has an empty value.
  private static func forEachParameter(
    _ bytes: UnsafeBufferPointer<UInt8>, _ query: Range<Int>,
    _ body: (Range<Int>, Range<Int>) -> Void
  ) {
    var start = query.lowerBound
    while start < query.upperBound {
      var end = start
      var equals: Int?
      while end < query.upperBound, bytes[end] != UInt8(ascii: "&") {
        if equals == nil, bytes[end] == UInt8(ascii: "=") { equals = end }
        end += 1
      }
      if end > start {
        if let equals {
          body(start..<equals, (equals + 1)..<end)
        } else {
          body(start..<end, end..<end)
        }
      }
      start = end + 1
    }
  }

  /// Percent-decodes exactly 20 bytes without touching the heap.
  private static func bytes20(
    _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, name: String
  )
    throws(TrackerFailure) -> Bytes20
  {
    // 20 bytes take 20…60 characters; anything else cannot be right.
    guard range.count >= 20, range.count <= 60 else {
      throw TrackerFailure("invalid \(name): must be 20 bytes")
    }
    let decoded: Bytes20?? = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { output in
      switch QueryBytes.percentDecode(bytes, range, into: output) {
      case .decoded(let count):
        return count == 20 ? Bytes20(UnsafeBufferPointer(output)) : .some(nil)
      case .tooLong: return .some(nil)
      case .badEscape: return nil
      }
    }
    switch decoded {
    case .some(.some(let value)): return value
    case .some(.none): throw TrackerFailure("invalid \(name): must be 20 bytes")
    case .none: throw TrackerFailure("invalid \(name): bad percent-encoding")
    }
  }

  private static func port(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>?)
    throws(TrackerFailure)
    -> UInt16
  {
    guard let range else { throw TrackerFailure("missing port") }
    switch QueryBytes.unsigned(bytes, range, limit: UInt64(UInt16.max)) {
    case .value(0): throw TrackerFailure("invalid port: 0")
    case .value(let value): return UInt16(value)
    case .tooLarge: throw TrackerFailure("invalid port: out of range")
    case .notANumber: throw TrackerFailure("invalid port: not a number")
    }
  }

  /// Byte counters are capped at `Int64.max` so both frontends (UDP sends
  /// signed 64-bit) and the signed deltas downstream agree on the range.
  private static func counter(
    _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>?, name: StaticString
  )
    throws(TrackerFailure) -> UInt64
  {
    guard let range else { throw TrackerFailure("missing \(name)") }
    switch QueryBytes.unsigned(bytes, range, limit: UInt64(Int64.max)) {
    case .value(let value): return value
    case .tooLarge: throw TrackerFailure("invalid \(name): too large")
    case .notANumber: throw TrackerFailure("invalid \(name): not a non-negative integer")
    }
  }

  private static func event(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>?)
    throws(TrackerFailure)
    -> AnnounceEvent
  {
    guard let range, !range.isEmpty else { return .none }
    let result: Result<AnnounceEvent, TrackerFailure> = withUnsafeTemporaryAllocation(
      of: UInt8.self, capacity: 32
    ) { output in
      let decodedCount: Int
      switch QueryBytes.percentDecode(bytes, range, into: output) {
      case .decoded(let count): decodedCount = count
      case .tooLong: decodedCount = output.count
      case .badEscape: return .failure(TrackerFailure("invalid event: bad percent-encoding"))
      }
      let decoded = UnsafeBufferPointer(rebasing: output[..<decodedCount])
      switch decoded.count {
      case 5 where decoded.elementsEqual("empty".utf8): return .success(.none)
      case 7 where decoded.elementsEqual("started".utf8): return .success(.started)
      case 7 where decoded.elementsEqual("stopped".utf8): return .success(.stopped)
      case 9 where decoded.elementsEqual("completed".utf8): return .success(.completed)
      // BEP 21: a partial seed pausing; announced as a regular update.
      case 6 where decoded.elementsEqual("paused".utf8): return .success(.none)
      default: return .failure(TrackerFailure("unknown event: \(QueryBytes.echo(decoded))"))
      }
    }
    return try result.get()
  }

  private static func key(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> UInt32? {
    guard !range.isEmpty else { return nil }
    if range.count <= 8, range.allSatisfy({ QueryBytes.nibble(bytes[$0]) != nil }) {
      return range.reduce(0) { $0 << 4 | UInt32(QueryBytes.nibble(bytes[$1])!) }
    }
    if range.count <= 10,
      case .value(let value) = QueryBytes.unsigned(bytes, range, limit: UInt64(UInt32.max))
    {
      return UInt32(value)
    }
    var hash: UInt32 = 0x811c_9dc5
    for index in range {
      hash = (hash ^ UInt32(bytes[index])) &* 0x0100_0193
    }
    return hash
  }

  private static func address(
    _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, name: StaticString
  )
    throws(TrackerFailure) -> IPAddress
  {
    let parsed: IPAddress? = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { output in
      guard case .decoded(let count) = QueryBytes.percentDecode(bytes, range, into: output) else {
        return nil
      }
      return IPAddress(
        String(decoding: UnsafeBufferPointer(rebasing: output[..<count]), as: UTF8.self))
    }
    guard let parsed else { throw TrackerFailure("invalid \(name): not an IP address") }
    return parsed
  }
}
