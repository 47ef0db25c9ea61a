import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// What one `apply_deltas` call did.
public struct ApplyOutcome: Sendable, Hashable {
  /// Deltas applied to the totals.
  public var applied: Int64
  /// Deltas skipped as duplicates by origin (an aborted copy, a repeat).
  public var duplicates: Int64
  /// Deltas and rejected records skipped as already applied (their offset
  /// was below the stored one: another ledger instance applied them).
  public var skipped: Int64

  /// Creates an outcome.
  public init(applied: Int64, duplicates: Int64, skipped: Int64) {
    self.applied = applied
    self.duplicates = duplicates
    self.skipped = skipped
  }
}

/// A problem of the ledger's PostgreSQL side.
public enum LedgerStoreError: Error, Sendable, CustomStringConvertible {
  /// A migration failed to apply; the ledger refuses to start.
  case migrationFailed(file: String, message: String)
  /// The apply statement did not answer in time, or its connection closed
  /// under it (a server shutdown can leave a query waiting forever): the
  /// connection is dropped and the batch retried from the stored offsets.
  case applyAbandoned(reason: String)
  /// A migration already applied differs from the embedded one.
  case migrationChanged(file: String, recorded: String, embedded: String)
  /// `apply_deltas_from` refused the batch: it was read from above a
  /// partition's stored next offset (the records in between would never be
  /// applied). Nothing changed; the ledger re-reads from the stored offsets.
  case readAheadOfStoredOffset(message: String)
  /// The database holds migrations this binary does not know (it is older).
  case unknownMigration(version: Int)

  /// Whether the ledger retries after it (an abandoned apply, a batch read
  /// ahead of the stored offsets); the others stop the start.
  public var isRetryable: Bool {
    switch self {
    case .applyAbandoned, .readAheadOfStoredOffset: true
    case .migrationFailed, .migrationChanged, .unknownMigration: false
    }
  }

  public var description: String {
    switch self {
    case .migrationFailed(let file, let message):
      "ledger migration \(file) failed: \(message)"
    case .migrationChanged(let file, let recorded, let embedded):
      "ledger migration \(file) was changed after it was applied (checksum \(recorded.prefix(12))… in the database, \(embedded.prefix(12))… here)"
    case .applyAbandoned(let reason):
      "the apply statement was abandoned: \(reason)"
    case .readAheadOfStoredOffset(let message):
      message
    case .unknownMigration(let version):
      "the database has ledger migration \(version), which this privtrak does not know: run a newer privtrak"
    }
  }
}

/// The ledger's PostgreSQL connection: migrations, stored offsets and the
/// one-statement apply of a batch (schemas/ledger/CONTRACT.md). One
/// statement is one transaction, so the rows and the offsets they advance
/// commit together or not at all.
public final class PostgresLedgerStore: Sendable {
  /// Serialises migrations of concurrent ledgers (any fixed 64-bit number).
  static let migrationLockKey: Int64 = 7_368_826

  private let connection: PostgresConnection
  private let logger: Logger

  private init(connection: PostgresConnection, logger: Logger) {
    self.connection = connection
    self.logger = logger
  }

  /// Connects (TLS off; loopback or a trusted network).
  public static func connect(
    to destination: LedgerDestination, logger: Logger,
    eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()
  ) async throws -> PostgresLedgerStore {
    var configuration = PostgresConnection.Configuration(
      host: destination.host, port: destination.port, username: destination.user,
      password: destination.password, database: destination.database, tls: .disable)
    configuration.options.connectTimeout = .seconds(10)
    let connection = try await PostgresConnection.connect(
      on: eventLoop, configuration: configuration, id: 1, logger: logger)
    return PostgresLedgerStore(connection: connection, logger: logger)
  }

  /// Closes the connection.
  public func close() async {
    try? await connection.close()
  }

  /// Applies the migrations the database lacks, in order, each in its own
  /// transaction, under an advisory lock; checks the applied ones'
  /// checksums. Returns the versions applied now.
  @discardableResult
  public func migrate(_ migrations: [LedgerMigration] = LedgerMigrations.all) async throws -> [Int]
  {
    try await connection.query("CREATE SCHEMA IF NOT EXISTS privtrak", logger: logger)
    try await connection.query(
      """
      CREATE TABLE IF NOT EXISTS privtrak.schema_migrations(
        version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())
      """, logger: logger)
    try await connection.query(
      "SELECT pg_advisory_lock(\(Self.migrationLockKey))", logger: logger)
    do {
      let applied = try await apply(migrations)
      try await connection.query(
        "SELECT pg_advisory_unlock(\(Self.migrationLockKey))", logger: logger)
      return applied
    } catch {
      _ = try? await connection.query(
        "SELECT pg_advisory_unlock(\(Self.migrationLockKey))", logger: logger)
      throw error
    }
  }

