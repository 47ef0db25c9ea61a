import BitTorrent
import DeltaWire
import SwiftProtobuf

#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// A registry record that cannot be applied: which field and why.
public struct RegistryRecordError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The field (`key` for the record key, `value` when the value does not decode).
  public var field: String
  /// What is wrong.
  public var problem: String

  /// Creates an error.
  public init(field: String, problem: String) {
    self.field = field
    self.problem = problem
  }

  public var description: String { "field \(field): \(problem)" }
}

/// One registry record as it travels on its topic.
public struct RegistryRecord: Sendable, Hashable {
  /// Which topic.
  public var entity: RegistryEntity
  /// The record key (the entity's id).
  public var key: [UInt8]
  /// The Protobuf value; nil deletes.
  public var value: [UInt8]?

  /// Creates a record.
  public init(entity: RegistryEntity, key: [UInt8], value: [UInt8]?) {
    self.entity = entity
    self.key = key
    self.value = value
  }
}

/// Converts between registry changes and topic records
/// (`schemas/privtrak/v1/registry.proto`). The key is the truth for
/// identity: a value whose id disagrees with its key is rejected. A null
/// or empty value deletes (no valid user, torrent, token or client value
/// is empty, and an empty global value sets no factor, which is what a
/// deletion means there).
public enum RegistryRecordCodec {
  /// The key of the single site-wide factors record.
  public static let globalKey = Array("global".utf8)

  /// The change a record describes.
  public static func decode(_ record: RegistryRecord) throws(RegistryRecordError) -> RegistryChange
  {
    let key = record.key
    let value = record.value ?? []
    switch record.entity {
    case .users:
      guard let id = UserID(key) else { throw lengthError("key", "16", key.count) }
      if value.isEmpty { return .deleteUser(id) }
      let message: Privtrak_V1_RegistryUser = try decodeMessage(value)
      try requireSame(message.userID, key, field: "user_id")
      guard let passkey = Passkey(hex: message.passkey) else {
        throw RegistryRecordError(
          field: "passkey",
          problem: "expected 32 hexadecimal characters, got \(message.passkey.utf8.count) bytes")
      }
      return .putUser(
        RegisteredUser(
          id: id, passkey: passkey, disabledReason: message.disabled ? message.disabledReason : nil,
          canLeech: !message.noLeech,
          factors: FactorOverrides(
            uploadPercent: message.hasUploadFactorPercent ? message.uploadFactorPercent : nil,
            downloadPercent: message.hasDownloadFactorPercent ? message.downloadFactorPercent : nil
          )))
    case .torrents:
      guard let hash = InfoHash(key) else { throw lengthError("key", "20", key.count) }
      if value.isEmpty { return .deleteTorrent(hash) }
      let message: Privtrak_V1_RegistryTorrent = try decodeMessage(value)
      try requireSame(message.infoHash, key, field: "info_hash")
      let v2InfoHash = try decodeV2InfoHash(
        message.v2InfoHash, key: hash, v1Given: !message.infoHash.isEmpty)
      let state: TorrentState
      switch message.state {
      case .active: state = .active
      case .pending: state = .pending
      case .deleted: state = .deleted
      case .UNRECOGNIZED(let raw):
        throw RegistryRecordError(field: "state", problem: "unknown value \(raw)")
      }
      return .putTorrent(
        RegisteredTorrent(
          infoHash: hash, v2InfoHash: v2InfoHash, state: state, reason: message.reason,
          factors: FactorOverrides(
            uploadPercent: message.hasUploadFactorPercent ? message.uploadFactorPercent : nil,
            downloadPercent: message.hasDownloadFactorPercent ? message.downloadFactorPercent : nil
          )))
    case .tokens:
      guard key.count == 36, let user = UserID(key[0..<16]), let hash = InfoHash(key[16..<36])
      else { throw lengthError("key", "36 (user id, then info hash)", key.count) }
      if value.isEmpty { return .deleteToken(user, hash) }
      let message: Privtrak_V1_RegistryToken = try decodeMessage(value)
      try requireSame(message.userID, Array(key[0..<16]), field: "user_id")
      try requireSame(message.infoHash, Array(key[16..<36]), field: "info_hash")
      return .putToken(
        FreeleechToken(
          userID: user, infoHash: hash,
          factors: FactorOverrides(
            uploadPercent: message.hasUploadFactorPercent ? message.uploadFactorPercent : nil,
            downloadPercent: message.hasDownloadFactorPercent ? message.downloadFactorPercent : nil
          )))
    case .global:
      guard key == globalKey else {
        throw RegistryRecordError(field: "key", problem: "expected the bytes \"global\"")
      }
      if value.isEmpty { return .deleteGlobal }
      let message: Privtrak_V1_RegistryGlobal = try decodeMessage(value)
      return .putGlobal(
        FactorOverrides(
          uploadPercent: message.hasUploadFactorPercent ? message.uploadFactorPercent : nil,
          downloadPercent: message.hasDownloadFactorPercent ? message.downloadFactorPercent : nil))
    case .clients:
      guard (1...20).contains(key.count) else { throw lengthError("key", "1 to 20", key.count) }
      if value.isEmpty { return .deleteClientRule(prefix: key) }
      let message: Privtrak_V1_RegistryClientRule = try decodeMessage(value)
      try requireSame(message.peerIDPrefix, key, field: "peer_id_prefix")
      let action: ClientRuleAction
      switch message.action {
      case .allow: action = .allow
      case .deny: action = .deny
      case .UNRECOGNIZED(let raw):
        throw RegistryRecordError(field: "action", problem: "unknown value \(raw)")
      }
      return .putClientRule(ClientRule(prefix: key, action: action, reason: message.reason))
    }
  }

