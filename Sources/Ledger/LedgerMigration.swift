import Crypto

/// One versioned schema change of the ledger's PostgreSQL schema
/// (`schemas/ledger/migrations/NNNN_name.sql`), embedded in the binary.
public struct LedgerMigration: Sendable, Hashable {
  /// The number in the file name; migrations apply in this order.
  public var version: Int
  /// The rest of the file name, without `.sql`.
  public var name: String
  /// The file's text.
  public var sql: String

  /// Creates a migration.
  public init(version: Int, name: String, sql: String) {
    self.version = version
    self.name = name
    self.sql = sql
  }

  /// The file name it came from.
  public var fileName: String {
    let number = String(version)
    return String(repeating: "0", count: max(0, 4 - number.count)) + number + "_" + name + ".sql"
  }

  /// SHA-256 of the file's bytes, lower-case hex: what `schema_migrations`
  /// records, so an edited migration that was already applied is caught.
  public var checksum: String {
    SHA256.hash(data: Array(sql.utf8)).map { byte in
      let text = String(byte, radix: 16)
      return byte < 16 ? "0" + text : text
    }.joined()
  }
}
