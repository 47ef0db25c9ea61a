/// Where sealed batches go (Kafka, a file, a test sink).
///
/// Contract: `publish` is atomic. When it returns, the whole batch is durable;
/// when it throws, none of it may be considered delivered and the caller keeps
/// the batch and retries it (batches are retried in order). An implementation
/// may suspend inside `publish` to apply back-pressure; it must never block a thread.
public protocol DeltaSink: Sendable {
  /// Publishes one batch atomically.
  func publish(_ batch: DeltaBatch) async throws
  /// Flushes and releases resources; called once at shutdown after the last publish.
  func close() async throws
}
