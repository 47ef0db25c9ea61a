import KafkaSink
import Logging
import Metrics
import Registry
import Synchronization

/// Keeps a ``Registry`` equal to its compacted Kafka topics: reads every
/// topic from the beginning to its end before ``start(configuration:registry:logger:metricsFactory:)``
/// returns (so the tracker is never ready with a partial registry), then
/// follows them until ``stop()``; a committed change is applied within a
/// poll cycle (≈ 0.1 s plus the broker's fetch wait).
///
/// One dedicated thread owns one `KafkaRecordReader` per topic (no consumer
/// group: every partition is assigned, so any number of trackers read the
/// same topics). A record that does not decode, or whose ids have the wrong
/// length, is logged with topic, partition, offset and field, counted in
/// `privtrak_registry_records_rejected_total{topic}` and skipped: the last
/// good state stays in force.
public final class KafkaRegistryFollower: Sendable {
  private struct Shared: Sendable {
    var stopRequested = false
    var started: CheckedContinuation<Result<Void, KafkaRegistryError>, Never>?
    var stopped: CheckedContinuation<Void, Never>?
    var exited = false
  }

  private let shared = Mutex(Shared())
  /// Topic names.
  public let topics: RegistryTopics

  private init(topics: RegistryTopics) {
    self.topics = topics
  }

  /// Connects, reads every registry topic to its end into `registry`, and
  /// keeps following them in the background.
  /// - Throws: ``KafkaRegistryError`` (a missing topic names it).
  public static func start(
    configuration: KafkaRegistryConfiguration, registry: Registry,
    logger: Logger = Logger(label: "privtrak.registry"),
    metricsFactory: any MetricsFactory = MetricsSystem.factory
  ) async throws(KafkaRegistryError) -> KafkaRegistryFollower {
    let follower = KafkaRegistryFollower(topics: configuration.topics)
    let metrics = FollowerMetrics(topics: configuration.topics, factory: metricsFactory)
    let result = await withCheckedContinuation {
      (continuation: CheckedContinuation<Result<Void, KafkaRegistryError>, Never>) in
      follower.shared.withLock { $0.started = continuation }
      let launched = DedicatedThread.start(name: "privtrak-registry") {
        follower.runThread(
          configuration: configuration, registry: registry, logger: logger, metrics: metrics)
      }
      if !launched { follower.finishStart(.failure(.noThread)) }
    }
    try result.get()
    return follower
  }

