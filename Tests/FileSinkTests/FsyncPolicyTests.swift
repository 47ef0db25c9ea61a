import DeltaModel
import FileSink
import PrivtrakTestSupport
import Testing

/// fdatasync calls counted per policy (what reaches the platter cannot be
/// observed here; when the sink asks for it can).
@Suite struct FsyncPolicyTests {
  let batches = SampleBatches.batches(4, maxSize: 3)

  @Test func everyBatchSyncsBeforePublishReturns() async throws {
    let directory = try TemporaryDirectory()
    let sink = try FileSink(
      configuration: FileSinkConfiguration(path: directory.file("d.ptdl"), fsyncPolicy: .everyBatch)
    )
    for (index, batch) in batches.enumerated() {
      try await sink.publish(batch)
      let statistics = await sink.statistics
      #expect(statistics.syncs == index + 1)
      #expect(statistics.unsyncedBytes == 0)
    }
    try await sink.close()
  }

  @Test func neverLeavesItToTheKernelEvenAtClose() async throws {
    let directory = try TemporaryDirectory()
    let path = directory.file("d.ptdl")
    let sink = try FileSink(configuration: FileSinkConfiguration(path: path, fsyncPolicy: .never))
    for batch in batches { try await sink.publish(batch) }
    let statistics = await sink.statistics
    #expect(statistics.syncs == 0)
    #expect(statistics.unsyncedBytes == statistics.fileSize - 8)
    try await sink.close()
    #expect(try FileDeltaReader(path: path).readAvailable() == batches)
  }

  @Test func intervalSyncsWhenAPublishFindsTheLastSyncOld() async throws {
    let directory = try TemporaryDirectory()
    let clock = ManualTestClock()
    let sink = try FileSink(
      configuration: FileSinkConfiguration(
        path: directory.file("d.ptdl"), fsyncPolicy: .interval(.seconds(1))),
      clock: clock)
    try await sink.publish(batches[0])
    #expect(await sink.statistics.syncs == 0)
    #expect(await sink.statistics.unsyncedBytes > 0)

    clock.advance(by: .milliseconds(999))
    try await sink.publish(batches[1])
    #expect(await sink.statistics.syncs == 0)

    clock.advance(by: .milliseconds(1))
    try await sink.publish(batches[2])
    #expect(await sink.statistics.syncs == 1)
    #expect(await sink.statistics.unsyncedBytes == 0)

    try await sink.publish(batches[3])
    try await sink.syncIfDue()  // not due: last sync just now
    #expect(await sink.statistics.syncs == 1)
    clock.advance(by: .seconds(1))
    try await sink.syncIfDue()
    #expect(await sink.statistics.syncs == 2)
    try await sink.syncIfDue()  // nothing pending
    #expect(await sink.statistics.syncs == 2)

    try await sink.publish(batches[0])
    try await sink.close()  // syncs what is pending
    #expect(await sink.statistics.syncs == 3)
  }

  @Test func periodicSyncCatchesBatchesNoLaterPublishSyncs() async throws {
    let directory = try TemporaryDirectory()
    let clock = ManualTestClock()
    let sink = try FileSink(
      configuration: FileSinkConfiguration(
        path: directory.file("d.ptdl"), fsyncPolicy: .interval(.seconds(5))),
      clock: clock)
    let syncing = Task { try await sink.runPeriodicSync() }
    try await sink.publish(batches[0])
    #expect(await sink.statistics.syncs == 0)

    try await waitUntil("the sync loop to sleep") { clock.sleeperCount == 1 }
    clock.advance(by: .seconds(5))
    try await waitUntil("the periodic sync") { await sink.statistics.syncs == 1 }
    #expect(await sink.statistics.unsyncedBytes == 0)

    syncing.cancel()
    let ended: Result<Void, any Error>
    do {
      ended = .success(try await syncing.value("the sync loop to end once cancelled"))
    } catch {
      ended = .failure(error)
    }
    #expect(throws: CancellationError.self) { try ended.get() }
    try await sink.close()
  }

  @Test func periodicSyncReturnsAtOnceForOtherPolicies() async throws {
    let directory = try TemporaryDirectory()
    let sink = try FileSink(
      configuration: FileSinkConfiguration(path: directory.file("d.ptdl"), fsyncPolicy: .never))
    let syncing = Task { try await sink.runPeriodicSync() }
    try await syncing.value("runPeriodicSync to return at once under .never")
    try await sink.close()
  }
}
