import BitTorrent
import DeltaModel
import DeltaWire
import Foundation
import KafkaSink
import Ledger
import Testing

/// The ledger's PostgreSQL side against a real server (scripts/postgres):
/// migrations, the one-statement apply, rejected records.
@Suite struct LedgerStoreTests {
  @Test func embeddedMigrationsAreTheFilesOfSchemasLedger() throws {
    let directory = URL(fileURLWithPath: #filePath)
      .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("schemas/ledger/migrations")
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
      .filter { $0.hasSuffix(".sql") }.sorted()
    #expect(!files.isEmpty)
    #expect(LedgerMigrations.all.map(\.fileName) == files)
    for migration in LedgerMigrations.all {
      let text = try String(
        contentsOf: directory.appendingPathComponent(migration.fileName), encoding: .utf8)
      #expect(
        migration.sql == text, "scripts/gen-ledger-migrations is stale for \(migration.fileName)")
    }
  }

  @Test func migrationsApplyOnceAndAChangedOrFailingOneStopsTheStart() async throws {
    let destination = try await TestPostgres.freshDatabase()
    let store = try await PostgresLedgerStore.connect(to: destination, logger: TestPostgres.logger)
    defer { Task { await store.close() } }
    #expect(try await store.migrate() == LedgerMigrations.all.map(\.version))
    #expect(try await store.migrate() == [])

    var edited = LedgerMigrations.all
    edited[0].sql += "\n-- edited after it was applied\n"
    await #expect(throws: LedgerStoreError.self) { try await store.migrate(edited) }

    let failing = LedgerMigration(
      version: 9999, name: "broken", sql: "SELECT * FROM no_such_table;")
    let error = await #expect(throws: LedgerStoreError.self) {
      try await store.migrate(LedgerMigrations.all + [failing])
    }
    #expect("\(error.map { "\($0)" } ?? "")".contains("9999_broken.sql"))
    #expect("\(error.map { "\($0)" } ?? "")".contains("no_such_table"))
    // Not recorded, so a fixed 9999 applies at the next start.
    let recorded = try await store.rows("SELECT max(version) FROM privtrak.schema_migrations")
    #expect(recorded == [[String(LedgerMigrations.all.last!.version)]])
  }

  @Test func aBatchAppliesOnceAndAPoisonRecordIsStoredAndSkipped() async throws {
    let (store, _) = try await TestPostgres.migratedStore()
    defer { Task { await store.close() } }
    var source = LedgerTestDeltas()
    let good = [
      source.next(user: 1, torrent: 1, uploaded: 1000, downloaded: 0),
      source.next(
        user: 2, torrent: 1, uploaded: 0, downloaded: 1000,
        factors: CreditFactors(uploadPercent: 100, downloadPercent: 0)),
      source.next(
        user: 1, torrent: 2, uploaded: 333, downloaded: 7,
        factors: CreditFactors(uploadPercent: 200, downloadPercent: 50)),
    ]
    var batch = LedgerBatch()
    batch.append(record(good[0], partition: 0, offset: 10))
    let poison = KafkaRawRecord(
      partition: 0, offset: 11, key: [1, 2, 3], value: Array("not a delta".utf8), headers: [])
    #expect(batch.append(poison) != nil)
    batch.append(record(good[1], partition: 0, offset: 12))
    batch.append(record(good[2], partition: 1, offset: 0))
    #expect(batch.deltaCount == 3 && batch.rejectedCount == 1)

    let first = try await store.apply(batch, topic: "t")
    #expect(first == ApplyOutcome(applied: 3, duplicates: 0, skipped: 0))
    #expect(try await storedTotals(store) == expectedTotals(good))
    #expect(
      try await store.rows(
        "SELECT partition, kafka_offset, encode(key, 'hex') FROM privtrak.rejected_records")
        == [["0", "11", "010203"]])
    #expect(try await store.offsets(topic: "t") == [0: 13, 1: 1])

    // The same records again (a commit whose answer was lost): nothing changes.
    let again = try await store.apply(batch, topic: "t")
    #expect(again.applied == 0)
    #expect(try await storedTotals(store) == expectedTotals(good))
  }

  /// The position check of `apply_deltas_from`: a batch read from above a
  /// partition's stored next offset would skip the records in between for
  /// good, so it is refused whole; one read from at or below it applies
  /// (below: what another ledger committed meanwhile is skipped by offset).
  @Test func aBatchReadAheadOfTheStoredOffsetIsRefusedAndChangesNothing() async throws {
    let (store, _) = try await TestPostgres.migratedStore()
    defer { Task { await store.close() } }
    var source = LedgerTestDeltas()
    let first = [source.next(user: 1, torrent: 1, uploaded: 100, downloaded: 0)]
    var batch = LedgerBatch()
    batch.append(record(first[0], partition: 0, offset: 4))
    #expect(
      try await store.apply(batch, topic: "t", from: [0: 0])
        == ApplyOutcome(applied: 1, duplicates: 0, skipped: 0))
    #expect(try await store.offsets(topic: "t") == [0: 5])

    // Read from offset 7 while 5 is stored: records 5 and 6 would be lost.
    let ahead = [
      source.next(user: 1, torrent: 1, uploaded: 10, downloaded: 0),
      source.next(user: 2, torrent: 1, uploaded: 20, downloaded: 0),
    ]
    var aheadBatch = LedgerBatch()
    aheadBatch.append(record(ahead[0], partition: 0, offset: 7))
    aheadBatch.append(record(ahead[1], partition: 1, offset: 0))
    let error = await #expect(throws: LedgerStoreError.self) {
      try await store.apply(aheadBatch, topic: "t", from: [0: 7, 1: 0], timeout: .seconds(30))
    }
    #expect(error?.isRetryable == true)
    #expect("\(error.map { "\($0)" } ?? "")".contains("partition 0"))
    // Nothing of it applied: not partition 1's delta either, no offset moved.
    #expect(try await store.offsets(topic: "t") == [0: 5])
    #expect(try await storedTotals(store) == expectedTotals(first))

    // Read from the stored offset (5; 5 and 6 were markers): applies.
    #expect(
      try await store.apply(aheadBatch, topic: "t", from: [0: 5, 1: 0])
        == ApplyOutcome(applied: 2, duplicates: 0, skipped: 0))
    #expect(try await store.offsets(topic: "t") == [0: 8, 1: 1])
    // Read from below it (a second reader that started earlier): skipped by offset.
    #expect(
      try await store.apply(aheadBatch, topic: "t", from: [0: 2, 1: 0])
        == ApplyOutcome(applied: 0, duplicates: 0, skipped: 2))
    #expect(try await storedTotals(store) == expectedTotals(first + ahead))
  }

  /// Dropping a lost partition's records from a batch leaves the rest whole.
  @Test func removingPartitionsKeepsTheOtherRecords() {
    var source = LedgerTestDeltas()
    let deltas = (0..<6).map {
      source.next(user: $0, torrent: 1, uploaded: Int64($0), downloaded: 0)
    }
    var batch = LedgerBatch()
    for (index, delta) in deltas.enumerated() {
      batch.append(record(delta, partition: Int32(index % 3), offset: Int64(index)))
    }
    batch.append(
      KafkaRawRecord(partition: 1, offset: 9, key: [], value: Array("junk".utf8), headers: []))
    batch.append(
      KafkaRawRecord(partition: 2, offset: 9, key: [], value: Array("junk".utf8), headers: []))
    let kept = batch.removing(partitions: [1])
    #expect(kept.recordCount == 5 && kept.deltaCount == 4 && kept.rejectedCount == 1)
    #expect(kept.nextOffsets == [0: 4, 2: 10])
    #expect(kept.newestReportedAtByPartition.keys.sorted() == [0, 2])
    #expect(batch.removing(partitions: []).recordCount == batch.recordCount)
    #expect(batch.removing(partitions: [0, 1, 2]).isEmpty)
  }

  /// One delta as a per-delta Kafka record.
  func record(_ delta: Delta, partition: Int32, offset: Int64) -> KafkaRawRecord {
    let first = KafkaRecordLayout.record(for: delta)
    return KafkaRawRecord(
      partition: partition, offset: offset, key: first.key, value: first.value,
      headers: first.headers)
  }
}
