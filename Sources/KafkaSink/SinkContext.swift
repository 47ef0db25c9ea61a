import Logging

/// What every part of the producer side shares, all immutable or
/// thread-safe: the configuration, the logger, the metrics and the status
/// readers see.
struct SinkContext: Sendable {
  let configuration: KafkaSinkConfiguration
  let logger: Logger
  let metrics: KafkaSinkMetrics
  let status: SinkStatus
}
