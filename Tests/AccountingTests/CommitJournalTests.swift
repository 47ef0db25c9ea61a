import Accounting
import BitTorrent
import DeltaModel
import Testing
import Tracker

/// A process killed between snapshots (SIGKILL, OOM) is modelled by a
/// middleware that is simply abandoned: no drain, no shutdown snapshot, its
/// pending deltas never published. A second middleware then starts from the
/// same files, as the restarted process would.
@Suite("Commit journal: a killed process recounts nothing it published")
struct CommitJournalTests {
  struct Files {
    let directory = TemporaryDirectory()
    var snapshotPath: String { directory.file("stats.snap") }
    var journalPrefix: String { snapshotPath + ".journal" }

    func harness(
      sink: CollectingTestSink, journal: Bool = true, instance: UInt64? = nil
    ) async -> AccountingHarness {
      await AccountingHarness(
        configuration: .forTesting(instance: instance), sink: sink,
        snapshotStore: FileSnapshotStore(path: snapshotPath),
        journal: journal ? CommitJournal(prefix: journalPrefix, logger: .quiet) : nil)
    }
  }

  static let clients = (0..<24).map { TestClient(user: $0 % 6, torrent: $0 / 6, peer: $0) }

  /// Announces every client with counters `step × (client number + 1)`.
  static func announceAll(_ harness: AccountingHarness, step: UInt64, event: AnnounceEvent = .none)
    async throws
  {
    for (number, client) in clients.enumerated() {
      let scale = UInt64(number + 1)
      try await harness.announce(
        client, uploaded: step * scale, downloaded: step * scale / 2, event: event)
    }
  }

  /// Uploaded bytes per (user, torrent) after deduplicating by origin, the consumers' contract.
  static func uploadedTotals(_ sinks: [CollectingTestSink]) -> [String: Int64] {
    var seen = Set<DeltaOrigin>()
    var totals: [String: Int64] = [:]
    for delta in sinks.flatMap(\.deltas) where seen.insert(delta.origin).inserted {
      totals["\(delta.userID.hex)/\(delta.infoHash)", default: 0] += delta.uploaded
    }
    return totals
  }

  /// What the clients really uploaded: their last counters (sessions start at 0).
  static func groundTruth(step: UInt64) -> [String: Int64] {
    var totals: [String: Int64] = [:]
    for (number, client) in clients.enumerated() {
      totals["\(client.userID.hex)/\(client.infoHash)", default: 0] +=
        Int64(step * UInt64(number + 1))
    }
    return totals
  }

  /// Snapshot, then published deltas, then unpublished ones, then a kill;
  /// the restarted process sees every client's final announce.
  static func killAfterPublishing(journal: Bool) async throws -> [String: Int64] {
    let files = Files()
    defer { files.directory.remove() }
    let firstSink = CollectingTestSink()
    let first = await files.harness(sink: firstSink, journal: journal)
    try await announceAll(first, step: 0, event: .started)
    try await announceAll(first, step: 100)
    await first.middleware.flush()
    try await first.middleware.writeSnapshot()
    try await announceAll(first, step: 200)
    await first.middleware.flush()  // published after the snapshot
    try await announceAll(first, step: 300)  // never published: the process dies
    #expect(first.middleware.statistics().batcher.pendingDeltas == clients.count)

    let secondSink = CollectingTestSink()
    let second = await files.harness(sink: secondSink, journal: journal)
    try await announceAll(second, step: 400)
    await second.middleware.flush()
    return uploadedTotals([firstSink, secondSink])
  }

  @Test("killed after publishing past its snapshot: the restart's totals equal the ground truth")
  func killedProcessIsExact() async throws {
    let totals = try await Self.killAfterPublishing(journal: true)
    #expect(totals == Self.groundTruth(step: 400))
  }

  @Test("without the journal the same kill counts the bytes published after the snapshot twice")
  func withoutTheJournalBytesAreCountedTwice() async throws {
    let totals = try await Self.killAfterPublishing(journal: false)
    let truth = Self.groundTruth(step: 400)
    // Each client published 100 × n after the snapshot; the restart counts it again.
    let expected = Self.groundTruth(step: 500)
    #expect(totals == expected)
    #expect(totals != truth)
  }

