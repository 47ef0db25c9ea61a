import NIOCore
import NIOPosix

/// Drives a BitTorrent tracker with announces over UDP (BEP 15) or HTTP and
/// measures throughput, errors and latency. Works against any tracker:
/// passkeys go in the path (`/<passkey>/announce`, BEP 41 over UDP) or are
/// left out (`passkeys: 0`, `/announce`).
public enum LoadGenerator {
  /// Errors before any announce is sent.
  public enum StartError: Error, CustomStringConvertible {
    /// The configuration is inconsistent.
    case invalidConfiguration(String)

    public var description: String {
      switch self {
      case .invalidConfiguration(let problem): "invalid load configuration: \(problem)"
      }
    }
  }

  /// Runs one load run on its own single-threaded event loop (one core) and
  /// returns what it measured.
  public static func run(_ configuration: LoadConfiguration) async throws -> LoadReport {
    if let problem = configuration.problem { throw StartError.invalidConfiguration(problem) }
    let address = try SocketAddress.makeAddressResolvingHost(
      configuration.host, port: configuration.port)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
      let loop = group.next()
      let report = try await loop.flatSubmit {
        LoadRun(configuration: configuration, address: address, eventLoop: loop).start()
      }.get()
      try await group.shutdownGracefully()
      return report
    } catch {
      try? await group.shutdownGracefully()
      throw error
    }
  }
}
