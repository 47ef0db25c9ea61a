import Accounting
import BitTorrent
import DeltaWire
import FileSink
import Frontends
import KafkaSink
import Registry
import Tracker

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Everything `privtrak serve` is configured with: one YAML file plus
/// `PRIVTRAK_<SECTION>_<KEY>` environment overrides. The README's
/// configuration reference lists every key; keep the two in step.
public struct ServiceConfiguration: Sendable, Equatable {
  /// Where deltas go.
  public enum SinkURL: Sendable, Equatable, CustomStringConvertible {
    /// Append-only local file (the embedded default).
    case file(path: String)
    /// A Kafka cluster: bootstrap servers and topic.
    case kafka(bootstrap: String, topic: String)
    /// `null:`: every batch is dropped as soon as it is published. For
    /// benchmarks only (the tracker's cost without any delivery cost); the
    /// deltas are lost.
    case null

    /// Parses `file:PATH`, `kafka://HOST:PORT[,HOST:PORT]/TOPIC` or `null:`
    /// (`none` is the older spelling of `null:`).
    public init?(parsing text: String) {
      if text == "null:" || text == "none" {
        self = .null
      } else if text.hasPrefix("file:") {
        let path = String(text.dropFirst(5))
        guard !path.isEmpty else { return nil }
        self = .file(path: path)
      } else if text.hasPrefix("kafka://") {
        let rest = text.dropFirst(8)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let bootstrap = String(rest[..<slash])
        let topic = String(rest[rest.index(after: slash)...])
        guard !bootstrap.isEmpty, !topic.isEmpty, !topic.contains("/") else { return nil }
        self = .kafka(bootstrap: bootstrap, topic: topic)
      } else {
        return nil
      }
    }

    public var description: String {
      switch self {
      case .file(let path): "file:\(path)"
      case .kafka(let bootstrap, let topic): "kafka://\(bootstrap)/\(topic)"
      case .null: "null:"
      }
    }
  }

  /// HTTP listener (`nil` disables HTTP).
  public var httpListen: ListenAddress?
  /// Proxies whose X-Forwarded-For / X-Real-IP are believed.
  public var trustedProxies: [IPNetwork]
  /// Most simultaneous HTTP connections.
  public var httpMaxConnections: Int
  /// Idle HTTP connections are closed after this long.
  public var httpIdleTimeout: Duration
  /// UDP listener (`nil` disables UDP).
  public var udpListen: ListenAddress?
  /// Admin listener for `/metrics`, `/healthz`, `/readyz` (`nil` disables it).
  public var adminListen: ListenAddress?
  /// Hex secret for UDP connection ids; random per process when empty.
  public var udpConnectionIDSecret: [UInt8]?
  /// Swarm policy.
  public var tracker: TrackerConfiguration
  /// Which torrents this instance serves when several share them
  /// (`tracker.shard_index`, `tracker.shard_count`); ``TrackerShard/whole``
  /// for a single instance.
  public var trackerShard = TrackerShard.whole
  /// How often silent peers are collected.
  public var gcInterval: Duration
  /// Event-loop threads serving HTTP, UDP and admin; 0 means one per CPU
  /// this process may run on (see ``EventLoopThreads``).
  public var eventLoopThreads = 0
  /// Where deltas go.
  public var sink: SinkURL
  /// When the file sink forces batches to disk.
  public var fileFsync: FsyncPolicy
  /// Whether the accounting middleware runs (a plain tracker otherwise).
  public var accountingEnabled: Bool
  /// Accounting middleware settings (peer lifetime follows `tracker.peer_lifetime_s`).
  public var accounting: AccountingConfiguration
  /// Kafka producer settings (bootstrap and topic come from `sink.url`).
  public var kafka: KafkaSettings
  /// Where the accounting snapshot lives; nil disables snapshots.
  public var snapshotPath: String?
  /// Whether published batches' baseline changes are journaled next to
  /// the snapshot (`<snapshot_path>.journal.<generation>`), so a killed
  /// process recounts nothing it had published.
  public var commitJournal = true
  /// Log level name (trace, debug, info, notice, warning, error, critical).
  public var logLevel: String
  /// The site registry (`registry.*`).
  public var registry = RegistrySettings()
  /// The ledger (`ledger.*`, read by `privtrak ledger` only).
  public var ledger = LedgerSettings()

