import Accounting
import BitTorrent
import DeltaModel
import Logging
import Metrics
import Tracker

#if canImport(Glibc)
  import Glibc
#endif

/// A sink that drops every batch: measures the hook and batcher alone.
struct NullSink: DeltaSink {
  func publish(_ batch: DeltaBatch) async throws {}
  func close() async throws {}
}

/// A sink that takes `delay` per batch, like a broker's transaction round trip.
struct SlowSink: DeltaSink {
  let delay: Duration
  func publish(_ batch: DeltaBatch) async throws { try await Task.sleep(for: delay) }
  func close() async throws {}
}

/// Resident set size from /proc/self/statm, in bytes.
func residentBytes() -> Int {
  let descriptor = open("/proc/self/statm", O_RDONLY)
  guard descriptor >= 0 else { return 0 }
  defer { close(descriptor) }
  var buffer = [UInt8](repeating: 0, count: 256)
  let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
  guard count > 0 else { return 0 }
  let fields = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ")
  guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
  return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A query of the allocation counter that Support/run.sh preloads
/// (Support/alloc_counter.c); nil when the benchmark runs without it.
func preloadedQuery(_ name: String) -> Int? {
  typealias Query = @convention(c) () -> Int
  // nil is RTLD_DEFAULT on glibc: search every loaded object.
  guard let symbol = dlsym(nil, name) else { return nil }
  return unsafeBitCast(symbol, to: Query.self)()
}

/// Heap allocation calls since start, if the counter is preloaded.
func allocationCount() -> Int? { preloadedQuery("privtrak_allocation_count") }

/// Bytes handed out by malloc and not yet freed (glibc mallinfo2), if the counter is preloaded.
func heapInUse() -> Int? { preloadedQuery("privtrak_heap_in_use") }

/// The workload: `users` users × `torrents` torrents, one client each.
struct Workload: Sendable {
  let users: Int
  let torrents: Int
  let passkeys: [Substring]
  let infoHashes: [InfoHash]
  let peerIDs: [PeerID]

  init(users: Int, torrents: Int) {
    self.users = users
    self.torrents = torrents
    var random = SystemRandomNumberGenerator()
    passkeys = (0..<users).map { _ in
      Substring(UserID(high: random.next(), low: random.next()).hex)
    }
    infoHashes = (0..<torrents).map { _ in
      InfoHash((0..<20).map { _ in UInt8.random(in: 0...255) })!
    }
    peerIDs = (0..<users).map { _ in
      PeerID(Array("-qB4650-".utf8) + (0..<12).map { _ in UInt8.random(in: 0...255) })!
    }
  }

  var count: Int { users * torrents }

  /// The announce of entry `index` reporting `uploaded`.
  @inline(__always)
  func request(_ index: Int, uploaded: UInt64) -> AnnounceRequest {
    let user = index % users
    let torrent = index / users
    return AnnounceRequest(
      infoHash: infoHashes[torrent], peerID: peerIDs[user],
      endpoint: PeerEndpoint(address: .v4(0x0A00_0000 | UInt32(user)), port: 6881),
      uploaded: uploaded, downloaded: 0, left: 0, passkey: passkeys[user])
  }
}

func hook(_ middleware: AccountingMiddleware, _ request: AnnounceRequest, _ clock: SystemClock)
  async
{
  var request = request
  let milliseconds = clock.nowMilliseconds()
  var context = HookContext(
    receivedAt: UInt32(milliseconds / 1000), receivedAtMilliseconds: milliseconds)
  do throws(TrackerFailure) {
    try await middleware.beforeAnnounce(&request, context: &context)
  } catch {
    fatalError("announce failed: \(error)")
  }
}

struct Measurement {
  var announces: Int
  var elapsed: Duration
  var allocations: Int?

  var nanosecondsPerAnnounce: Double {
    let (seconds, attoseconds) = elapsed.components
    return (Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(announces)
  }

  func report(_ name: String) {
    let perSecond = 1e9 / nanosecondsPerAnnounce
    print(
      name.padding(50) + "\(format(nanosecondsPerAnnounce, 1)) ns/announce".padding(22)
        + "\(format(perSecond / 1e6, 2)) M announces/s".padding(24)
        + (allocations.map { "\(format(Double($0) / Double(announces), 3)) allocations/announce" }
          ?? "allocations: n/a (run via Support/run.sh)"))
  }
}

func measure(_ announces: Int, _ body: () async -> Void) async -> Measurement {
  let allocationsBefore = allocationCount()
  let start = ContinuousClock.now
  await body()
  let elapsed = ContinuousClock.now - start
  let allocations = allocationCount().flatMap { after in allocationsBefore.map { after - $0 } }
  return Measurement(announces: announces, elapsed: elapsed, allocations: allocations)
}

func format(_ value: Double, _ decimals: Int) -> String {
  var scale = 1.0
  for _ in 0..<decimals { scale *= 10 }
  let rounded = (value * scale).rounded() / scale
  return "\(rounded)"
}

extension String {
  func padding(_ width: Int) -> String {
    count >= width ? self + " " : self + String(repeating: " ", count: width - count)
  }
}

/// The benchmark, in a nonisolated function so announces do not hop
/// between the main actor and the global executor.
enum Benchmark {
  static func run() async {
    let entries =
      CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
    let users = 1000
    let workload = Workload(users: users, torrents: max(1, entries / users))
    let quiet = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
    let clock = SystemClock()

    print(
      "privtrak accounting benchmark — \(workload.count) entries (\(users) users × \(workload.torrents) torrents)"
    )
    print("")

    // 1. Memory per entry: RSS and malloc'd bytes before and after inserting every entry.
    let middleware = await AccountingMiddleware(
      configuration: AccountingConfiguration(snapshotInterval: nil), sink: NullSink(),
      metricsFactory: NOOPMetricsHandler.instance, logger: quiet)
    let rssBefore = residentBytes()
    let heapBefore = heapInUse()
    let insertion = await measure(workload.count) {
      for index in 0..<workload.count {
        await hook(middleware, workload.request(index, uploaded: 0), clock)
      }
    }
    let rssAfter = residentBytes()
    let heapAfter = heapInUse()
    precondition(middleware.statistics().entries == workload.count)
    let rssPerEntry = Double(rssAfter - rssBefore) / Double(workload.count)
    let heapPerEntry = heapAfter.flatMap { after in
      heapBefore.map { Double(after - $0) / Double(workload.count) }
    }
    print("memory at \(workload.count) entries (key material: 56 bytes/entry)")
    print(
      "  RSS growth      \(format(rssPerEntry, 1)) bytes/entry  (\(format(rssPerEntry - 56, 1)) beyond the key)"
    )
    if let heapPerEntry {
      print(
        "  malloc in use   \(format(heapPerEntry, 1)) bytes/entry  (\(format(heapPerEntry - 56, 1)) beyond the key)"
      )
    } else {
      print("  malloc in use   n/a (run via Support/run.sh)")
    }
    print("")

    print("throughput through AccountingMiddleware.beforeAnnounce (one task unless noted)")
    insertion.report("first announces (insert, no delta)")

    // 2. Announces that change nothing: identification, lookup, rules, no delta.
    let unchanged = await measure(workload.count) {
      for index in 0..<workload.count {
        await hook(middleware, workload.request(index, uploaded: 0), clock)
      }
    }
    unchanged.report("repeat announces (no delta)")

    // 3. Every announce emits a delta into the bounded batcher; run() publishes to the null sink.
    let running = Task { await middleware.run() }
    var round: UInt64 = 0
    let deltas = await measure(workload.count) {
      round += 1
      for index in 0..<workload.count {
        await hook(middleware, workload.request(index, uploaded: round * 1000), clock)
      }
    }
    deltas.report("announces with a delta, bounded batcher + null sink")

    // 4. The same with several concurrent announcing tasks on disjoint entries.
    for tasks in [2, 8] {
      round += 1
      let currentRound = round
      let concurrent = await measure(workload.count) {
        await withTaskGroup(of: Void.self) { group in
          for task in 0..<tasks {
            group.addTask {
              var index = task
              while index < workload.count {
                await hook(
                  middleware, workload.request(index, uploaded: currentRound * 1000), clock)
                index += tasks
              }
            }
          }
        }
      }
      concurrent.report("  same, \(tasks) concurrent tasks (aggregate)")
    }
    running.cancel()
    await running.value
    let statistics = middleware.statistics()
    print(
      "  batcher high water: \(statistics.batcher.highWaterDeltas) deltas (bound 100000); pending at exit: \(statistics.batcher.pendingDeltas)"
    )
    print("")

    // 5. Back-pressure: a sink slower than the announcers (2 ms per
    //    1000-delta batch) behind a small bound; announces are suspended,
    //    throughput follows the sink and memory stays at the bound.
    do {
      let slow = Workload(users: 100, torrents: 500)
      let throttled = await AccountingMiddleware(
        configuration: AccountingConfiguration(
          maxPendingDeltas: 10_000, maxWait: .seconds(30), snapshotInterval: nil),
        sink: SlowSink(delay: .milliseconds(2)), metricsFactory: NOOPMetricsHandler.instance,
        logger: quiet)
      for index in 0..<slow.count { await hook(throttled, slow.request(index, uploaded: 0), clock) }
      let throttledRun = Task { await throttled.run() }
      let rounds = 4
      let result = await measure(slow.count * rounds) {
        await withTaskGroup(of: Void.self) { group in
          for task in 0..<8 {
            group.addTask {
              for round in 1...rounds {
                var index = task
                while index < slow.count {
                  await hook(throttled, slow.request(index, uploaded: UInt64(round) * 1000), clock)
                  index += 8
                }
              }
            }
          }
        }
      }
      throttledRun.cancel()
      await throttledRun.value
      result.report("deltas into a 2 ms/batch sink, bound 10000, 8 tasks")
      let stats = throttled.statistics().batcher
      print(
        "  high water \(stats.highWaterDeltas) deltas / \(stats.highWaterBytes) bytes (bounds 10000 / 16 MiB)"
      )
      print("")
    }

    // 6. The whole tracker core (hooks + peer store + response) with and without the hook.
    let small = Workload(users: 100, torrents: 1000)
    let plainTracker = Tracker()
    let hooked = await AccountingMiddleware(
      configuration: AccountingConfiguration(snapshotInterval: nil), sink: NullSink(),
      metricsFactory: NOOPMetricsHandler.instance, logger: quiet)
    let hookedTracker = Tracker(preHooks: [hooked])
    let hookedRun = Task { await hooked.run() }
    for tracker in [plainTracker, hookedTracker] {
      for index in 0..<small.count {
        _ = try? await tracker.announce(small.request(index, uploaded: 0))
      }
    }
    var trackerRound: UInt64 = 0
    for (name, tracker) in [
      ("Tracker.announce without hooks", plainTracker),
      ("Tracker.announce with the accounting hook", hookedTracker),
    ] {
      trackerRound += 1
      let currentRound = trackerRound
      let result = await measure(small.count * 2) {
        for repeatRound in 0..<2 {
          for index in 0..<small.count {
            _ = try? await tracker.announce(
              small.request(index, uploaded: (currentRound * 2 + UInt64(repeatRound)) * 1000))
          }
        }
      }
      result.report(name + " (100k peers)")
    }
    hookedRun.cancel()
    await hookedRun.value
  }
}
