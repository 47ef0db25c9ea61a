import BitTorrent
import Foundation
import Registry
import Testing

/// The Swift registry codec against `schemas/testdata/registry_*`, which
/// Python's reference protobuf encoder wrote (tests/python/make_golden.py)
/// and tests/python/test_golden.py checks too.
@Suite struct RegistryGoldenVectorTests {
  static let directory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("schemas/testdata")

  static let vectors = [
    "registry_client_deny", "registry_global_double_upload", "registry_token",
    "registry_torrent_freeleech", "registry_torrent_hybrid", "registry_torrent_pending",
    "registry_torrent_v2_only", "registry_user_full", "registry_user_minimal",
  ]

  @Test func everyRegistryVectorIsCovered() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
      .filter { $0.hasPrefix("registry_") && $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
    #expect(names.sorted() == Self.vectors)
  }

  struct Malformed: Error { var what: String }

  static func string(_ object: [String: Any], _ field: String) throws -> String {
    guard let value = object[field] as? String else { throw Malformed(what: field) }
    return value
  }

  static func hex<T>(_ object: [String: Any], _ field: String, _ make: ([UInt8]) -> T?) throws
    -> T
  {
    guard let bytes = Hex.decode(try string(object, field)), let value = make(bytes) else {
      throw Malformed(what: field)
    }
    return value
  }

  /// An enum field: its proto3 default when absent, a failure when unknown.
  static func parsed<T>(
    _ object: [String: Any], _ field: String, default absent: T, _ make: (String) -> T?
  ) throws -> T {
    guard let text = object[field] as? String else { return absent }
    guard let value = make(text) else { throw Malformed(what: "\(field) \(text)") }
    return value
  }

  @Test(arguments: vectors)
  func vectorDecodesToDescribedChangeAndReencodesIdentically(name: String) throws {
    let data = try Data(contentsOf: Self.directory.appendingPathComponent(name + ".json"))
    guard let description = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
      throw Malformed(what: name)
    }
    let file = Self.directory.appendingPathComponent(try Self.string(description, "file"))
    let bytes = [UInt8](try Data(contentsOf: file))
    let key = try Self.hex(description, "key") { $0 }
    guard let entity = RegistryTopics().entity(ofTopic: try Self.string(description, "topic"))
    else { throw Malformed(what: "topic") }
    let expected = try Self.change(described: description)

    let decoded = try RegistryRecordCodec.decode(
      RegistryRecord(entity: entity, key: key, value: bytes))
    #expect(decoded == expected)
    let encoded = RegistryRecordCodec.encode(expected)
    #expect(encoded == RegistryRecord(entity: entity, key: key, value: bytes))
  }

  /// The change a description names.
  static func change(described description: [String: Any]) throws -> RegistryChange {
    func factors(_ object: [String: Any]) -> FactorOverrides {
      FactorOverrides(
        uploadPercent: (object["upload_factor_percent"] as? Int).map { UInt32($0) },
        downloadPercent: (object["download_factor_percent"] as? Int).map { UInt32($0) })
    }
    if let user = description["user"] as? [String: Any] {
      return .putUser(
        RegisteredUser(
          id: try Self.hex(user, "user_id", UserID.init),
          passkey: try Self.hex(user, "passkey") { Passkey(hex: Hex.encode($0)) },
          disabledReason: (user["disabled"] as? Bool ?? false)
            ? (user["disabled_reason"] as? String ?? "") : nil,
          canLeech: !(user["no_leech"] as? Bool ?? false), factors: factors(user)))
    }
    if let torrent = description["torrent"] as? [String: Any] {
      let state = try Self.parsed(torrent, "state", default: .active, TorrentState.init)
      let reason = torrent["reason"] as? String ?? ""
      let v2 =
        (torrent["v2_info_hash"] as? String ?? "").isEmpty
        ? nil : try Self.hex(torrent, "v2_info_hash", V2InfoHash.init)
      if let v2, (torrent["info_hash"] as? String ?? "").isEmpty {
        return .putTorrent(
          RegisteredTorrent(v2Only: v2, state: state, reason: reason, factors: factors(torrent)))
      }
      return .putTorrent(
        RegisteredTorrent(
          infoHash: try Self.hex(torrent, "info_hash", InfoHash.init), v2InfoHash: v2,
          state: state, reason: reason, factors: factors(torrent)))
    }
    if let token = description["token"] as? [String: Any] {
      return .putToken(
        FreeleechToken(
          userID: try Self.hex(token, "user_id", UserID.init),
          infoHash: try Self.hex(token, "info_hash", InfoHash.init), factors: factors(token)))
    }
    if let global = description["global"] as? [String: Any] {
      return .putGlobal(factors(global))
    }
    guard let rule = description["client_rule"] as? [String: Any] else {
      throw Malformed(what: "client_rule")
    }
    return .putClientRule(
      ClientRule(
        prefix: try Self.hex(rule, "peer_id_prefix", { $0 }),
        action: try Self.parsed(rule, "action", default: .allow, ClientRuleAction.init),
        reason: rule["reason"] as? String ?? ""))
  }
}
