import Frontends
import NIOCore
import NIOPosix
import Tracker

/// Runs `body` against a started HTTP frontend on an ephemeral port of
/// `host`, shutting it down afterwards whatever happens.
func withHTTPFrontend<Result>(
  tracker: Tracker = Tracker(), host: String = "127.0.0.1",
  configure: (inout HTTPFrontendConfiguration) -> Void = { _ in },
  _ body: (HTTPFrontend, SocketAddress) async throws -> Result
) async throws -> Result {
  var configuration = HTTPFrontendConfiguration(host: host, port: 0)
  configure(&configuration)
  let frontend = HTTPFrontend(configuration: configuration, tracker: tracker, logger: testLogger)
  let address = try await frontend.start()
  do {
    let result = try await body(frontend, address)
    try await frontend.shutdown()
    return result
  } catch {
    try? await frontend.shutdown()
    throw error
  }
}

/// Runs `body` against a started UDP frontend on an ephemeral port of `host`.
func withUDPFrontend<Result>(
  tracker: Tracker = Tracker(), host: String = "127.0.0.1", clock: (any TrackerClock)? = nil,
  configure: (inout UDPFrontendConfiguration) -> Void = { _ in },
  _ body: (UDPFrontend, SocketAddress) async throws -> Result
) async throws -> Result {
  var configuration = UDPFrontendConfiguration(host: host, port: 0)
  configure(&configuration)
  let frontend = UDPFrontend(
    configuration: configuration, tracker: tracker, clock: clock, logger: testLogger)
  let address = try await frontend.start()
  do {
    let result = try await body(frontend, address)
    try await frontend.shutdown()
    return result
  } catch {
    try? await frontend.shutdown()
    throw error
  }
}