  /// Stops following and waits for the reader thread to close its clients.
  public func stop() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let exited = shared.withLock { shared in
        shared.stopRequested = true
        if shared.exited { return true }
        shared.stopped = continuation
        return false
      }
      if exited { continuation.resume() }
    }
  }

  private var stopRequested: Bool { shared.withLock { $0.stopRequested } }

  private func finishStart(_ result: Result<Void, KafkaRegistryError>) {
    let continuation = shared.withLock { shared in
      defer { shared.started = nil }
      return shared.started
    }
    continuation?.resume(returning: result)
  }

  private func exitThread() {
    let continuation = shared.withLock { shared in
      shared.exited = true
      defer { shared.stopped = nil }
      return shared.stopped
    }
    continuation?.resume()
  }

  // MARK: The reader thread

  private func runThread(
    configuration: KafkaRegistryConfiguration, registry: Registry, logger: Logger,
    metrics: FollowerMetrics
  ) {
    defer { exitThread() }
    let clock = ContinuousClock()
    let started = clock.now
    if configuration.createTopics {
      do throws(KafkaRegistryError) {
        try KafkaTopicCreator.createCompacted(
          bootstrap: configuration.bootstrap,
          topics: RegistryEntity.allCases.map { configuration.topics[$0] },
          properties: configuration.properties, logger: logger)
      } catch {
        finishStart(.failure(error))
        return
      }
    }
    var readers: [(entity: RegistryEntity, reader: KafkaRecordReader)] = []
    defer { for entry in readers { entry.reader.close() } }
    for entity in RegistryEntity.allCases {
      let topic = configuration.topics[entity]
      do {
        let reader = try KafkaRecordReader(
          bootstrap: configuration.bootstrap, topic: topic, properties: configuration.properties)
        readers.append((entity, reader))
      } catch KafkaDeltaReaderError.unknownTopic {
        finishStart(.failure(.missingTopic(topic)))
        return
      } catch {
        finishStart(.failure(.reading(topic: topic, message: "\(error)")))
        return
      }
    }
    // Read everything there was at start, then say so.
    var applied = 0
    while !readers.allSatisfy({ $0.reader.reachedEndAtStart }) {
      if stopRequested {
        finishStart(.failure(.reading(topic: "", message: "stopped during start-up")))
        return
      }
      if clock.now - started > configuration.startTimeout {
        finishStart(
          .failure(
            .startTimedOut(
              topics: readers.filter { !$0.reader.reachedEndAtStart }.map { $0.reader.topic },
              seconds: Int(configuration.startTimeout.components.seconds))))
        return
      }
      for entry in readers where !entry.reader.reachedEndAtStart {
        do {
          applied += try pollOnce(
            entry.reader, entity: entry.entity, timeoutMilliseconds: 20, registry: registry,
            logger: logger, metrics: metrics)
        } catch {
          finishStart(.failure(.reading(topic: entry.reader.topic, message: "\(error)")))
          return
        }
      }
    }
    let counts = registry.counts
    let elapsed = clock.now - started
    logger.notice(
      "registry read to the end of its topics",
      metadata: [
        "records": "\(applied)", "users": "\(counts.users)", "torrents": "\(counts.torrents)",
        "tokens": "\(counts.tokens)", "client_rules": "\(counts.clientRules)",
        "duration": "\(elapsed)",
      ])
    finishStart(.success(()))
    // Follow until stopped.
    var lastLagReport = clock.now
    while !stopRequested {
      for entry in readers {
        do {
          _ = try pollOnce(
            entry.reader, entity: entry.entity, timeoutMilliseconds: 20, registry: registry,
            logger: logger, metrics: metrics)
        } catch {
          // Fatal for this client (topic deleted, authorisation revoked):
          // keep serving with the last good state, say so loudly.
          logger.error(
            "registry topic unreadable; the last state read stays in force",
            metadata: ["topic": "\(entry.reader.topic)", "error": "\(error)"])
          metrics.failures.increment()
        }
      }
      if clock.now - lastLagReport >= .seconds(1) {
        lastLagReport = clock.now
        for entry in readers { metrics.lag[entry.entity]?.record(entry.reader.lag()) }
      }
    }
  }

  /// Polls one reader once and applies what it read. Returns the records read.
  private func pollOnce(
    _ reader: KafkaRecordReader, entity: RegistryEntity, timeoutMilliseconds: Int32,
    registry: Registry, logger: Logger, metrics: FollowerMetrics
  ) throws -> Int {
    let records = try reader.poll(timeoutMilliseconds: timeoutMilliseconds, maxRecords: 10_000)
    guard !records.isEmpty else { return 0 }
    var changes: [RegistryChange] = []
    changes.reserveCapacity(records.count)
    for record in records {
      do throws(RegistryRecordError) {
        changes.append(
          try RegistryRecordCodec.decode(
            RegistryRecord(entity: entity, key: record.key, value: record.value)))
      } catch {
        metrics.rejected[entity]?.increment()
        logger.error(
          "registry record skipped",
          metadata: [
            "topic": "\(reader.topic)", "partition": "\(record.partition)",
            "offset": "\(record.offset)", "problem": "\(error)",
          ])
      }
    }
    registry.apply(changes)
    metrics.records[entity]?.increment(by: records.count)
    return records.count
  }
}

/// The follower's metrics, per topic.
private final class FollowerMetrics: Sendable {
  let records: [RegistryEntity: Counter]
  let rejected: [RegistryEntity: Counter]
  let lag: [RegistryEntity: Gauge]
  let failures: Counter

  init(topics: RegistryTopics, factory: any MetricsFactory) {
    var records: [RegistryEntity: Counter] = [:]
    var rejected: [RegistryEntity: Counter] = [:]
    var lag: [RegistryEntity: Gauge] = [:]
    for entity in RegistryEntity.allCases {
      let dimensions = [("topic", topics[entity])]
      records[entity] = Counter(
        label: "privtrak_registry_records_total", dimensions: dimensions, factory: factory)
      rejected[entity] = Counter(
        label: "privtrak_registry_records_rejected_total", dimensions: dimensions, factory: factory)
      lag[entity] = Gauge(
        label: "privtrak_registry_lag_records", dimensions: dimensions, factory: factory)
    }
    self.records = records
    self.rejected = rejected
    self.lag = lag
    failures = Counter(label: "privtrak_registry_read_failures_total", factory: factory)
  }
}
