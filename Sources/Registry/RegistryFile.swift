import BitTorrent
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A registry file is wrong: which file, which line, what.
public struct RegistryFileError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The file.
  public var path: String
  /// The 1-based line, or nil when the problem is the whole file.
  public var line: Int?
  /// What is wrong.
  public var problem: String

  /// Creates an error.
  public init(path: String, line: Int?, problem: String) {
    self.path = path
    self.line = line
    self.problem = problem
  }

  public var description: String {
    if let line {
      "registry file \(path) line \(line): \(problem)"
    } else {
      "registry file \(path): \(problem)"
    }
  }
}

/// The registry file format (the embedded default source): JSON Lines, one
/// record per line, `#` comments and blank lines ignored. The file is the
/// whole registry; a later line for the same id replaces an earlier one.
///
/// ```
/// {"type":"user","user_id":HEX32,"passkey":HEX32,"disabled":REASON,"no_leech":true,
///  "upload_factor":PCT,"download_factor":PCT}
/// {"type":"torrent","info_hash":HEX40,"v2_info_hash":HEX64,
///  "state":"active|pending|deleted","reason":TEXT,"upload_factor":PCT,"download_factor":PCT}
/// {"type":"token","user_id":HEX32,"info_hash":HEX40,"upload_factor":PCT,"download_factor":PCT}
/// {"type":"global","upload_factor":PCT,"download_factor":PCT}
/// {"type":"client","peer_id_prefix":TEXT,"action":"allow|deny","reason":TEXT}
/// ```
/// Only `type` and the ids are required; a torrent names its `info_hash`
/// (v1), its `v2_info_hash`, or both (a hybrid torrent); a v2-only torrent's
/// key, which tokens name, is its v2 hash's first 40 hex characters.
/// `disabled` present (even empty)
/// disables the user; factors are whole percentages from 0 to 100 000.
/// Unknown fields are errors (a typo must not silently drop a freeleech).
public enum RegistryFile {
  /// Largest factor accepted (1000×), to catch typos such as 20000 for 200.
  public static let maxFactorPercent: UInt32 = 100_000

  /// Reads and parses the file at `path`.
  public static func load(path: String) throws(RegistryFileError) -> RegistryContents {
    var bytes: [UInt8] = []
    do {
      let descriptor = try FileDescriptor.open(FilePath(path), .readOnly)
      defer { try? descriptor.close() }
      var buffer = [UInt8](repeating: 0, count: 1 << 20)
      while true {
        let count = try buffer.withUnsafeMutableBytes { try descriptor.read(into: $0) }
        if count == 0 { break }
        bytes += buffer[0..<count]
      }
    } catch {
      throw RegistryFileError(path: path, line: nil, problem: "cannot read the file: \(error)")
    }
    return try parse(bytes: bytes, path: path)
  }

  /// Parses the contents of a registry file.
  public static func parse(_ text: String, path: String) throws(RegistryFileError)
    -> RegistryContents
  {
    try parse(bytes: Array(text.utf8), path: path)
  }

  /// Parses the UTF-8 bytes of a registry file, line by line on the bytes
  /// (a 3-million-line file takes seconds).
  static func parse(bytes: [UInt8], path: String) throws(RegistryFileError) -> RegistryContents {
    var contents = RegistryContents()
    var number = 0
    var start = bytes.startIndex
    while start < bytes.endIndex {
      number += 1
      let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.endIndex
      var first = start
      while first < end, bytes[first] == 0x20 || bytes[first] == 0x09 || bytes[first] == 0x0D {
        first += 1
      }
      if first < end, bytes[first] != UInt8(ascii: "#") {
        do throws(RegistryRecordProblem) {
          contents.apply(try change(bytes[first..<end]))
        } catch {
          throw RegistryFileError(path: path, line: number, problem: error.description)
        }
      }
      start = end + 1
    }
    return contents
  }

  /// The text of a file holding `contents` (stable order: users,
  /// torrents, tokens, global, clients, each sorted by id).
  public static func render(_ contents: RegistryContents) -> String {
    var text = "# privtrak registry: one JSON record per line (see the README, Registry)\n"
    for change in contents.changes {
      if let line = line(for: change) { text += line + "\n" }
    }
    return text
  }

