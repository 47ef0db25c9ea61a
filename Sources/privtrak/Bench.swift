import ArgumentParser
import LoadGenerator

#if canImport(Glibc)
  import Glibc
#endif

extension Privtrak {
  /// Drives any BitTorrent tracker with announces and reports throughput and latency.
  struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Load-generate announces against a tracker (UDP or HTTP) and report announces/s, errors and latency percentiles.",
      discussion: """
        Peers announce round-robin with counters that grow between announces \
        (started, periodic, completed, stopped and a new session). Works against \
        any tracker: --no-passkey announces on /announce (opentracker); \
        --write-whitelist FILE writes the torrents' info hashes, one hex per line.
        """)

    @Option(name: .long, help: "Tracker HOST:PORT.")
    var target = "127.0.0.1:6969"

    @Option(name: .long, help: "udp or http.")
    var transport = "udp"

    @Option(name: .long, help: "Distinct torrents.")
    var torrents = 1000

    @Option(name: .long, help: "Distinct peers (spread over the torrents).")
    var peers = 100_000

    @Option(name: .long, help: "Distinct passkeys (users).")
    var passkeys = 100

    @Flag(name: .long, help: "Announce without a passkey, on /announce (for public trackers).")
    var noPasskey = false

    @Option(name: .long, help: "Stop after this many measured announces (instead of --duration).")
    var requests: Int?

    @Option(name: .long, help: "Seconds to measure (when --requests is not given).")
    var duration: Double = 10

    @Option(name: .long, help: "Seconds of load before measuring starts.")
    var warmup: Double = 0

    @Option(name: .long, help: "Announces in flight at most.")
    var concurrency = 64

    @Option(name: .long, help: "Announces per second at most (default: as fast as answered).")
    var rate: Int?

    @Option(name: .long, help: "UDP sockets or HTTP connections.")
    var connections = 16

    @Option(name: .long, help: "HTTP requests pipelined per connection.")
    var pipeline = 1

    @Flag(
      name: .long,
      help: "HTTP: one TCP connection per announce (Connection: close), as real clients announce.")
    var connectionClose = false

    @Option(name: .long, help: "Milliseconds before an unanswered announce counts as a timeout.")
    var timeoutMs = 2000

    @Option(name: .long, help: "numwant sent with each announce.")
    var numwant = 50

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    @Option(
      name: .long, help: "Write the torrents' info hashes (hex, one a line) to FILE and exit.")
    var writeWhitelist: String?

    @Option(
      name: .long,
      help: ArgumentHelp(
        "Write a registry file (JSON Lines) holding the load's users and torrents, padded to "
          + "--registry-users users and --registry-torrents torrents, and exit.",
        valueName: "file"))
    var writeRegistry: String?

    @Option(name: .long, help: "Users in the file --write-registry writes (at least --passkeys).")
    var registryUsers = 1_000_000

    @Option(
      name: .long, help: "Torrents in the file --write-registry writes (at least --torrents).")
    var registryTorrents = 2_000_000

    func run() async throws {
      if let writeRegistry {
        // User i's passkey is the load's passkey i (LoadPopulation.passkey);
        // its id differs, so approval's mapping is on the measured path.
        var text = "# privtrak bench registry\n"
        text.reserveCapacity(
          max(registryUsers, passkeys) * 110 + max(registryTorrents, torrents) * 80)
        for index in 0..<max(registryUsers, passkeys) {
          let passkey = LoadPopulation.passkey(index)
          text +=
            #"{"type":"user","user_id":"b0b0"# + passkey.dropFirst(4) + #"","passkey":""#
            + passkey + "\"}\n"
        }
        for index in 0..<max(registryTorrents, torrents) {
          text +=
            #"{"type":"torrent","info_hash":""#
            + LoadPopulation.hex(LoadPopulation.infoHash(torrent: index))
            + (index % 10 == 9 ? #"","download_factor":0}"# : #""}"#) + "\n"
        }
        try writeTextFile(writeRegistry, text)
        return
      }
      if let writeWhitelist {
        let lines = (0..<torrents).map { LoadPopulation.hex(LoadPopulation.infoHash(torrent: $0)) }
        try writeTextFile(writeWhitelist, lines.joined(separator: "\n") + "\n")
        return
      }
      guard let colon = target.lastIndex(of: ":"),
        let port = Int(target[target.index(after: colon)...])
      else { throw ValidationError("--target: expected HOST:PORT, got '\(target)'") }
      var host = String(target[..<colon])
      if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
      guard let transport = LoadConfiguration.Transport(rawValue: transport) else {
        throw ValidationError("--transport: expected udp or http, got '\(self.transport)'")
      }
      let configuration = LoadConfiguration(
        host: host, port: port, transport: transport, torrents: torrents, peers: peers,
        passkeys: noPasskey ? 0 : passkeys,
        stop: requests.map { .requests($0) } ?? .duration(.milliseconds(Int64(duration * 1000))),
        concurrency: concurrency, rate: rate, connections: connections, pipelineDepth: pipeline,
        timeout: .milliseconds(timeoutMs), warmup: .milliseconds(Int64(warmup * 1000)),
        numWant: numwant, connectionPerAnnounce: connectionClose)
      if let problem = configuration.problem { throw ValidationError(problem) }
      let report = try await LoadGenerator.run(configuration)
      print(json ? report.json : report.text)
    }
  }
}

/// Writes (replaces) a text file, with an error naming it.
func writeTextFile(_ path: String, _ text: String) throws {
  guard let file = fopen(path, "w") else {
    throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
  }
  defer { fclose(file) }
  let bytes = Array(text.utf8)
  guard fwrite(bytes, 1, bytes.count, file) == bytes.count else {
    throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
  }
}
