import ArgumentParser
import BitTorrent
import Dispatch
import PrivtrakService
import Registry
import RegistryKafka

#if canImport(Glibc)
  import Glibc
#endif

extension Privtrak {
  /// `privtrak registry …`: puts, deletes and lists the site registry's
  /// records, in Kafka (the compacted topics) or in a registry file. The
  /// command forms are a contract.
  struct RegistryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "registry",
      abstract:
        "Put, delete and list registry records (users, torrents, tokens, factors, clients).",
      discussion: """
        URL is kafka://HOST:PORT[,HOST:PORT] (the registry topics, named as in --config's \
        registry.topics.*, created compacted when missing) or file:PATH (a registry file, \
        rewritten atomically). A put replaces the whole record: options left out take their \
        defaults (enabled, may leech, active, no factor).
        """,
      subcommands: [
        PutUser.self, PutTorrent.self, PutToken.self, PutGlobal.self, PutClient.self,
        DeleteUser.self, DeleteTorrent.self, DeleteToken.self, DeleteGlobal.self,
        DeleteClient.self, List.self,
      ])
  }
}

/// Options every writing command takes.
struct RegistryTarget: ParsableArguments {
  @Option(name: .long, help: "Where to write: kafka://HOST:PORT[,HOST:PORT] or file:PATH.")
  var to: String

  @Option(
    name: .long,
    help:
      "YAML configuration whose registry.topics.* and kafka.properties apply (defaults otherwise)."
  )
  var config: String?

  /// Applies the changes where `--to` says.
  func write(_ changes: [RegistryChange]) async throws {
    guard let location = RegistryLocation(parsing: to) else {
      throw ValidationError(
        "--to: expected kafka://HOST:PORT[,HOST:PORT] or file:PATH, got '\(to)'")
    }
    let configuration = try loadConfiguration(path: config)
    switch location {
    case .file(let path):
      var contents: RegistryContents
      if access(path, F_OK) != 0 {
        contents = RegistryContents()
      } else {
        contents = try RegistryFile.load(path: path)
      }
      for change in changes { contents.apply(change) }
      try RegistryFile.write(contents, to: path)
    case .kafka(let bootstrap):
      let topics = configuration.registry.topics
      let properties = configuration.kafka.properties
      try await offThePool {
        let publisher = try KafkaRegistryPublisher(
          bootstrap: bootstrap, topics: topics, createTopics: true, properties: properties)
        defer { publisher.close() }
        try publisher.publish(changes)
      }
    }
  }
}

/// Runs blocking work (librdkafka calls) on a thread outside the cooperative pool.
func offThePool(_ work: @escaping @Sendable () throws -> Void) async throws {
  try await withCheckedThrowingContinuation {
    (continuation: CheckedContinuation<Void, any Error>) in
    DispatchQueue.global().async {
      do {
        try work()
        continuation.resume()
      } catch {
        continuation.resume(throwing: error)
      }
    }
  }
}

/// The factor options of a put.
struct FactorOptions: ParsableArguments {
  @Option(name: .long, help: "Upload factor in percent (200 = double upload).")
  var uploadFactor: UInt32?

  @Option(name: .long, help: "Download factor in percent (0 = freeleech).")
  var downloadFactor: UInt32?

  func validate() throws {
    for (name, value) in [("--upload-factor", uploadFactor), ("--download-factor", downloadFactor)]
    {
      if let value, value > RegistryFile.maxFactorPercent {
        throw ValidationError("\(name): at most \(RegistryFile.maxFactorPercent), got \(value)")
      }
    }
  }

  var overrides: FactorOverrides {
    FactorOverrides(uploadPercent: uploadFactor, downloadPercent: downloadFactor)
  }
}

func parseUserID(_ text: String, flag: String = "--user-id") throws -> UserID {
  guard let id = UserID(hex: text) else {
    throw ValidationError("\(flag): expected 32 hexadecimal characters")
  }
  return id
}

func parseInfoHash(_ text: String) throws -> InfoHash {
  guard let hash = InfoHash(hex: text) else {
    throw ValidationError("--info-hash: expected 40 hexadecimal characters")
  }
  return hash
}

/// A torrent named on the command line: `--info-hash` (v1), `--v2-info-hash`
/// (v2), or both (a hybrid torrent).
struct TorrentHashOptions: ParsableArguments {
  @Option(name: .long, help: "The v1 info hash, 40 hex characters.") var infoHash: String?
  @Option(
    name: .long,
    help: "The v2 info hash, 64 hex characters (a hybrid torrent gives both hashes).")
  var v2InfoHash: String?

  /// Both hashes, at least one given.
  func hashes() throws -> (v1: InfoHash?, v2: V2InfoHash?) {
    let v1 = try infoHash.map(parseInfoHash)
    let v2 = try v2InfoHash.map { text in
      guard let hash = V2InfoHash(hex: text) else {
        throw ValidationError("--v2-info-hash: expected 64 hexadecimal characters")
      }
      return hash
    }
    if v1 == nil, v2 == nil { throw Self.neither }
    return (v1, v2)
  }