  /// The record that publishes a change.
  public static func encode(_ change: RegistryChange) -> RegistryRecord {
    switch change {
    case .putUser(let user):
      var message = Privtrak_V1_RegistryUser()
      message.userID = Data(user.id.bytes)
      message.passkey = user.passkey.hex
      if let reason = user.disabledReason {
        message.disabled = true
        message.disabledReason = reason
      }
      message.noLeech = !user.canLeech
      if let value = user.factors.uploadPercent { message.uploadFactorPercent = value }
      if let value = user.factors.downloadPercent { message.downloadFactorPercent = value }
      return RegistryRecord(entity: .users, key: user.id.bytes, value: serialize(message))
    case .deleteUser(let id):
      return RegistryRecord(entity: .users, key: id.bytes, value: nil)
    case .putTorrent(let torrent):
      var message = Privtrak_V1_RegistryTorrent()
      // A v2-only torrent's key is not a v1 hash: only its v2 hash goes in.
      if let v1 = torrent.v1InfoHash { message.infoHash = Data(v1.bytes) }
      if let v2 = torrent.v2InfoHash { message.v2InfoHash = Data(v2.bytes) }
      message.state =
        switch torrent.state {
        case .active: .active
        case .pending: .pending
        case .deleted: .deleted
        }
      message.reason = torrent.reason
      if let value = torrent.factors.uploadPercent { message.uploadFactorPercent = value }
      if let value = torrent.factors.downloadPercent { message.downloadFactorPercent = value }
      return RegistryRecord(
        entity: .torrents, key: torrent.infoHash.bytes, value: serialize(message))
    case .deleteTorrent(let hash):
      return RegistryRecord(entity: .torrents, key: hash.bytes, value: nil)
    case .putToken(let token):
      var message = Privtrak_V1_RegistryToken()
      message.userID = Data(token.userID.bytes)
      message.infoHash = Data(token.infoHash.bytes)
      if let value = token.factors.uploadPercent { message.uploadFactorPercent = value }
      if let value = token.factors.downloadPercent { message.downloadFactorPercent = value }
      return RegistryRecord(
        entity: .tokens, key: token.userID.bytes + token.infoHash.bytes, value: serialize(message))
    case .deleteToken(let user, let hash):
      return RegistryRecord(entity: .tokens, key: user.bytes + hash.bytes, value: nil)
    case .putGlobal(let overrides):
      var message = Privtrak_V1_RegistryGlobal()
      if let value = overrides.uploadPercent { message.uploadFactorPercent = value }
      if let value = overrides.downloadPercent { message.downloadFactorPercent = value }
      let bytes = serialize(message)
      return RegistryRecord(entity: .global, key: globalKey, value: bytes.isEmpty ? nil : bytes)
    case .deleteGlobal:
      return RegistryRecord(entity: .global, key: globalKey, value: nil)
    case .putClientRule(let rule):
      var message = Privtrak_V1_RegistryClientRule()
      message.peerIDPrefix = Data(rule.prefix)
      message.action = rule.action == .allow ? .allow : .deny
      message.reason = rule.reason
      return RegistryRecord(entity: .clients, key: rule.prefix, value: serialize(message))
    case .deleteClientRule(let prefix):
      return RegistryRecord(entity: .clients, key: prefix, value: nil)
    }
  }

  private static func decodeMessage<M: SwiftProtobuf.Message>(_ bytes: [UInt8])
    throws(RegistryRecordError) -> M
  {
    do {
      return try M(serializedBytes: bytes)
    } catch {
      throw RegistryRecordError(field: "value", problem: "does not decode as \(M.protoMessageName)")
    }
  }

  /// The v2 hash of a torrent record: none, or exactly 32 bytes. A record
  /// that names its v1 hash is a hybrid torrent, so its v2 hash cannot also
  /// start with the key; one without a v1 hash is v2-only (the key is the v2
  /// hash's first 20 bytes) or a hybrid whose v1 hash is left to the key.
  private static func decodeV2InfoHash(_ field: Data, key: InfoHash, v1Given: Bool)
    throws(RegistryRecordError) -> V2InfoHash?
  {
    if field.isEmpty { return nil }
    guard let hash = V2InfoHash(field) else {
      throw lengthError("v2_info_hash", "32", field.count)
    }
    if v1Given, hash.announceHash == key {
      throw RegistryRecordError(
        field: "v2_info_hash",
        problem: "starts with the v1 info_hash; a v2-only torrent leaves info_hash empty")
    }
    return hash
  }

  private static func requireSame(_ field: Data, _ key: [UInt8], field name: String)
    throws(RegistryRecordError)
  {
    // An id left out of the value is taken from the key.
    guard field.isEmpty || Array(field) == key else {
      throw RegistryRecordError(
        field: name, problem: "does not match the record key (\(field.count) bytes)")
    }
  }

  private static func lengthError(_ field: String, _ expected: String, _ actual: Int)
    -> RegistryRecordError
  {
    RegistryRecordError(field: field, problem: "expected \(expected) bytes, got \(actual)")
  }

  private static func serialize(_ message: some SwiftProtobuf.Message) -> [UInt8] {
    // Serializing a message built from valid Swift values cannot fail.
    (try? message.serializedBytes()) ?? []
  }
}