  private func apply(_ migrations: [LedgerMigration]) async throws -> [Int] {
    var recorded: [Int: String] = [:]
    let rows = try await connection.query(
      "SELECT version, checksum FROM privtrak.schema_migrations", logger: logger)
    for try await (version, checksum) in rows.decode((Int32, String).self) {
      recorded[Int(version)] = checksum
    }
    let known = Set(migrations.map(\.version))
    if let unknown = recorded.keys.sorted().first(where: { !known.contains($0) }) {
      throw LedgerStoreError.unknownMigration(version: unknown)
    }
    var appliedNow: [Int] = []
    for migration in migrations.sorted(by: { $0.version < $1.version }) {
      if let checksum = recorded[migration.version] {
        guard checksum == migration.checksum else {
          throw LedgerStoreError.migrationChanged(
            file: migration.fileName, recorded: checksum, embedded: migration.checksum)
        }
        continue
      }
      for quote in [Self.migrationQuote, Self.textQuote] where migration.sql.contains(quote) {
        throw LedgerStoreError.migrationFailed(
          file: migration.fileName, message: "contains \(quote)")
      }
      let name = migration.name.replacingOccurrences(of: "'", with: "''")
      do {
        // postgres-nio speaks only the extended protocol (one statement per
        // query); PL/pgSQL's EXECUTE runs a string of many. One statement is
        // one transaction: the migration and its record commit together.
        try await connection.query(
          PostgresQuery(
            unsafeSQL: """
              DO \(Self.migrationQuote)BEGIN
              EXECUTE \(Self.textQuote)\(migration.sql)\(Self.textQuote);
              INSERT INTO privtrak.schema_migrations(version, name, checksum)
              VALUES (\(migration.version), '\(name)', '\(migration.checksum)');
              END\(Self.migrationQuote)
              """), logger: logger)
      } catch {
        throw LedgerStoreError.migrationFailed(
          file: migration.fileName, message: Self.message(of: error))
      }
      logger.info("applied ledger migration \(migration.fileName)")
      appliedNow.append(migration.version)
    }
    return appliedNow
  }

  /// The stored next offset of every partition of `topic` that has one.
  public func offsets(topic: String) async throws -> [Int32: Int64] {
    var offsets: [Int32: Int64] = [:]
    let rows = try await connection.query(
      "SELECT partition, next_offset FROM privtrak.partition_offsets WHERE topic = \(topic)",
      logger: logger)
    for try await (partition, next) in rows.decode((Int32, Int64).self) {
      offsets[partition] = next
    }
    return offsets
  }

  /// Applies `batch` and advances its partitions' offsets, in one statement,
  /// and waits for the answer at most `timeout`, or until the connection
  /// closes: then throws ``LedgerStoreError/applyAbandoned(reason:)`` (the
  /// statement may or may not have committed; the stored offsets tell).
  /// Not cancelled by its caller's cancellation: a statement sent is
  /// answered (a SIGTERM lets it finish). `from`: as in
  /// ``apply(_:topic:from:)``.
  public func apply(
    _ batch: LedgerBatch, topic: String, from: [Int32: Int64] = [:], timeout: Duration
  ) async throws -> ApplyOutcome {
    let outcome = OneShot<ApplyOutcome>()
    let query = Task {
      do {
        outcome.finish(.success(try await self.apply(batch, topic: topic, from: from)))
      } catch {
        outcome.finish(.failure(error))
      }
    }
    let watchdog = Task { [connection] in
      let deadline = ContinuousClock.now + timeout
      while !outcome.isFinished {
        if connection.isClosed {
          outcome.finish(.failure(LedgerStoreError.applyAbandoned(reason: "connection closed")))
          return
        }
        if ContinuousClock.now >= deadline {
          outcome.finish(
            .failure(LedgerStoreError.applyAbandoned(reason: "no answer within \(timeout)")))
          return
        }
        try? await Task.sleep(for: .milliseconds(50))  // watching, not synchronising
      }
    }
    defer {
      watchdog.cancel()
      _ = query
    }
    return try await outcome.value()
  }

