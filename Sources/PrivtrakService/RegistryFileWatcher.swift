import Logging
import Metrics
import Registry
import ServiceLifecycle
import SystemPackage
import UnixSignals

#if canImport(Glibc)
  import Glibc
#endif

/// Reloads a registry file when it changes (checked every `pollInterval`:
/// inode, size and modification time) and on SIGHUP. A file that does not
/// parse keeps the old state in force; the error names the file and line.
struct RegistryFileWatcher: Service {
  let path: String
  let registry: Registry
  let pollInterval: Duration
  let logger: Logger
  let reloads: Counter
  let failures: Counter
  /// The file as it was just before the registry was loaded from it.
  let loaded: [Int]?

  init(
    path: String, registry: Registry, loaded: [Int]?, pollInterval: Duration, logger: Logger,
    metricsFactory: any MetricsFactory
  ) {
    self.path = path
    self.loaded = loaded
    self.registry = registry
    self.pollInterval = pollInterval
    self.logger = logger
    reloads = Counter(label: "privtrak_registry_file_reloads_total", factory: metricsFactory)
    failures = Counter(
      label: "privtrak_registry_file_reload_failures_total", factory: metricsFactory)
  }

  /// The file's identity and version as far as `stat` tells; nil when it cannot be read.
  static func fingerprint(_ path: String) -> [Int]? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    return [
      Int(status.st_ino), Int(status.st_size), Int(status.st_mtim.tv_sec),
      Int(status.st_mtim.tv_nsec),
    ]
  }

  func run() async throws {
    let signals = await UnixSignalsSequence(trapping: .sighup)
    await withDiscardingTaskGroup { group in
      let (changes, continuation) = AsyncStream.makeStream(of: String.self)
      group.addTask {
        for await _ in signals { continuation.yield("SIGHUP") }
      }
      group.addTask {
        while !Task.isCancelled {
          do {
            try await Task.sleep(for: pollInterval)
          } catch {
            return
          }
          continuation.yield("poll")
        }
      }
      await cancelWhenGracefulShutdown {
        var seen = loaded
        for await trigger in changes {
          let now = Self.fingerprint(path)
          guard trigger == "SIGHUP" || now != seen else { continue }
          seen = now
          reload(because: trigger == "SIGHUP" ? "SIGHUP" : "the file changed")
        }
      }
      continuation.finish()
      group.cancelAll()
    }
  }

  private func reload(because reason: String) {
    do throws(RegistryFileError) {
      let contents = try RegistryFile.load(path: path)
      registry.replaceAll(with: contents)
      reloads.increment()
      let counts = registry.counts
      logger.notice(
        "registry file reloaded",
        metadata: [
          "path": "\(path)", "trigger": "\(reason)", "users": "\(counts.users)",
          "torrents": "\(counts.torrents)", "tokens": "\(counts.tokens)",
          "client_rules": "\(counts.clientRules)",
        ])
    } catch {
      failures.increment()
      logger.error(
        "registry file not reloaded; the previous registry stays in force",
        metadata: ["error": "\(error)"])
    }
  }
}

/// Keeps a Kafka registry follower running for the service's lifetime.
struct RegistryFollowerService: Service {
  let stop: @Sendable () async -> Void

  func run() async throws {
    try? await gracefulShutdown()
    await stop()
  }
}