  /// The `ledger.*` keys, as given; `privtrak ledger` parses the URLs.
  public struct LedgerSettings: Sendable, Equatable {
    /// The delta topic, `kafka://HOST:PORT[,HOST:PORT]/TOPIC`; empty: none given.
    public var from = ""
    /// The database, `postgresql://USER[:PASSWORD]@HOST:PORT/DB`; empty: none given.
    public var to = ""
    /// The PostgreSQL password (from `PRIVTRAK_LEDGER_PASSWORD`, a Secret;
    /// wins over one in `to`); empty: none.
    public var password = ""
    /// Admin listener for `/metrics`, `/healthz`, `/readyz` (`nil` disables it).
    public var adminListen: ListenAddress? = ListenAddress(host: "127.0.0.1", port: 9091)
    /// A static assignment of partitions; empty: every partition.
    public var partitions: [Int32] = []
    /// A Kafka consumer group whose members split the partitions (instead
    /// of a static list); empty: none.
    public var group = ""
    /// Most Kafka records per PostgreSQL transaction.
    public var maxBatchRecords = 5000
    /// Longest wait for one batch's apply statement before the connection
    /// is dropped and the batch retried.
    public var applyTimeout: Duration = .seconds(30)

    /// Creates the defaults.
    public init() {}
  }

  /// The `registry.*` keys.
  public struct RegistrySettings: Sendable, Equatable {
    /// Where the registry comes from; nil (`none`) runs without one.
    public var source: RegistryLocation?
    /// Who and what gets in.
    public var modes = RegistryModes()
    /// Topic names for a Kafka source.
    public var topics = RegistryTopics()
    /// Whether missing registry topics are created (compacted).
    public var createTopics = false
    /// Bound of the start-up read of every topic to its end.
    public var startTimeout: Duration = .seconds(120)
    /// BEP 31 `retry in` minutes for announces of a pending torrent.
    public var pendingRetryMinutes = 10
    /// How often a registry file is checked for changes (SIGHUP reloads at once).
    public var filePollInterval: Duration = .seconds(1)

    /// Creates the defaults: no registry, an open tracker.
    public init() {}
  }

  /// The built-in defaults: everything on loopback, file sink. Settings a
  /// module owns take that module's configuration default (the one place
  /// each is defined); only service-level settings are defined here.
  /// ``parse(yaml:file:environment:)`` starts from this value and uses it as
  /// every key's default.
  public static let defaults = ServiceConfiguration(
    httpListen: ListenAddress(host: "127.0.0.1", port: 6969), trustedProxies: [],
    httpMaxConnections: HTTPFrontendConfiguration().maxConnections,
    httpIdleTimeout: HTTPFrontendConfiguration().idleTimeout,
    udpListen: ListenAddress(host: "127.0.0.1", port: 6969),
    adminListen: ListenAddress(host: "127.0.0.1", port: 9090),
    udpConnectionIDSecret: nil, tracker: TrackerConfiguration(), gcInterval: .seconds(60),
    sink: .file(path: "privtrak-deltas.ptdl"),
    fileFsync: FileSinkConfiguration(path: "privtrak-deltas.ptdl").fsyncPolicy,
    accountingEnabled: true, accounting: AccountingConfiguration(), kafka: KafkaSettings(),
    snapshotPath: "privtrak-snapshot.bin", logLevel: "info")

  /// `accounting.batch_size` when the sink is Kafka: one transaction per
  /// batch, so larger batches amortise the commit.
  public static let kafkaBatchSize = 10_000

