import ArgumentParser
import DeltaModel
import PrivtrakService
import Registry

#if canImport(Glibc)
  import Glibc
#endif

/// `privtrak`: a BitTorrent private tracker with exact per-user accounting.
@main
struct Privtrak: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "privtrak",
    abstract:
      "A BitTorrent private tracker whose accounting middleware publishes exact per-user deltas.",
    subcommands: [
      Serve.self, CheckConfig.self, Tail.self, Bench.self, RegistryCommand.self, LedgerCommand.self,
      ShardCommand.self,
    ],
    defaultSubcommand: Serve.self)
}

/// Reads and validates the configuration file plus environment overrides.
/// `overriding` entries win over the environment (command-line flags).
func loadConfiguration(path: String?, overriding: [String: String] = [:]) throws
  -> ServiceConfiguration
{
  var environment: [String: String] = [:]
  var cursor = environ
  while let entry = cursor.pointee {
    let text = String(cString: entry)
    if let equals = text.firstIndex(of: "=") {
      environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
    }
    cursor += 1
  }
  environment.merge(overriding) { _, flag in flag }
  guard let path else {
    return try ServiceConfiguration.parse(
      yaml: "", file: "(built-in defaults)", environment: environment)
  }
  return try ServiceConfiguration.load(file: path, environment: environment)
}

extension Privtrak {
  /// Runs the tracker until SIGTERM or SIGINT.
  struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the tracker.")

    @Option(name: .long, help: "YAML configuration file (defaults are used when omitted).")
    var config: String?

    @Option(name: .long, help: "HTTP listen address HOST:PORT, or 'off' (overrides http.listen).")
    var http: String?

    @Option(name: .long, help: "UDP listen address HOST:PORT, or 'off' (overrides udp.listen).")
    var udp: String?

    @Option(
      name: .long,
      help:
        "Admin listen address for /metrics, /healthz, /readyz, or 'off' (overrides admin.listen)."
    )
    var admin: String?

    @Option(
      name: .long,
      help:
        "Delta sink: file:PATH, kafka://HOST:PORT/TOPIC or null: (discards, benchmarks only) (overrides sink.url)."
    )
    var sink: String?

    @Option(
      name: .long,
      help:
        "Registry: file:PATH or kafka://HOST:PORT[,HOST:PORT] (overrides registry.source)."
    )
    var registry: String?

    func run() async throws {
      var overrides: [String: String] = [:]
      // Through the same parsing and validation as the key itself.
      if let registry { overrides["PRIVTRAK_REGISTRY_SOURCE"] = registry }
      var configuration = try loadConfiguration(path: config, overriding: overrides)
      if let http {
        configuration.httpListen = try parseListen(http, flag: "--http")
      }
      if let udp {
        configuration.udpListen = try parseListen(udp, flag: "--udp")
      }
      if let admin {
        configuration.adminListen = try parseListen(admin, flag: "--admin")
      }
      if let sink {
        guard let url = ServiceConfiguration.SinkURL(parsing: sink) else {
          throw ValidationError(
            "--sink: expected file:PATH, kafka://HOST:PORT/TOPIC or null:, got '\(sink)'")
        }
        configuration.sink = url
      }
      try await PrivtrakServer(configuration: configuration).run()
    }

    private func parseListen(_ text: String, flag: String) throws -> ListenAddress? {
      if text == "off" { return nil }
      guard let address = ListenAddress(parsing: text) else {
        throw ValidationError("\(flag): expected HOST:PORT, [IPv6]:PORT or off, got '\(text)'")
      }
      return address
    }
  }

  /// Validates a configuration file without starting anything.
  struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "check-config", abstract: "Validate a configuration file and exit.")

    @Argument(help: "The YAML configuration file.")
    var file: String

    func run() async throws {
      do {
        let configuration = try loadConfiguration(path: file)
        if case .file(let path)? = configuration.registry.source {
          // A registry file that does not parse would stop `serve`: say so now.
          _ = try RegistryFile.load(path: path)
        }
        print(
          "\(file): OK (http \(configuration.httpListen?.description ?? "off"), udp \(configuration.udpListen?.description ?? "off"), admin \(configuration.adminListen?.description ?? "off"), sink \(configuration.sink), registry \(configuration.registry.source?.description ?? "none") (users \(configuration.registry.modes.users.rawValue), torrents \(configuration.registry.modes.torrents.rawValue))\(configuration.trackerShard.count > 1 ? ", tracker \(configuration.trackerShard)" : ""))"
        )
      } catch let error as ConfigurationError {
        FileHandleStandardError.write(error.description)
        throw ExitCode(2)
      } catch let error as RegistryFileError {
        FileHandleStandardError.write(error.description)
        throw ExitCode(2)
      }
    }
  }
}

/// Writes a line to standard error (errors must not mix with data on stdout).
enum FileHandleStandardError {
  static func write(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
  }
}
