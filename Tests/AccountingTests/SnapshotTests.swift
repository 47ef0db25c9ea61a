import Accounting
import BitTorrent
import DeltaModel
import PrivtrakTestSupport
import Testing
import Tracker

@Suite("Snapshot and restore")
struct SnapshotTests {
  static func sampleSnapshot() -> StatsSnapshot {
    let clients = (0..<5).map { TestClient(user: $0, torrent: $0 * 3, peer: $0) }
    let entries = clients.enumerated().map { index, client in
      StatsEntry(
        userID: client.userID, infoHash: client.infoHash, peerID: client.peerID,
        uploaded: UInt64(index) * 1_000_000_007, downloaded: UInt64.max - UInt64(index),
        lastSeen: 1_700_000_000 + UInt32(index), flags: index.isMultiple(of: 2) ? .seeding : [])
    }
    let addresses: [IPAddress?] = [nil, .v4(0xC0A8_0001), IPAddress("2001:db8::7"), nil]
    let pending = addresses.enumerated().map { index, address in
      Delta(
        userID: clients[index].userID, infoHash: clients[index].infoHash,
        uploaded: Int64(index) - 1,
        downloaded: Int64.max - Int64(index), event: DeltaEvent.allCases[index],
        reportedAtMilliseconds: 1_700_000_000_123,
        seeding: index == 1, intervalSeconds: UInt32(index * 1800), reset: index == 2,
        origin: DeltaOrigin(instance: 0xDEAD_BEEF, sequence: UInt64(index + 10)), clientIP: address,
        peerID: index >= 2 ? clients[index].peerID : nil,
        factors: [
          .unit, CreditFactors(uploadPercent: 200, downloadPercent: 0), .unit,
          CreditFactors(downloadPercent: 50),
        ][index])
    }
    return StatsSnapshot(
      instance: 0xDEAD_BEEF, nextSequence: 14, createdAtMilliseconds: 1_700_000_500_000,
      entries: entries,
      pendingDeltas: pending)
  }

  @Test("file snapshot round trip: entries, pending deltas with every optional field, metadata")
  func roundTrip() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let store = FileSnapshotStore(path: directory.file("stats.snap"))
    let snapshot = Self.sampleSnapshot()
    try await store.save(snapshot)
    #expect(try await store.load() == snapshot)
    #expect(permissions(store.path) == 0o600, "user ids are passkeys")
    #expect(!fileExists(store.path + ".tmp"), "the temporary file was renamed")