  /// Parses and validates a YAML document. Unknown keys and bad values throw
  /// a ``ConfigurationError`` naming the key and the file.
  public static func parse(
    yaml: String, file: String, environment: [String: String] = [:]
  ) throws(ConfigurationError) -> ServiceConfiguration {
    var reader = try ConfigReader(yaml: yaml, file: file, environment: environment)
    var config = ServiceConfiguration.defaults

    config.httpListen = try listen(&reader, "http.listen", default: config.httpListen)
    config.trustedProxies = []
    for text in try reader.stringList("http.trusted_proxies") {
      guard let network = IPNetwork(text) else {
        throw reader.fail(
          "http.trusted_proxies", "expected IP addresses or CIDR networks, got '\(text)'")
      }
      config.trustedProxies.append(network)
    }
    config.httpMaxConnections = try reader.integer(
      "http.max_connections", default: config.httpMaxConnections, range: 1...1_000_000)
    config.httpIdleTimeout = try reader.seconds(
      "http.idle_timeout_s", default: config.httpIdleTimeout, minimum: 0.1)

    config.udpListen = try listen(&reader, "udp.listen", default: config.udpListen)
    config.adminListen = try listen(&reader, "admin.listen", default: config.adminListen)
    let secret = try reader.string("udp.connection_id_secret", default: "")
    if !secret.isEmpty {
      guard secret.count >= 32, let bytes = Hex.decode(secret) else {
        throw reader.fail("udp.connection_id_secret", "expected at least 32 hexadecimal characters")
      }
      config.udpConnectionIDSecret = bytes
    }

    // Each key's default is the field's value in `config` (or in a fresh
    // module configuration) before the key is read.
    var tracker = config.tracker
    tracker.announceInterval = try reader.integer(
      "tracker.announce_interval_s", default: tracker.announceInterval, range: 10...86_400,
      unit: "seconds")
    // A shorter configured interval pulls these two defaults along.
    tracker.minAnnounceInterval = try reader.integer(
      "tracker.min_announce_interval_s",
      default: min(tracker.minAnnounceInterval, tracker.announceInterval),
      range: 1...tracker.announceInterval,
      unit: "seconds")
    tracker.peerLifetime = try reader.integer(
      "tracker.peer_lifetime_s", default: max(tracker.peerLifetime, tracker.announceInterval + 60),
      range: tracker.announceInterval...604_800,
      unit: "seconds")
    tracker.defaultNumWant = try reader.integer(
      "tracker.default_numwant", default: tracker.defaultNumWant, range: 0...1000)
    tracker.maxNumWant = try reader.integer(
      "tracker.max_numwant", default: tracker.maxNumWant, range: tracker.defaultNumWant...1000)
    tracker.maxScrapeInfoHashes = try reader.integer(
      "tracker.max_scrape_hashes", default: tracker.maxScrapeInfoHashes, range: 1...1000)
    tracker.shardCount = try powerOfTwo(&reader, "tracker.shards", default: tracker.shardCount)
    config.tracker = tracker
    let shardCount = try reader.integer(
      "tracker.shard_count", default: config.trackerShard.count, range: 1...1024)
    let shardIndex = try reader.integer(
      "tracker.shard_index", default: min(config.trackerShard.index, shardCount - 1),
      range: 0...1023)
    guard shardIndex < shardCount else {
      throw reader.fail(
        "tracker.shard_index",
        "expected a shard from 0 to \(shardCount - 1) (tracker.shard_count is \(shardCount)), got \(shardIndex)"
      )
    }
    config.trackerShard = TrackerShard(index: shardIndex, count: shardCount)!
    config.gcInterval = try reader.seconds(
      "tracker.gc_interval_s", default: config.gcInterval, minimum: 1)
    config.eventLoopThreads = try reader.integer(
      "tracker.event_loop_threads", default: config.eventLoopThreads, range: 0...1024)

    let sinkText = try reader.string("sink.url", default: config.sink.description)
    guard let sink = SinkURL(parsing: sinkText) else {
      throw reader.fail(
        "sink.url", "expected file:PATH, kafka://HOST:PORT/TOPIC or null:, got '\(sinkText)'")
    }
    config.sink = sink
    if let fsync = try reader.string("sink.file_fsync") {
      switch fsync {
      case "every_batch": config.fileFsync = .everyBatch
      case "never": config.fileFsync = .never
      default:
        guard let seconds = Double(fsync), seconds > 0, seconds <= 3600 else {
          throw reader.fail(
            "sink.file_fsync", "expected every_batch, never or a number of seconds, got '\(fsync)'")
        }
        config.fileFsync = .interval(.milliseconds(Int64(seconds * 1000)))
      }
    }

    config.accountingEnabled = try reader.bool(
      "accounting.enabled", default: config.accountingEnabled)
    var accounting = config.accounting
    let defaultBatchSize =
      if case .kafka = sink { Self.kafkaBatchSize } else { accounting.batchSize }
    accounting.batchSize = try reader.integer(
      "accounting.batch_size", default: defaultBatchSize, range: 1...1_000_000)
    accounting.flushInterval = try reader.seconds(
      "accounting.flush_interval_s", default: accounting.flushInterval, minimum: 0.001)
    accounting.maxPendingDeltas = try reader.integer(
      "accounting.max_pending_deltas", default: accounting.maxPendingDeltas,
      range: accounting.batchSize...100_000_000)
    accounting.maxPendingBytes = try reader.integer(
      "accounting.max_pending_bytes", default: accounting.maxPendingBytes, range: 4096...(1 << 34),
      unit: "bytes")
    accounting.maxWait = try reader.seconds("accounting.max_wait_s", default: accounting.maxWait)
    accounting.maxWaiters = try reader.integer(
      "accounting.max_waiters", default: accounting.maxWaiters, range: 0...1_000_000)
    accounting.retryInMinutes = try reader.integer(
      "accounting.retry_in_minutes", default: accounting.retryInMinutes, range: 1...1440)
    accounting.emitStopped = try reader.bool(
      "accounting.emit_stopped", default: accounting.emitStopped)
    accounting.emitIdleAnnounces = try reader.bool(
      "accounting.emit_idle_announces", default: accounting.emitIdleAnnounces)
    accounting.recordClientIP = try reader.bool(
      "accounting.record_client_ip", default: accounting.recordClientIP)
    accounting.recordPeerID = try reader.bool(
      "accounting.record_peer_id", default: accounting.recordPeerID)
    accounting.requirePasskeyForScrape = try reader.bool(
      "accounting.require_passkey_for_scrape", default: accounting.requirePasskeyForScrape)
    // 0 stands for nil (a random instance per start).
    let instance: UInt64 = try reader.integer(
      "accounting.instance", default: accounting.instance ?? 0, range: 0...UInt64.max)
    accounting.instance = instance == 0 ? nil : instance
    accounting.shardCount = try powerOfTwo(
      &reader, "accounting.shards", default: accounting.shardCount)
    accounting.gcInterval = try reader.seconds(
      "accounting.gc_interval_s", default: accounting.gcInterval, minimum: 1)
    accounting.shutdownDrainTimeout = try reader.seconds(
      "accounting.shutdown_drain_timeout_s", default: accounting.shutdownDrainTimeout)
    accounting.peerLifetime = .seconds(Int64(tracker.peerLifetime))
    let snapshotPath = try reader.string(
      "accounting.snapshot_path", default: config.snapshotPath ?? "off")
    config.snapshotPath = snapshotPath == "off" || snapshotPath.isEmpty ? nil : snapshotPath
    config.commitJournal = try reader.bool(
      "accounting.commit_journal", default: config.commitJournal)
    // 0 stands for nil (snapshots only at shutdown).
    let snapshotInterval = try reader.seconds(
      "accounting.snapshot_interval_s", default: accounting.snapshotInterval ?? .zero)
    accounting.snapshotInterval = snapshotInterval == .zero ? nil : snapshotInterval
    config.accounting = accounting

    var kafka = config.kafka
    kafka.transactionalID = try reader.string(
      "kafka.transactional_id", default: kafka.transactionalID)
    let delivery = try reader.string("kafka.delivery", default: kafka.deliveryMode.rawValue)
    guard let mode = KafkaSinkConfiguration.DeliveryMode(rawValue: delivery) else {
      throw reader.fail(
        "kafka.delivery", "expected exactly-once or at-least-once, got '\(delivery)'")
    }
    kafka.deliveryMode = mode
    let compression = try reader.string("kafka.compression", default: kafka.compression.rawValue)
    guard let codec = KafkaSinkConfiguration.Compression(rawValue: compression) else {
      throw reader.fail(
        "kafka.compression", "expected none, gzip, snappy, lz4 or zstd, got '\(compression)'")
    }
    kafka.compression = codec
    let framing = try reader.string("kafka.framing", default: kafka.framing.rawValue)
    guard let recordFraming = RecordFraming(rawValue: framing) else {
      throw reader.fail("kafka.framing", "expected per-delta or per-batch, got '\(framing)'")
    }
    kafka.framing = recordFraming
    kafka.deltaHeaders = try reader.bool("kafka.delta_headers", default: kafka.deltaHeaders)
    kafka.lingerMilliseconds = try reader.integer(
      "kafka.linger_ms", default: kafka.lingerMilliseconds, range: 0...60_000, unit: "ms")
    kafka.maxInFlightDeltas = try reader.integer(
      "kafka.max_in_flight_deltas", default: kafka.maxInFlightDeltas, range: 1...100_000_000)
    kafka.maxInFlightBytes = try reader.integer(
      "kafka.max_in_flight_bytes", default: kafka.maxInFlightBytes, range: 4096...(1 << 34),
      unit: "bytes")
    kafka.allowTopicAutoCreation = try reader.bool(
      "kafka.allow_topic_auto_creation", default: kafka.allowTopicAutoCreation)
    kafka.clientID = try reader.string("kafka.client_id", default: kafka.clientID)
    kafka.properties = try reader.map(withPrefix: "kafka.properties")
    config.kafka = kafka

    var registry = config.registry
    let sourceText = try reader.string(
      "registry.source", default: registry.source?.description ?? "none")
    if sourceText == "none" || sourceText.isEmpty {
      registry.source = nil
    } else {
      guard let location = RegistryLocation(parsing: sourceText) else {
        throw reader.fail(
          "registry.source",
          "expected none, file:PATH or kafka://HOST:PORT[,HOST:PORT], got '\(sourceText)'")
      }
      registry.source = location
    }
    let usersText = try reader.string("registry.users", default: registry.modes.users.rawValue)
    guard let users = RegistryModes.Users(rawValue: usersText) else {
      throw reader.fail(
        "registry.users", "expected passkey-is-user-id or registered, got '\(usersText)'")
    }
    let torrentsText = try reader.string(
      "registry.torrents", default: registry.modes.torrents.rawValue)
    guard let torrents = RegistryModes.Torrents(rawValue: torrentsText) else {
      throw reader.fail("registry.torrents", "expected any or registered, got '\(torrentsText)'")
    }
    registry.modes = RegistryModes(users: users, torrents: torrents)
    for entity in RegistryEntity.allCases {
      let key = "registry.topics.\(entity.rawValue)"
      let name = try reader.string(key, default: registry.topics[entity])
      guard !name.isEmpty else { throw reader.fail(key, "expected a topic name") }
      registry.topics[entity] = name
    }
    registry.createTopics = try reader.bool(
      "registry.create_topics", default: registry.createTopics)
    registry.startTimeout = try reader.seconds(
      "registry.start_timeout_s", default: registry.startTimeout, minimum: 1)
    registry.pendingRetryMinutes = try reader.integer(
      "registry.pending_retry_minutes", default: registry.pendingRetryMinutes, range: 1...1440)
    registry.filePollInterval = try reader.seconds(
      "registry.file_poll_interval_s", default: registry.filePollInterval, minimum: 0.05)
    if registry.source == nil && registry.modes != RegistryModes() {
      throw reader.fail(
        "registry.source",
        "registry.users: \(users.rawValue) and registry.torrents: \(torrents.rawValue) need a "
          + "registry: set registry.source to file:PATH or kafka://HOST:PORT")
    }
    config.registry = registry

    var ledger = config.ledger
    ledger.from = try reader.string("ledger.from", default: ledger.from)
    ledger.to = try reader.string("ledger.to", default: ledger.to)
    ledger.password = try reader.string("ledger.password", default: ledger.password)
    ledger.adminListen = try listen(&reader, "ledger.admin", default: ledger.adminListen)
    var partitions: [Int32] = []
    for text in try reader.stringList("ledger.partitions") {
      guard let partition = Int32(text), partition >= 0 else {
        throw reader.fail("ledger.partitions", "expected partition numbers, got '\(text)'")
      }
      partitions.append(partition)
    }
    ledger.partitions = partitions.isEmpty ? ledger.partitions : partitions
    ledger.group = try reader.string("ledger.group", default: ledger.group)
    if !ledger.group.isEmpty && !ledger.partitions.isEmpty {
      throw reader.fail(
        "ledger.group",
        "ledger.group ('\(ledger.group)') and ledger.partitions (\(ledger.partitions)) exclude each other: the group assigns the partitions"
      )
    }
    ledger.maxBatchRecords = try reader.integer(
      "ledger.max_batch_records", default: ledger.maxBatchRecords, range: 1...1_000_000)
    ledger.applyTimeout = try reader.seconds(
      "ledger.apply_timeout_s", default: ledger.applyTimeout, minimum: 1)
    config.ledger = ledger

    config.logLevel = try reader.string("log.level", default: config.logLevel)
    guard
      ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(config.logLevel)
    else {
      throw reader.fail(
        "log.level", "expected one of trace, debug, info, notice, warning, error, critical")
    }

    if let unknown = reader.unknownKeys().first {
      throw reader.fail(
        unknown, "unknown key (check the spelling against the configuration reference)")
    }
    if let unknown = reader.unknownEnvironmentVariables(exempt: nonConfigurationVariables).first {
      throw ConfigurationError(
        key: "", source: "environment variable \(unknown)",
        problem:
          "overrides no configuration key (check the spelling against the configuration reference; "
          + "the only other PRIVTRAK_ variables allowed are "
          + nonConfigurationVariables.sorted().joined(separator: ", ") + ")")
    }
    return config
  }