  /// Applies `batch` and advances its partitions' offsets, in one statement
  /// (`apply_deltas_from`).
  ///
  /// `from`: per partition of the batch, the offset the reading of its
  /// records started at (where the reader was seeked, or the previous
  /// batch's next offset); a partition without one counts as 0, which
  /// checks nothing. A batch read from above a partition's stored next
  /// offset is refused: throws ``LedgerStoreError/readAheadOfStoredOffset(message:)``,
  /// nothing changed.
  public func apply(_ batch: LedgerBatch, topic: String, from: [Int32: Int64] = [:])
    async throws -> ApplyOutcome
  {
    let partitions = batch.nextOffsets.keys.sorted()
    let nextOffsets = partitions.map { batch.nextOffsets[$0]! }
    let fromOffsets = partitions.map { from[$0] ?? 0 }
    let query: PostgresQuery = """
      SELECT applied, duplicates, skipped FROM privtrak.apply_deltas_from(
        \(topic)::text, \(partitions)::int[], \(fromOffsets)::bigint[], \(nextOffsets)::bigint[],
        \(batch.partition)::int[], \(batch.offset)::bigint[],
        \(batch.userID)::bytea[], \(batch.infoHash)::bytea[],
        \(batch.uploaded)::bigint[], \(batch.downloaded)::bigint[], \(batch.event)::smallint[],
        \(batch.reportedAt)::bigint[], \(batch.seeding)::boolean[], \(batch.interval)::bigint[],
        \(batch.reset)::boolean[], \(batch.instance)::bigint[], \(batch.sequence)::bigint[],
        \(batch.clientIP)::bytea[], \(batch.peerID)::bytea[],
        \(batch.uploadFactor)::int[], \(batch.downloadFactor)::int[],
        \(batch.rejectedPartition)::int[], \(batch.rejectedOffset)::bigint[],
        \(batch.rejectedKey)::bytea[], \(batch.rejectedValue)::bytea[],
        \(batch.rejectedReason)::text[])
      """
    do {
      let rows = try await connection.query(query, logger: logger)
      for try await (applied, duplicates, skipped) in rows.decode((Int64, Int64, Int64).self) {
        return ApplyOutcome(applied: applied, duplicates: duplicates, skipped: skipped)
      }
      return ApplyOutcome(applied: 0, duplicates: 0, skipped: 0)
    } catch let error as PSQLError where error.serverInfo?[.sqlState] == Self.readAheadState {
      // The server's error surfaces in query() or while the rows are read.
      throw LedgerStoreError.readAheadOfStoredOffset(message: Self.message(of: error))
    }
  }

  /// Runs one SQL statement and returns its rows with every value as text
  /// (tests and checks; the statement is run as given).
  public func rows(_ sql: String) async throws -> [[String?]] {
    var result: [[String?]] = []
    let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
    for try await row in rows {
      result.append(row.map { cell in Self.text(of: cell) })
    }
    return result
  }

  private static func text(of cell: PostgresCell) -> String? {
    guard cell.bytes != nil else { return nil }
    switch cell.dataType {
    case .int8: return (try? cell.decode(Int64.self)).map(String.init)
    case .int4: return (try? cell.decode(Int32.self)).map(String.init)
    case .int2: return (try? cell.decode(Int16.self)).map(String.init)
    case .bool: return (try? cell.decode(Bool.self)).map(String.init)
    case .float8, .numeric: return (try? cell.decode(Double.self)).map { String($0) }
    default: return try? cell.decode(String.self)
    }
  }

  /// The SQLSTATE `apply_deltas_from` raises for a batch read ahead of the
  /// stored offset (migration 0002).
  static let readAheadState = "PT409"

  /// The dollar quote around a migration's text (which must not contain it).
  static let migrationQuote = "$privtrak_migration$"
  /// The dollar quote around the migration's text inside that block.
  static let textQuote = "$privtrak_migration_text$"

  static func message(of error: any Error) -> String {
    if let error = error as? PSQLError, let server = error.serverInfo {
      return [server[.message], server[.detail], server[.hint]].compactMap { $0 }.joined(
        separator: "; ")
    }
    return String(describing: error)
  }
}

/// A result delivered once, by whichever of several tasks gets there first.
final class OneShot<Value: Sendable>: Sendable {
  private struct State {
    var result: Result<Value, any Error>?
    var waiter: CheckedContinuation<Value, any Error>?
  }
  private let state = Mutex(State())

  var isFinished: Bool { state.withLock { $0.result != nil } }

  /// The first call wins; later ones are ignored.
  func finish(_ result: Result<Value, any Error>) {
    let waiter: CheckedContinuation<Value, any Error>? = state.withLock { state in
      guard state.result == nil else { return nil }
      state.result = result
      defer { state.waiter = nil }
      return state.waiter
    }
    waiter?.resume(with: result)
  }

  /// Waits for the result (not cancellable: the result always comes).
  func value() async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
      let ready: Result<Value, any Error>? = state.withLock { state in
        if let result = state.result { return result }
        state.waiter = continuation
        return nil
      }
      if let ready { continuation.resume(with: ready) }
    }
  }
}
