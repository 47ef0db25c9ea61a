import Logging
import ServiceLifecycle
import UnixSignals

/// Traps SIGHUP when there is no registry file to reload, so that an
/// operator's reload signal (the README's for a registry file) never kills
/// a tracker by the default action: no drain, no snapshot.
struct HangupLogger: Service {
  let logger: Logger

  func run() async throws {
    let signals = await UnixSignalsSequence(trapping: .sighup)
    await cancelWhenGracefulShutdown {
      for await _ in signals {
        logger.notice("SIGHUP ignored: there is no registry file to reload")
      }
    }
  }
}