    // Saving again replaces the file atomically.
    var changed = snapshot
    changed.entries.removeLast()
    try await store.save(changed)
    #expect(try await store.load() == changed)
  }

  @Test("a version 1 snapshot (before credit factors) is still read")
  func versionOneIsRead() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    var (path, bytes) = try await writtenSnapshot(in: directory)
    // Version 2 wrote no factor bit (every factor is 100 here): the bytes
    // are a version 1 file once the version and the CRC say so.
    bytes[8] = 1
    let body = bytes[0..<(bytes.count - 4)]
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in body {
      crc ^= UInt32(byte)
      for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    crc = ~crc
    for index in 0..<4 {
      bytes[bytes.count - 4 + index] = UInt8(truncatingIfNeeded: crc >> (8 * index))
    }
    writeFile(path, bytes)
    let harness = await AccountingHarness(
      sink: CollectingTestSink(), snapshotStore: FileSnapshotStore(path: path))
    #expect(harness.middleware.restoreOutcome == .restored(entries: 10, pendingDeltas: 10))
  }

  @Test("an empty snapshot round-trips too")
  func emptyRoundTrip() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let store = FileSnapshotStore(path: directory.file("empty.snap"))
    let empty = StatsSnapshot(
      instance: 1, nextSequence: 1, createdAtMilliseconds: 0, entries: [], pendingDeltas: [])
    try await store.save(empty)
    #expect(readFile(store.path).count == 68)
    #expect(try await store.load() == empty)
  }

  @Test("a missing snapshot: clear error naming the file; the tracker starts empty")
  func missingSnapshot() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let path = directory.file("never-written.snap")
    let harness = await AccountingHarness(
      sink: CollectingTestSink(), snapshotStore: FileSnapshotStore(path: path))
    #expect(
      harness.middleware.restoreOutcome
        == .startedEmpty(SnapshotError(location: path, kind: .missing)))
    guard case .startedEmpty(let error) = harness.middleware.restoreOutcome else { return }
    #expect(error.description.contains(path) && error.description.contains("missing"))
    #expect(harness.middleware.statistics().entries == 0)
  }

  /// Writes a real snapshot through a middleware and returns its bytes.
  private func writtenSnapshot(in directory: TemporaryDirectory) async throws -> (
    path: String, bytes: [UInt8]
  ) {
    let path = directory.file("stats.snap")
    let harness = await AccountingHarness(
      sink: CollectingTestSink(), snapshotStore: FileSnapshotStore(path: path))
    for index in 0..<10 {
      let client = TestClient(user: index, torrent: index)
      try await harness.announce(client, uploaded: 0, downloaded: 0)
      try await harness.announce(client, uploaded: 5, downloaded: 0)
    }
    #expect(try await harness.middleware.writeSnapshot())
    return (path, readFile(path))
  }

  /// Starts a middleware on `path` and returns the restore error.
  private func restoreError(from path: String) async -> SnapshotError? {
    let harness = await AccountingHarness(
      sink: CollectingTestSink(), snapshotStore: FileSnapshotStore(path: path))
    #expect(harness.middleware.statistics().entries == 0, "starts empty")
    #expect(harness.middleware.statistics().batcher.pendingDeltas == 0, "starts empty")
    guard case .startedEmpty(let error) = harness.middleware.restoreOutcome else {
      Issue.record("expected a failed restore, got \(harness.middleware.restoreOutcome)")
      return nil
    }
    #expect(error.location == path)
    #expect(error.description.hasPrefix("snapshot \(path): "))
    return error
  }

  @Test(
    "a truncated snapshot: clear error with expected and actual size; the tracker starts empty",
    arguments: [0, 4, 40, 67, 500, -1])
  func truncatedSnapshot(keep: Int) async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let (path, bytes) = try await writtenSnapshot(in: directory)
    let kept = keep < 0 ? bytes.count - 1 : keep
    writeFile(path, Array(bytes.prefix(kept)))
    let error = try #require(await restoreError(from: path))
    let expected = kept < 68 ? 68 : bytes.count
    #expect(error.kind == .truncated(expectedBytes: expected, actualBytes: kept))
    #expect(error.description.contains("truncated"))
  }

  @Test(
    "a corrupt snapshot (one flipped bit anywhere): checksum mismatch; the tracker starts empty",
    arguments: [20, 45, 100, -6])
  func corruptSnapshot(position: Int) async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    var (path, bytes) = try await writtenSnapshot(in: directory)
    let index = position < 0 ? bytes.count + position : position
    bytes[index] ^= 0x10
    writeFile(path, bytes)
    let error = try #require(await restoreError(from: path))
    guard case .checksumMismatch = error.kind else {
      Issue.record("expected a checksum mismatch, got \(error)")
      return
    }
    #expect(error.description.contains("corrupt"))
  }

  @Test("not a snapshot at all: bad magic")
  func notASnapshot() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let path = directory.file("stats.snap")
    writeFile(
      path, Array("this is a text file, not a snapshot of anything at all, really not at all".utf8))
    #expect(await restoreError(from: path)?.kind == .badMagic)
  }

  @Test("a future format version is refused by name")
  func unsupportedVersion() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    var (path, bytes) = try await writtenSnapshot(in: directory)
    bytes[8] = 3
    writeFile(path, bytes)
    let error = await restoreError(from: path)
    #expect(error?.kind == .unsupportedVersion(3))
    #expect(error?.description.contains("version 3") == true)
  }

  @Test("restart with a snapshot: deltas of sessions spanning the restart are exact")
  func restartKeepsSessionsExact() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let path = directory.file("stats.snap")
    let seeder = TestClient(user: 1, torrent: 1)
    let leecher = TestClient(user: 2, torrent: 1)
    let restarter = TestClient(user: 3, torrent: 1)
    let trackerClock = ManualTestClock(milliseconds: 1_704_067_200_000)

    let firstSink = CollectingTestSink()
    let first = await AccountingHarness(
      sink: firstSink, snapshotStore: FileSnapshotStore(path: path), trackerClock: trackerClock)
    #expect(
      first.middleware.restoreOutcome
        == .startedEmpty(SnapshotError(location: path, kind: .missing)))
    try await first.announce(seeder, uploaded: 0, downloaded: 0, left: 0, event: .started)
    try await first.announce(leecher, uploaded: 0, downloaded: 0, left: 900, event: .started)
    try await first.announce(restarter, uploaded: 0, downloaded: 0, event: .started)
    try await first.announce(seeder, uploaded: 4000, downloaded: 0, left: 0)
    try await first.announce(leecher, uploaded: 10, downloaded: 500, left: 400)
    try await first.announce(restarter, uploaded: 800, downloaded: 800)
    let running = first.start()
    running.cancel()  // graceful shutdown: drain, final snapshot, close
    try await running.value("running to end")
    #expect(firstSink.isClosed)
    #expect(firstSink.deltas.count == 3)

    trackerClock.advance(seconds: 600)
    let secondSink = CollectingTestSink()
    let second = await AccountingHarness(
      sink: secondSink, snapshotStore: FileSnapshotStore(path: path), trackerClock: trackerClock)
    #expect(second.middleware.restoreOutcome == .restored(entries: 3, pendingDeltas: 0))
    #expect(second.middleware.knows(user: seeder.userID, infoHash: seeder.infoHash))
    #expect(second.middleware.instance != first.middleware.instance)
    try await second.announce(seeder, uploaded: 6500, downloaded: 0, left: 0)
    try await second.announce(leecher, uploaded: 10, downloaded: 900, left: 0, event: .completed)
    try await second.announce(restarter, uploaded: 100, downloaded: 50)  // its client restarted too
    await second.middleware.flush()

    let deltas = secondSink.deltas
    try #require(deltas.count == 3)
    #expect(deltas[0].uploaded == 2500 && deltas[0].downloaded == 0 && !deltas[0].reset)
    #expect(deltas[0].intervalSeconds == 600, "lastSeen survived the restart")
    #expect(deltas[1].uploaded == 0 && deltas[1].downloaded == 400 && deltas[1].event == .completed)
    #expect(deltas[2].uploaded == 100 && deltas[2].downloaded == 50 && deltas[2].reset)
    #expect(deltas.allSatisfy { $0.origin.instance == second.middleware.instance })
  }

  @Test(
    "pending deltas in a snapshot are re-delivered after restart with their original ordering ids")
  func undeliveredDeltasAreRedelivered() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let path = directory.file("stats.snap")
    var configuration = AccountingConfiguration.forTesting(batchSize: 2)
    configuration.shutdownDrainTimeout = .zero
    let unreachable = FlakyTestSink(failures: .max)
    let first = await AccountingHarness(
      configuration: configuration, sink: unreachable, snapshotStore: FileSnapshotStore(path: path))
    let clients = (0..<5).map { TestClient(user: $0, torrent: 4) }
    for client in clients { try await first.announce(client, uploaded: 0, downloaded: 0) }
    for (index, client) in clients.enumerated() {
      try await first.announce(client, uploaded: UInt64(index + 1) * 100, downloaded: 1)
    }
    let undelivered = first.middleware.batcher.pendingDeltas()
    #expect(undelivered.map(\.origin.sequence) == [1, 2, 3, 4, 5])
    let running = first.start()
    running.cancel()
    try await running.value("running to end")
    #expect(unreachable.delivered.isEmpty)

    let sink = CollectingTestSink()
    let second = await AccountingHarness(
      configuration: configuration, sink: sink, snapshotStore: FileSnapshotStore(path: path))
    #expect(second.middleware.restoreOutcome == .restored(entries: 5, pendingDeltas: 5))
    try await second.announce(clients[0], uploaded: 150, downloaded: 1)
    #expect(await second.middleware.flush())
    let delivered = sink.deltas
    try #require(delivered.count == 6)
    #expect(Array(delivered.prefix(5)) == undelivered, "same bytes, same origins, same order")
    #expect(delivered[5].origin == DeltaOrigin(instance: second.middleware.instance, sequence: 1))
    #expect(delivered[5].uploaded == 50, "the baseline already included the redelivered delta")
  }

  @Test("a configured instance continues its sequence after a restart from its own snapshot")
  func configuredInstanceContinuesSequence() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let path = directory.file("stats.snap")
    let client = TestClient(user: 1, torrent: 1)
    let firstSink = CollectingTestSink()
    let first = await AccountingHarness(
      configuration: .forTesting(instance: 9), sink: firstSink,
      snapshotStore: FileSnapshotStore(path: path))
    try await first.announce(client, uploaded: 0, downloaded: 0)
    for step in 1...3 { try await first.announce(client, uploaded: UInt64(step), downloaded: 0) }
    let running = first.start()
    running.cancel()
    try await running.value("running to end")
    #expect(firstSink.deltas.map(\.origin.sequence) == [1, 2, 3])

    let secondSink = CollectingTestSink()
    let second = await AccountingHarness(
      configuration: .forTesting(instance: 9), sink: secondSink,
      snapshotStore: FileSnapshotStore(path: path))
    try await second.announce(client, uploaded: 4, downloaded: 0)
    await second.middleware.flush()
    #expect(secondSink.deltas.map(\.origin) == [DeltaOrigin(instance: 9, sequence: 4)])
  }

  @Test("a captured snapshot holds advanced baselines together with the deltas that advanced them")
  func captureIsConsistent() async throws {
    let harness = await AccountingHarness(sink: GatedTestSink())
    let client = TestClient(user: 1, torrent: 1)
    try await harness.announce(client, uploaded: 0, downloaded: 0)
    try await harness.announce(client, uploaded: 70, downloaded: 0)
    let snapshot = harness.middleware.captureSnapshot()
    #expect(snapshot.entries.map(\.uploaded) == [70])
    #expect(snapshot.pendingDeltas.map(\.uploaded) == [70])
    #expect(snapshot.instance == harness.middleware.instance)
    #expect(snapshot.nextSequence == 2)
  }

  @Test("snapshots are also written periodically")
  func periodicSnapshot() async throws {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let path = directory.file("stats.snap")
    var configuration = AccountingConfiguration.forTesting()
    configuration.snapshotInterval = .seconds(300)
    let harness = await AccountingHarness(
      configuration: configuration, sink: CollectingTestSink(),
      snapshotStore: FileSnapshotStore(path: path))
    try await harness.announce(TestClient(user: 1, torrent: 1), uploaded: 0, downloaded: 0)
    let running = harness.start()
    try await waitUntil("the snapshot timer is armed") {
      harness.clock.pendingSleeps.contains(.seconds(300))
    }
    #expect(!fileExists(path))
    harness.clock.advance(by: .seconds(300))
    try await waitUntil("the periodic snapshot is written") { fileExists(path) }
    #expect(try await FileSnapshotStore(path: path).load().entries.count == 1)
    running.cancel()
    try await running.value("running to end")
  }
}
