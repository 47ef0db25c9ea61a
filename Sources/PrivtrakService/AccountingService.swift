import Accounting
import DeltaModel
import ServiceLifecycle

/// Runs the accounting middleware's publishing, GC and snapshot loops as a
/// lifecycle service. On graceful shutdown (after the frontends stopped
/// accepting) it drains: seals and publishes what is pending, writes the
/// snapshot with whatever could not be delivered, closes the sink.
struct AccountingService: Service, CustomStringConvertible {
  let middleware: AccountingMiddleware

  var description: String { "accounting" }

  func run() async throws {
    await cancelWhenGracefulShutdown { await middleware.run() }
  }
}

/// A sink that drops every batch: for benchmarks that measure the tracker
/// without any delivery cost. Never the default.
struct DiscardingSink: DeltaSink {
  func publish(_ batch: DeltaBatch) async throws {}
  func close() async throws {}
}
