import NIOCore
import Testing

@testable import Frontends

/// The HTTP frontend sets no per-connection socket options (they cost a
/// system call and a chain of futures per connection); what it relies on
/// instead must hold on the accepted sockets.
@Suite struct HTTPSocketOptionsTests {
  @Test func acceptedConnectionsHaveNagleOffByInheritance() async throws {
    try await withHTTPFrontend { frontend, address in
      let client = try await TestHTTPConnection.connect(to: address)
      #expect(try await client.get("/announce").status == 200)
      let accepted = try #require(frontend.openConnections.first)
      #expect(frontend.openConnections.count == 1)
      #expect(try await accepted.getOption(.tcpOption(.tcp_nodelay)) != 0)
      #expect(try await accepted.getOption(.maxMessagesPerRead) == 4)
    }
  }
}