  /// Writes `contents` to `path` atomically (a temporary file renamed over it).
  public static func write(_ contents: RegistryContents, to path: String)
    throws(RegistryFileError)
  {
    let temporary = path + ".tmp"
    do {
      let descriptor = try FileDescriptor.open(
        FilePath(temporary), .writeOnly, options: [.create, .truncate],
        permissions: [.ownerReadWrite, .groupRead])
      try descriptor.closeAfter {
        _ = try descriptor.writeAll(Array(render(contents).utf8))
        guard fsync(descriptor.rawValue) == 0 else { throw Errno(rawValue: errno) }
      }
      guard rename(temporary, path) == 0 else { throw Errno(rawValue: errno) }
    } catch {
      throw RegistryFileError(path: path, line: nil, problem: "cannot write the file: \(error)")
    }
  }

  /// One line describing a change, or nil for a deletion (a file holds state).
  static func line(for change: RegistryChange) -> String? {
    var writer = JSONLineWriter()
    func factors(_ overrides: FactorOverrides) {
      if let value = overrides.uploadPercent { writer.field("upload_factor", value) }
      if let value = overrides.downloadPercent { writer.field("download_factor", value) }
    }
    switch change {
    case .putUser(let user):
      writer.field("type", "user")
      writer.field("user_id", user.id.hex)
      writer.field("passkey", user.passkey.hex)
      if let reason = user.disabledReason { writer.field("disabled", reason) }
      if !user.canLeech { writer.field("no_leech", true) }
      factors(user.factors)
    case .putTorrent(let torrent):
      writer.field("type", "torrent")
      if let v1 = torrent.v1InfoHash { writer.field("info_hash", v1.description) }
      if let v2 = torrent.v2InfoHash { writer.field("v2_info_hash", v2.description) }
      writer.field("state", torrent.state.rawValue)
      if !torrent.reason.isEmpty { writer.field("reason", torrent.reason) }
      factors(torrent.factors)
    case .putToken(let token):
      writer.field("type", "token")
      writer.field("user_id", token.userID.hex)
      writer.field("info_hash", token.infoHash.description)
      factors(token.factors)
    case .putGlobal(let overrides):
      writer.field("type", "global")
      factors(overrides)
    case .putClientRule(let rule):
      writer.field("type", "client")
      writer.field("peer_id_prefix", String(decoding: rule.prefix, as: UTF8.self))
      writer.field("action", rule.action.rawValue)
      if !rule.reason.isEmpty { writer.field("reason", rule.reason) }
    case .deleteUser, .deleteTorrent, .deleteToken, .deleteGlobal, .deleteClientRule:
      return nil
    }
    return writer.finish()
  }

  private static func change(_ line: ArraySlice<UInt8>) throws(RegistryRecordProblem)
    -> RegistryChange
  {
    var fields = RecordFields(try JSONValue.parseObject(line))
    let type = try fields.requiredString("type")
    let change: RegistryChange
    switch type {
    case "user":
      let id = try fields.userID("user_id")
      guard let passkey = Passkey(hex: try fields.requiredString("passkey")) else {
        throw RegistryRecordProblem("field passkey: expected 32 hexadecimal characters")
      }
      change = .putUser(
        RegisteredUser(
          id: id, passkey: passkey, disabledReason: try fields.optionalString("disabled"),
          canLeech: !(try fields.optionalBool("no_leech") ?? false),
          factors: try fields.factors()))
    case "torrent":
      let v1 = try fields.optionalInfoHash("info_hash")
      let v2 = try fields.optionalV2InfoHash("v2_info_hash")
      let stateText = try fields.optionalString("state") ?? "active"
      guard let state = TorrentState(rawValue: stateText) else {
        throw RegistryRecordProblem(
          "field state: expected active, pending or deleted, got '\(stateText)'")
      }
      let reason = try fields.optionalString("reason") ?? ""
      let factors = try fields.factors()
      switch (v1, v2) {
      case (let v1?, let v2):
        if let v2, v2.announceHash == v1 {
          throw RegistryRecordProblem(
            "field v2_info_hash: starts with info_hash; a v2-only torrent leaves info_hash out")
        }
        change = .putTorrent(
          RegisteredTorrent(
            infoHash: v1, v2InfoHash: v2, state: state, reason: reason, factors: factors))
      case (nil, let v2?):
        change = .putTorrent(
          RegisteredTorrent(v2Only: v2, state: state, reason: reason, factors: factors))
      case (nil, nil):
        throw RegistryRecordProblem("a torrent needs info_hash, v2_info_hash or both")
      }
    case "token":
      change = .putToken(
        FreeleechToken(
          userID: try fields.userID("user_id"), infoHash: try fields.infoHash("info_hash"),
          factors: try fields.factors()))
    case "global":
      change = .putGlobal(try fields.factors())
    case "client":
      let prefix = Array(try fields.requiredString("peer_id_prefix").utf8)
      guard (1...20).contains(prefix.count) else {
        throw RegistryRecordProblem("field peer_id_prefix: expected 1 to 20 bytes")
      }
      let actionText = try fields.optionalString("action") ?? "deny"
      guard let action = ClientRuleAction(rawValue: actionText) else {
        throw RegistryRecordProblem("field action: expected allow or deny, got '\(actionText)'")
      }
      change = .putClientRule(
        ClientRule(
          prefix: prefix, action: action, reason: try fields.optionalString("reason") ?? ""))
    default:
      throw RegistryRecordProblem(
        "field type: expected user, torrent, token, global or client, got '\(type)'")
    }
    if let unknown = fields.unread.first {
      throw RegistryRecordProblem("unknown field '\(unknown)' for type \(type)")
    }
    return change
  }
}