  @Test("pending deltas a snapshot holds but the killed process then published are not re-sent")
  func publishedPendingDeltasAreNotRequeued() async throws {
    let files = Files()
    defer { files.directory.remove() }
    let firstSink = CollectingTestSink()
    let first = await files.harness(sink: firstSink)
    try await Self.announceAll(first, step: 0, event: .started)
    try await Self.announceAll(first, step: 100)
    try await first.middleware.writeSnapshot()  // holds 24 pending deltas
    await first.middleware.flush()
    #expect(firstSink.deltas.count == Self.clients.count)

    let secondSink = CollectingTestSink()
    let second = await files.harness(sink: secondSink)
    #expect(second.middleware.restoreOutcome == .restored(entries: 24, pendingDeltas: 24))
    #expect(second.middleware.statistics().batcher.pendingDeltas == 0)
    try await Self.announceAll(second, step: 150)
    await second.middleware.flush()
    #expect(secondSink.deltas.allSatisfy { $0.origin.instance == second.middleware.instance })
    #expect(Self.uploadedTotals([firstSink, secondSink]) == Self.groundTruth(step: 150))
  }

  @Test("a configured instance continues after the last sequence it published, not its snapshot's")
  func configuredInstanceNeverReusesAPublishedSequence() async throws {
    let files = Files()
    defer { files.directory.remove() }
    let firstSink = CollectingTestSink()
    let first = await files.harness(sink: firstSink, instance: 77)
    try await Self.announceAll(first, step: 0, event: .started)
    try await first.middleware.writeSnapshot()
    try await Self.announceAll(first, step: 100)
    await first.middleware.flush()
    let lastPublished = try #require(firstSink.deltas.map(\.origin.sequence).max())

    let secondSink = CollectingTestSink()
    let second = await files.harness(sink: secondSink, instance: 77)
    try await Self.announceAll(second, step: 200)
    await second.middleware.flush()
    let next = try #require(secondSink.deltas.map(\.origin.sequence).min())
    #expect(next == lastPublished + 1)
  }

  @Test("stopped and expired entries stay removed after the restart")
  func removalsAreReplayed() async throws {
    let files = Files()
    defer { files.directory.remove() }
    let first = await files.harness(sink: CollectingTestSink())
    try await Self.announceAll(first, step: 0, event: .started)
    try await first.middleware.writeSnapshot()
    let stopper = Self.clients[0]
    try await first.announce(stopper, uploaded: 5, downloaded: 0, event: .stopped)
    await first.middleware.flush()

    let second = await files.harness(sink: CollectingTestSink())
    #expect(!second.middleware.knows(user: stopper.userID, infoHash: stopper.infoHash))
    #expect(second.middleware.statistics().entries == Self.clients.count - 1)
  }

  @Test("a torn journal tail is reported and ignored; complete records still apply")
  func tornTailIsIgnored() async throws {
    let files = Files()
    defer { files.directory.remove() }
    let firstSink = CollectingTestSink()
    let first = await files.harness(sink: firstSink)
    try await Self.announceAll(first, step: 0, event: .started)
    try await first.middleware.writeSnapshot()
    let early = Array(Self.clients[0..<12])
    let late = Array(Self.clients[12...])
    for client in early { try await first.announce(client, uploaded: 100, downloaded: 0) }
    await first.middleware.flush()
    for client in late { try await first.announce(client, uploaded: 100, downloaded: 0) }
    await first.middleware.flush()
    // Cut the last frame (the late clients' batch) short, as a crash mid-write would.
    let journalFiles = try #require(journalFileNames(files))
    let last = files.directory.file(try #require(journalFiles.last))
    let bytes = readFile(last)
    writeFile(last, Array(bytes.dropLast(7)))

    let secondSink = CollectingTestSink()
    let second = await files.harness(sink: secondSink)
    #expect(second.middleware.restoreOutcome == .restored(entries: 24, pendingDeltas: 0))
    for client in Self.clients { try await second.announce(client, uploaded: 150, downloaded: 0) }
    await second.middleware.flush()
    let recounted = Dictionary(
      secondSink.deltas.map { ("\($0.userID.hex)/\($0.infoHash)/\($0.uploaded)", 1) },
      uniquingKeysWith: +)
    for client in early {
      #expect(recounted["\(client.userID.hex)/\(client.infoHash)/50"] != nil)
    }
    // The torn batch's baselines fall back to the snapshot: counted from 0 again.
    for client in late {
      #expect(recounted["\(client.userID.hex)/\(client.infoHash)/150"] != nil)
    }
  }

  private func journalFileNames(_ files: Files) -> [String]? {
    let names = listDirectory(files.directory.path).filter { $0.hasPrefix("stats.snap.journal.") }
    return names.isEmpty ? nil : names.sorted()
  }
}
