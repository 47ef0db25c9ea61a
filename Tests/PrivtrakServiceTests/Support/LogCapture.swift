import Logging
import Synchronization

/// Keeps every line logged through its ``logger(level:)`` in memory —
/// message, metadata, error and source — for tests that check what a
/// server would have written. Per instance, so tests running in parallel
/// never share it (no global `LoggingSystem.bootstrap`).
final class LogCapture: Sendable {
  private let lines = Mutex<[String]>([])

  /// Every line so far, rendered as a log backend would print it.
  var all: [String] { lines.withLock { $0 } }

  fileprivate func append(_ line: String) {
    lines.withLock { $0.append(line) }
  }

  /// A logger writing here, at `level` and above.
  func logger(level: Logger.Level = .trace) -> Logger {
    var logger = Logger(label: "privtrak") { _ in CapturingLogHandler(capture: self) }
    logger.logLevel = level
    return logger
  }
}

private struct CapturingLogHandler: LogHandler {
  let capture: LogCapture
  var metadata: Logger.Metadata = [:]
  var metadataProvider: Logger.MetadataProvider?
  var logLevel: Logger.Level = .trace

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    var all = metadata
    if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
    if let extra = event.metadata { all.merge(extra) { $1 } }
    var line = "\(event.level) \(event.source): \(event.message)"
    for (key, value) in all.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
    if let error = event.error { line += " error=\(error)" }
    capture.append(line)
  }
}
