import Logging
import NIOCore
import ServiceLifecycle

/// Anything that listens for tracker requests and can be stopped.
protocol TrackerFrontend: Sendable {
  func start(group: any EventLoopGroup) async throws -> SocketAddress
  func shutdown() async throws
}

/// Runs one frontend as a lifecycle service: binds at start, stops accepting
/// on graceful shutdown (before the accounting drain runs).
struct FrontendService: Service, CustomStringConvertible {
  let name: String
  let frontend: any TrackerFrontend
  let group: any EventLoopGroup
  let logger: Logger
  let onBound: @Sendable (SocketAddress) -> Void
  /// Called when graceful shutdown begins, before the frontend stops.
  let onDraining: @Sendable () -> Void

  var description: String { "\(name) frontend" }

  func run() async throws {
    let address = try await frontend.start(group: group)
    onBound(address)
    logger.notice("\(name) frontend listening", metadata: ["address": "\(address.hostAndPort)"])
    try? await gracefulShutdown()
    onDraining()
    logger.notice("\(name) frontend stopping")
    try await frontend.shutdown()
  }
}

extension SocketAddress {
  /// `HOST:PORT` (`[v6]:PORT` for IPv6), the form operators and scripts read.
  var hostAndPort: String {
    let host = ipAddress ?? "?"
    let port = port ?? 0
    return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
  }
}