  private static let neither = ValidationError("give --info-hash, --v2-info-hash or both")

  /// The torrent's key: the v1 hash, else the v2 hash's first 20 bytes.
  func key() throws -> InfoHash {
    let (v1, v2) = try hashes()
    guard let key = v1 ?? v2?.announceHash else { throw Self.neither }
    return key
  }
}

func parsePrefix(_ text: String) throws -> [UInt8] {
  let bytes = Array(text.utf8)
  guard (1...20).contains(bytes.count) else {
    throw ValidationError("--prefix: expected 1 to 20 bytes, got \(bytes.count)")
  }
  return bytes
}

extension Privtrak.RegistryCommand {
  struct PutUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "put-user", abstract: "Add or replace a user (a new passkey replaces the old).")

    @Option(name: .long, help: "The user id, 32 hex characters (16 bytes).") var userId: String
    @Option(name: .long, help: "The passkey, 32 hex characters.") var passkey: String
    @Option(name: .long, help: "Disable the account; REASON is shown to the client.")
    var disabled: String?
    @Flag(name: .long, help: "Refuse announces with left > 0 (seeding still counts).")
    var noLeech = false
    @OptionGroup var factors: FactorOptions
    @OptionGroup var target: RegistryTarget

    func run() async throws {
      guard let key = Passkey(hex: passkey) else {
        throw ValidationError("--passkey: expected 32 hexadecimal characters")
      }
      try await target.write([
        .putUser(
          RegisteredUser(
            id: try parseUserID(userId), passkey: key, disabledReason: disabled,
            canLeech: !noLeech, factors: factors.overrides))
      ])
    }
  }

  struct PutTorrent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "put-torrent", abstract: "Add or replace a torrent.")

    @OptionGroup var hashes: TorrentHashOptions
    @Option(name: .long, help: "active, pending or deleted.") var state = "active"
    @Option(name: .long, help: "Shown to clients when pending or deleted.") var reason = ""
    @OptionGroup var factors: FactorOptions
    @OptionGroup var target: RegistryTarget

    func run() async throws {
      guard let torrentState = TorrentState(rawValue: state) else {
        throw ValidationError("--state: expected active, pending or deleted, got '\(state)'")
      }
      let torrent: RegisteredTorrent
      switch try hashes.hashes() {
      case (let v1?, let v2):
        if let v2, v2.announceHash == v1 {
          throw ValidationError(
            "--v2-info-hash starts with --info-hash; for a v2-only torrent give --v2-info-hash alone"
          )
        }
        torrent = RegisteredTorrent(
          infoHash: v1, v2InfoHash: v2, state: torrentState, reason: reason,
          factors: factors.overrides)
      case (nil, nil):
        throw ValidationError("give --info-hash, --v2-info-hash or both")
      case (nil, let v2?):
        torrent = RegisteredTorrent(
          v2Only: v2, state: torrentState, reason: reason, factors: factors.overrides)
      }
      try await target.write([.putTorrent(torrent)])
    }
  }

  struct PutToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "put-token", abstract: "Add or replace a per-user, per-torrent override.")

    @Option(name: .long, help: "The user id, 32 hex characters.") var userId: String
    @OptionGroup var hashes: TorrentHashOptions
    @OptionGroup var factors: FactorOptions
    @OptionGroup var target: RegistryTarget

    func run() async throws {
      try await target.write([
        .putToken(
          FreeleechToken(
            userID: try parseUserID(userId), infoHash: try hashes.key(),
            factors: factors.overrides))
      ])
    }
  }

  struct PutGlobal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "put-global",
      abstract: "Set the site-wide factors (a freeleech event); no factor ends the event.")

    @OptionGroup var factors: FactorOptions
    @OptionGroup var target: RegistryTarget

    func run() async throws {
      let overrides = factors.overrides
      try await target.write([overrides == .none ? .deleteGlobal : .putGlobal(overrides)])
    }
  }

  struct PutClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "put-client",
      abstract: "Allow or deny clients by peer id prefix (the longest matching prefix decides).")

    @Option(
      name: .long, parsing: .unconditional, help: "The peer id prefix, e.g. -TR3 (1 to 20 bytes).")
    var prefix: String
    @Flag(
      name: .long,
      help: "Allow the prefix (once any allow rule exists, unlisted clients are refused).")
    var allow = false
    @Flag(name: .long, help: "Deny the prefix.") var deny = false
    @Option(name: .long, help: "Shown to refused clients.") var reason = ""
    @OptionGroup var target: RegistryTarget

    func validate() throws {
      guard allow != deny else { throw ValidationError("give exactly one of --allow and --deny") }
    }

    func run() async throws {
      try await target.write([
        .putClientRule(
          ClientRule(
            prefix: try parsePrefix(prefix), action: allow ? .allow : .deny, reason: reason))
      ])
    }
  }

  struct DeleteUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "delete-user", abstract: "Remove a user (its passkey stops working).")
    @Option(name: .long, help: "The user id, 32 hex characters.") var userId: String
    @OptionGroup var target: RegistryTarget

    func run() async throws { try await target.write([.deleteUser(try parseUserID(userId))]) }
  }

  struct DeleteTorrent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "delete-torrent", abstract: "Remove a torrent (announces are then refused).")
    @OptionGroup var hashes: TorrentHashOptions
    @OptionGroup var target: RegistryTarget

    func run() async throws {
      try await target.write([.deleteTorrent(try hashes.key())])
    }
  }

  struct DeleteToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "delete-token", abstract: "Remove a per-user, per-torrent override.")
    @Option(name: .long, help: "The user id, 32 hex characters.") var userId: String
    @OptionGroup var hashes: TorrentHashOptions
    @OptionGroup var target: RegistryTarget

    func run() async throws {
      try await target.write([.deleteToken(try parseUserID(userId), try hashes.key())])
    }
  }

  struct DeleteGlobal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "delete-global", abstract: "End the site-wide factors.")
    @OptionGroup var target: RegistryTarget

    func run() async throws { try await target.write([.deleteGlobal]) }
  }

  struct DeleteClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "delete-client", abstract: "Remove the client rule of a prefix.")
    @Option(name: .long, parsing: .unconditional, help: "The peer id prefix.") var prefix: String
    @OptionGroup var target: RegistryTarget

    func run() async throws {
      try await target.write([.deleteClientRule(prefix: try parsePrefix(prefix))])
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "list",
      abstract: "Print every registry record (--json: the registry file format, one per line).")

    @Option(name: .long, help: "Where to read: kafka://HOST:PORT[,HOST:PORT] or file:PATH.")
    var from: String
    @Flag(name: .long, help: "One JSON object per record, as in a registry file.") var json = false
    @Option(
      name: .long, help: "YAML configuration whose registry.topics.* and kafka.properties apply.")
    var config: String?

    func run() async throws {
      guard let location = RegistryLocation(parsing: from) else {
        throw ValidationError(
          "--from: expected kafka://HOST:PORT[,HOST:PORT] or file:PATH, got '\(from)'")
      }
      let configuration = try loadConfiguration(path: config)
      let contents: RegistryContents
      switch location {
      case .file(let path):
        contents = try RegistryFile.load(path: path)
      case .kafka(let bootstrap):
        let registry = Registry()
        let follower = try await KafkaRegistryFollower.start(
          configuration: KafkaRegistryConfiguration(
            bootstrap: bootstrap, topics: configuration.registry.topics,
            startTimeout: configuration.registry.startTimeout,
            properties: configuration.kafka.properties),
          registry: registry)
        await follower.stop()
        contents = registry.contents
      }
      if json {
        print(RegistryFile.render(contents), terminator: "")
      } else {
        for change in contents.changes { print(Self.humanLine(change)) }
        let counts = Registry(contents).counts
        print(
          "\(counts.users) users, \(counts.torrents) torrents, \(counts.tokens) tokens, "
            + "\(counts.clientRules) client rules, global factors \(contents.global == .none ? "none" : Self.factors(contents.global))"
        )
      }
    }

    static func factors(_ overrides: FactorOverrides) -> String {
      "up \(overrides.uploadPercent.map { "\($0)%" } ?? "-") down \(overrides.downloadPercent.map { "\($0)%" } ?? "-")"
    }

    static func humanLine(_ change: RegistryChange) -> String {
      switch change {
      case .putUser(let user):
        return "user \(user.id.hex) passkey \(user.passkey.hex.prefix(4))… "
          + (user.disabledReason.map { "disabled (\($0))" } ?? "enabled")
          + (user.canLeech ? "" : " no-leech") + " " + factors(user.factors)
      case .putTorrent(let torrent):
        return "torrent \(torrent.infoHash) "
          + (torrent.v2InfoHash.map { "v2 \($0) " } ?? "") + torrent.state.rawValue
          + (torrent.reason.isEmpty ? "" : " (\(torrent.reason))") + " " + factors(torrent.factors)
      case .putToken(let token):
        return "token \(token.userID.hex) \(token.infoHash) " + factors(token.factors)
      case .putGlobal(let overrides):
        return "global " + factors(overrides)
      case .putClientRule(let rule):
        return "client \(String(decoding: rule.prefix, as: UTF8.self)) \(rule.action.rawValue)"
          + (rule.reason.isEmpty ? "" : " (\(rule.reason))")
      default:
        return "\(change)"
      }
    }
  }
}
