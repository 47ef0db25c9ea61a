import Foundation

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
                    contentsOf: repositoryRoot.appendingPathComponent(".runtime/broker-\(port).pid"), encoding: .utf8)
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

    /// Resumes (a stopped process ignores SIGTERM) and stops the broker.
    func stop() async {
        resume()
        _ = try? await Self.run(["stop", String(port)])
    }

    private static func run(_ arguments: [String]) async throws -> (Int32, String) {
        try await TestKafka.blocking {
            let process = Process()
            process.executableURL = repositoryRoot.appendingPathComponent("scripts/broker")
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: output, as: UTF8.self))
        }
    }
}
