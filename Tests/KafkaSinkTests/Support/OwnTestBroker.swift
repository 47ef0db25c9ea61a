import Foundation
import PrivtrakTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// A Tansu broker this test starts on its own port with `scripts/broker`, so
/// it can pause it (SIGSTOP) without disturbing tests on the shared broker.
final class OwnTestBroker: Sendable {
  let port: Int
  let pid: pid_t
  var bootstrap: String { "127.0.0.1:\(port)" }

  /// The repository root (this file is Tests/KafkaSinkTests/Support/OwnTestBroker.swift).
  static let repositoryRoot: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  private init(port: Int, pid: pid_t) {
    self.port = port
    self.pid = pid
  }

  /// Starts a broker on a free port (tries a few random ones).
  static func start() async throws -> OwnTestBroker {
    var failures: [String] = []
    for _ in 0..<5 {
      let port = Int.random(in: 20_000..<29_000)
      let (status, output) = try await run(["start", String(port)])
      if status == 0 {
        let pidText = try String(
          contentsOf: repositoryRoot.appendingPathComponent(".runtime/broker-\(port).pid"),
          encoding: .utf8)
        guard let pid = pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
          throw TestKafkaError("scripts/broker: bad pid file for port \(port): \(pidText)")
        }
        return OwnTestBroker(port: port, pid: pid)
      }
      failures.append("port \(port): \(output)")
    }
    throw TestKafkaError("scripts/broker start failed: \(failures.joined(separator: "; "))")
  }

  /// Freezes the broker process: connections stay open, nothing is answered.
  func pause() {
    kill(pid, SIGSTOP)
  }

  /// Lets the broker run again.
  func resume() {
    kill(pid, SIGCONT)
  }

  /// Resumes (a stopped process ignores SIGTERM) and stops the broker; its
  /// log is kept only when `keepLog` (the test body threw).
  func stop(keepLog: Bool) async {
    resume()
    _ = try? await Self.run(["stop", String(port)])
    if !keepLog {
      unlink(Self.repositoryRoot.appendingPathComponent(".runtime/broker-\(port).log").path)
    }
  }

  /// Runs `scripts/broker` with posix_spawn and waitpid (Foundation's
  /// `Process.waitUntilExit` hangs here once the script has left a
  /// daemonised Tansu behind). Output goes through a temporary file.
  private static func run(_ arguments: [String]) async throws -> (Int32, String) {
    try await TestKafka.blocking {
      let script = repositoryRoot.appendingPathComponent("scripts/broker").path
      let outputPath = FileManager.default.temporaryDirectory
        .appendingPathComponent("privtrak-broker-\(UInt64.random(in: 0..<UInt64.max)).out").path
      defer { unlink(outputPath) }
      var actions = posix_spawn_file_actions_t()
      posix_spawn_file_actions_init(&actions)
      defer { posix_spawn_file_actions_destroy(&actions) }
      posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
      posix_spawn_file_actions_adddup2(&actions, 1, 2)
      // SwiftNIO opens its sockets without O_CLOEXEC, so a child inherits
      // every socket the test process holds, and the daemonised Tansu
      // would keep them open: a server's close would then send no FIN
      // while it lives (other tests' clients wait for EOF in vain). The
      // child closes everything above stderr before running the script
      // (glibc's posix_spawn_file_actions_addclosefrom_np is not visible
      // to Swift without _GNU_SOURCE).
      let closeInherited =
        "for fd in $(ls /proc/$$/fd); do [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done 2>/dev/null; "
        + "exec \"$0\" \"$@\""
      let shell = "/bin/bash"
      let argv: [UnsafeMutablePointer<CChar>?] =
        ([shell, "-c", closeInherited, script] + arguments).map { strdup($0) } + [nil]
      defer { for argument in argv { free(argument) } }
      var pid: pid_t = 0
      let spawned = posix_spawn(&pid, shell, &actions, nil, argv, environ)
      guard spawned == 0 else { throw TestKafkaError("posix_spawn \(script): \(spawned)") }
      var status: Int32 = 0
      while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
      let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
      let exited = status & 0x7f == 0
      return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
    }
  }
}

/// Runs `body` with a broker of its own, stopped afterwards (also on failure).
func withOwnTestBroker<T>(_ body: (OwnTestBroker) async throws -> T) async throws -> T {
  let broker = try await OwnTestBroker.start()
  do {
    let result = try await body(broker)
    await broker.stop(keepLog: false)
    return result
  } catch {
    await broker.stop(keepLog: true)
    throw error
  }
}
