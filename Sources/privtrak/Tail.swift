import ArgumentParser
import BitTorrent
import DeltaModel
import DeltaWire
import Dispatch
import FileSink
import KafkaSink
import PrivtrakService
import Synchronization
internal import SystemPackage

#if canImport(Glibc)
  import Glibc
#endif

/// Set by the SIGINT/SIGTERM handler; the read loop checks it between polls.
private let tailStopRequested = Atomic<Bool>(false)

extension Privtrak {
  /// Prints the deltas of a delta log or a Kafka topic, one line each.
  struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print the deltas of a delta log file or a Kafka topic, one line per delta.",
      discussion: """
        Kafka is read as a read_committed consumer from the beginning of every partition, \
        without a consumer group (nothing is committed). Without --json, user ids are \
        redacted to their first 4 hex characters.
        """)

    @Option(name: .long, help: "Where to read: file:PATH or kafka://HOST:PORT/TOPIC.")
    var from: String

    @Flag(name: .long, help: "One JSON object per delta (full user id), as DeltaJSON renders it.")
    var json = false

    @Flag(
      name: .long,
      help:
        "Stop at the end of the file / of every partition (high watermark at start) instead of following."
    )
    var exitAtEnd = false

    func run() async throws {
      let source = try parseSource()
      installStopHandlers()
      let render: @Sendable (Delta) -> String = json ? DeltaJSON.render : Self.humanLine
      let exitAtEnd = exitAtEnd
      // The readers block in system and librdkafka calls: keep them off the cooperative pool.
      let failure: String? = await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
          do {
            switch source {
            case .file(let path): try Self.tailFile(path, render: render, exitAtEnd: exitAtEnd)
            case .kafka(let bootstrap, let topic):
              try Self.tailKafka(bootstrap, topic, render: render, exitAtEnd: exitAtEnd)
            case .null: break
            }
            continuation.resume(returning: nil)
          } catch {
            continuation.resume(returning: "\(error)")
          }
        }
      }
      if let failure {
        FileHandleStandardError.write("privtrak tail: \(failure)")
        throw ExitCode.failure
      }
    }

    private func parseSource() throws -> ServiceConfiguration.SinkURL {
      switch ServiceConfiguration.SinkURL(parsing: from) {
      case .some(.file(let path)): return .file(path: path)
      case .some(.kafka(let bootstrap, let topic)):
        return .kafka(bootstrap: bootstrap, topic: topic)
      case .some(.null), nil:
        throw ValidationError(
          "--from: expected file:PATH or kafka://HOST:PORT/TOPIC, got '\(from)'")
      }
    }

    private static func tailFile(
      _ path: String, render: (Delta) -> String, exitAtEnd: Bool
    ) throws {
      let reader = try FileDeltaReader(path: path)
      while !tailStopRequested.load(ordering: .relaxed) {
        // readAvailable returns everything complete up to the end of the file.
        let batches = try reader.readAvailable()
        writeLines(batches.flatMap(\.deltas).map(render))
        if exitAtEnd {
          if let pending = reader.pendingTail {
            FileHandleStandardError.write(
              "privtrak tail: stopped before an incomplete record: \(pending)")
          }
          return
        }
        if batches.isEmpty { usleep(200_000) }
      }
    }

    private static func tailKafka(
      _ bootstrap: String, _ topic: String, render: (Delta) -> String, exitAtEnd: Bool
    ) throws {
      let reader = try KafkaDeltaReader(bootstrap: bootstrap, topic: topic)
      defer { reader.close() }
      while !tailStopRequested.load(ordering: .relaxed) {
        if exitAtEnd && reader.reachedEndAtStart { return }
        let records = try reader.poll(timeoutMilliseconds: 100)
        writeLines(records.flatMap(\.deltas).map(render))
      }
    }

    /// `user=5f4d… info_hash=<40 hex> up=N down=N event=E seeding=yes reset=no origin=<instance>#<sequence>`.
    /// The user id is cut to 4 hex characters: it is the user's passkey.
    @Sendable static func humanLine(_ delta: Delta) -> String {
      let user = delta.userID.hex.prefix(4)
      let instance = String(delta.origin.instance, radix: 16)
      let paddedInstance = String(repeating: "0", count: 16 - instance.count) + instance
      return
        "user=\(user)… info_hash=\(delta.infoHash) up=\(delta.uploaded) down=\(delta.downloaded) "
        + "event=\(delta.event) seeding=\(delta.seeding ? "yes" : "no") reset=\(delta.reset ? "yes" : "no") "
        + "origin=\(paddedInstance)#\(delta.origin.sequence)"
    }

    /// Writes the lines to stdout at once (unbuffered, so a follower sees them immediately).
    private static func writeLines(_ lines: [String]) {
      guard !lines.isEmpty else { return }
      // writeAll retries partial and interrupted writes; an error means
      // stdout is closed and nothing more can be shown.
      _ = try? FileDescriptor.standardOutput.writeAll(
        Array((lines.joined(separator: "\n") + "\n").utf8))
    }

    private func installStopHandlers() {
      for signalNumber in [SIGINT, SIGTERM] {
        signal(signalNumber) { _ in tailStopRequested.store(true, ordering: .relaxed) }
      }
    }
  }
}