/// What is wrong with one record, naming the field.
struct RegistryRecordProblem: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// Typed access to one record's fields, remembering which were read.
private struct RecordFields {
  private let object: [String: JSONValue]
  private var read: Set<String> = []

  init(_ object: [String: JSONValue]) { self.object = object }

  var unread: [String] { object.keys.filter { !read.contains($0) }.sorted() }

  mutating func optionalString(_ name: String) throws(RegistryRecordProblem) -> String? {
    read.insert(name)
    switch object[name] {
    case nil, .null?: return nil
    case .string(let value)?: return value
    default: throw RegistryRecordProblem("field \(name): expected a string")
    }
  }

  mutating func requiredString(_ name: String) throws(RegistryRecordProblem) -> String {
    guard let value = try optionalString(name) else {
      throw RegistryRecordProblem("field \(name) is missing")
    }
    return value
  }

  mutating func optionalBool(_ name: String) throws(RegistryRecordProblem) -> Bool? {
    read.insert(name)
    switch object[name] {
    case nil, .null?: return nil
    case .bool(let value)?: return value
    default: throw RegistryRecordProblem("field \(name): expected true or false")
    }
  }

  mutating func percent(_ name: String) throws(RegistryRecordProblem) -> UInt32? {
    read.insert(name)
    switch object[name] {
    case nil, .null?: return nil
    case .number(let value)?:
      guard value >= 0, value <= Double(RegistryFile.maxFactorPercent), value.rounded() == value
      else {
        throw RegistryRecordProblem(
          "field \(name): expected a whole percentage from 0 to \(RegistryFile.maxFactorPercent)")
      }
      return UInt32(value)
    default:
      throw RegistryRecordProblem("field \(name): expected a number (percent)")
    }
  }

  mutating func factors() throws(RegistryRecordProblem) -> FactorOverrides {
    FactorOverrides(
      uploadPercent: try percent("upload_factor"), downloadPercent: try percent("download_factor"))
  }

  mutating func userID(_ name: String) throws(RegistryRecordProblem) -> BitTorrent.UserID {
    guard let id = BitTorrent.UserID(hex: try requiredString(name)) else {
      throw RegistryRecordProblem("field \(name): expected 32 hexadecimal characters")
    }
    return id
  }

  mutating func optionalInfoHash(_ name: String) throws(RegistryRecordProblem) -> InfoHash? {
    guard let text = try optionalString(name) else { return nil }
    guard let hash = InfoHash(hex: text) else {
      throw RegistryRecordProblem("field \(name): expected 40 hexadecimal characters")
    }
    return hash
  }

  mutating func optionalV2InfoHash(_ name: String) throws(RegistryRecordProblem) -> V2InfoHash? {
    guard let text = try optionalString(name) else { return nil }
    guard let hash = V2InfoHash(hex: text) else {
      throw RegistryRecordProblem("field \(name): expected 64 hexadecimal characters")
    }
    return hash
  }

  mutating func infoHash(_ name: String) throws(RegistryRecordProblem) -> InfoHash {
    guard let hash = InfoHash(hex: try requiredString(name)) else {
      throw RegistryRecordProblem("field \(name): expected 40 hexadecimal characters")
    }
    return hash
  }
}
