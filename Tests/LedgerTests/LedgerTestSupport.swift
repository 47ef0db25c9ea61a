import BitTorrent
import DeltaModel
import Foundation
import Ledger
import Logging

/// The test PostgreSQL (`make test` starts a private cluster: scripts/postgres)
/// and fresh databases on it, one per test.
enum TestPostgres {
  /// `LEDGER_POSTGRES_URL`, else the cluster `make test` starts.
  static let url =
    ProcessInfo.processInfo.environment["LEDGER_POSTGRES_URL"]
    ?? "postgresql://postgres@127.0.0.1:19432/privtrak"

  static let logger: Logger = {
    var logger = Logger(label: "privtrak.ledger.test")
    logger.logLevel = .warning
    return logger
  }()

  struct Unusable: Error, CustomStringConvertible {
    var description: String
  }

  /// A new, empty database; returns where it is.
  static func freshDatabase() async throws -> LedgerDestination {
    guard let base = LedgerDestination(parsing: url) else {
      throw Unusable(description: "LEDGER_POSTGRES_URL is not a postgresql:// URL: \(url)")
    }
    let name = "ledger_test_\(UInt64.random(in: 0..<UInt64.max) & 0xffff_ffff_ffff)"
    let admin = try await PostgresLedgerStore.connect(to: base, logger: logger)
    _ = try await admin.rows("CREATE DATABASE \(name)")
    await admin.close()
    var destination = base
    destination.database = name
    return destination
  }

  /// A store on a fresh, migrated database.
  static func migratedStore() async throws -> (PostgresLedgerStore, LedgerDestination) {
    let destination = try await freshDatabase()
    let store = try await PostgresLedgerStore.connect(to: destination, logger: logger)
    try await store.migrate()
    return (store, destination)
  }
}

/// Deltas with known totals: `users` users on `torrents` torrents, uploads
/// and downloads that telescope to sums the test computes itself.
struct LedgerTestDeltas {
  let instance = UInt64.random(in: 1..<UInt64.max)
  private(set) var sequence: UInt64 = 0

  static func user(_ number: Int) -> UserID { UserID(high: 0x1ed9e7, low: UInt64(number)) }

  static func torrent(_ number: Int) -> InfoHash {
    InfoHash(Array(repeating: UInt8(0x40 + number), count: 20))!
  }

  mutating func next(
    user: Int, torrent: Int, uploaded: Int64, downloaded: Int64, event: DeltaEvent = .none,
    seeding: Bool = false, factors: CreditFactors = .unit
  ) -> Delta {
    sequence += 1
    return Delta(
      userID: Self.user(user), infoHash: Self.torrent(torrent), uploaded: uploaded,
      downloaded: downloaded, event: event,
      reportedAtMilliseconds: 1_790_000_000_000 + Int64(sequence), seeding: seeding,
      intervalSeconds: 60, reset: false,
      origin: DeltaOrigin(instance: instance, sequence: sequence),
      factors: factors)
  }
}

/// Per user: (uploaded, downloaded, credited uploaded, credited downloaded), as the ledger must have them.
func expectedTotals(_ deltas: [Delta]) -> [UserID: [Int64]] {
  var totals: [UserID: [Int64]] = [:]
  for delta in deltas {
    var row = totals[delta.userID] ?? [0, 0, 0, 0]
    row[0] += delta.uploaded
    row[1] += delta.downloaded
    row[2] += delta.uploaded * Int64(delta.factors.uploadPercent) / 100
    row[3] += delta.downloaded * Int64(delta.factors.downloadPercent) / 100
    totals[delta.userID] = row
  }
  return totals
}

/// `privtrak.user_totals` as the same shape.
func storedTotals(_ store: PostgresLedgerStore) async throws -> [UserID: [Int64]] {
  var totals: [UserID: [Int64]] = [:]
  let rows = try await store.rows(
    "SELECT encode(user_id, 'hex'), uploaded, downloaded, credited_uploaded, credited_downloaded FROM privtrak.user_totals"
  )
  for row in rows {
    guard let hex = row[0], let user = UserID(hex: hex) else { continue }
    totals[user] = row.dropFirst().map { Int64($0 ?? "") ?? -1 }
  }
  return totals
}