  /// `PRIVTRAK_*` environment variables that are not configuration
  /// overrides: the scripts and tests use them (binary paths, broker and
  /// benchmark settings) and run `privtrak` with them set. Any other
  /// `PRIVTRAK_*` variable that overrides no key is an error. The README's
  /// configuration reference lists the same names.
  public static let nonConfigurationVariables: Set<String> = [
    "PRIVTRAK_BIN", "PRIVTRAK_PYTHON", "PRIVTRAK_TANSU", "PRIVTRAK_SHARED",
    "PRIVTRAK_BROKER_PORT", "PRIVTRAK_BROKER_LOG", "PRIVTRAK_BROKER_PIDFILE",
    "PRIVTRAK_BENCH_BIN", "PRIVTRAK_BENCH_INSIDE", "PRIVTRAK_BENCH_PORT",
    "PRIVTRAK_BENCH_PORT_BASE", "PRIVTRAK_BENCH_BROKER_PORT",
  ]

  /// Reads and parses the YAML file at `path`. A missing or unreadable file
  /// is a ``ConfigurationError`` naming the file, like any other problem.
  public static func load(
    file path: String, environment: [String: String] = [:]
  ) throws(ConfigurationError) -> ServiceConfiguration {
    guard let file = fopen(path, "r") else {
      throw ConfigurationError(
        key: "", source: path, problem: "cannot read the file: \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = fread(&buffer, 1, buffer.count, file)
      if count <= 0 { break }
      bytes.append(contentsOf: buffer[0..<count])
    }
    guard ferror(file) == 0 else {
      throw ConfigurationError(
        key: "", source: path, problem: "cannot read the file: \(String(cString: strerror(errno)))")
    }
    return try parse(
      yaml: String(decoding: bytes, as: UTF8.self), file: path, environment: environment)
  }

  /// A shard count: stores index shards with a mask, so only powers of two
  /// work, and rounding one up silently would hide a typo like 1000.
  private static func powerOfTwo(
    _ reader: inout ConfigReader, _ key: String, default defaultValue: Int
  ) throws(ConfigurationError) -> Int {
    let value = try reader.integer(key, default: defaultValue, range: 1...65_536)
    guard value.nonzeroBitCount == 1 else {
      throw reader.fail(key, "expected a power of two from 1 to 65536, got \(value)")
    }
    return value
  }

  /// The `kafka.*` keys; see `KafkaSinkConfiguration` for each field's
  /// meaning. Defaults are `KafkaSinkConfiguration`'s, so each is defined once.
  public struct KafkaSettings: Sendable, Equatable {
    /// `KafkaSinkConfiguration`'s defaults; bootstrap, topic and
    /// transactional id are filled in at start-up.
    private static let sinkDefaults = KafkaSinkConfiguration(
      bootstrap: "", topic: "", transactionalID: "")

    /// Stable per instance; empty derives `privtrak-<hostname>` (the pod name in a StatefulSet).
    public var transactionalID = ""
    /// Transactions per batch, or idempotent at-least-once.
    public var deliveryMode = KafkaSettings.sinkDefaults.deliveryMode
    /// Record compression.
    public var compression = KafkaSettings.sinkDefaults.compression
    /// One record per delta (key = user id) or one per batch.
    public var framing = KafkaSettings.sinkDefaults.framing
    /// Per-delta records carry the `privtrak-type` and `privtrak-schema` headers too.
    public var deltaHeaders = KafkaSettings.sinkDefaults.deltaHeaders
    /// librdkafka `linger.ms`.
    public var lingerMilliseconds = KafkaSettings.sinkDefaults.lingerMilliseconds
    /// Deltas admitted and not yet committed.
    public var maxInFlightDeltas = KafkaSettings.sinkDefaults.maxInFlightDeltas
    /// Encoded bytes admitted and not yet committed.
    public var maxInFlightBytes = KafkaSettings.sinkDefaults.maxInFlightBytes
    /// Whether a missing topic may be created by the broker.
    public var allowTopicAutoCreation = KafkaSettings.sinkDefaults.allowTopicAutoCreation
    /// librdkafka `client.id`.
    public var clientID = KafkaSettings.sinkDefaults.clientID
    /// Extra librdkafka properties (security settings and the like).
    public var properties = KafkaSettings.sinkDefaults.properties

    /// Creates the defaults.
    public init() {}
  }

  private static func listen(
    _ reader: inout ConfigReader, _ key: String, default defaultValue: ListenAddress?
  ) throws(ConfigurationError) -> ListenAddress? {
    let text = try reader.string(key, default: defaultValue?.description ?? "off")
    if text == "off" || text.isEmpty { return nil }
    guard let address = ListenAddress(parsing: text) else {
      throw reader.fail(key, "expected HOST:PORT, [IPv6]:PORT or off, got '\(text)'")
    }
    return address
  }
}
