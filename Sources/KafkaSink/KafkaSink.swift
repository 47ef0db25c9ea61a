import DeltaModel
import Logging
import Metrics
import Synchronization

/// A `DeltaSink` that publishes each batch to Kafka in one transaction
/// (librdkafka transactional producer), or idempotently at least once.
///
/// - Bounded: at most `maxInFlightDeltas` deltas and `maxInFlightBytes`
///   encoded bytes are admitted and not yet durable; further `publish` calls
///   suspend (no thread blocked) in a FIFO of at most `maxWaitingPublishers`.
/// - Ordered: batches are published one after another in admission order.
/// - Durable: `publish` returns once the batch is committed; retriable
///   failures are retried until then. It throws only when the sink is
///   fenced, failed fatally, saturated, closed, or the task was cancelled
///   while waiting for room; the caller then keeps the batch.
///
/// Lifecycle: `start` (checks the librdkafka version, the cluster, the topic,
/// initialises transactions), `publish` many times, `close` once. Readiness:
/// `state`, `isReady`, `isFenced`.
public final class KafkaSink: DeltaSink {
  /// The configuration the sink runs with.
  public let configuration: KafkaSinkConfiguration
  /// The librdkafka loaded at run time.
  public let librdkafkaVersion: LibrdkafkaVersion

  /// Runs the `ProducerEngine`, which only its jobs can reach.
  private let thread: ProducerThread<ProducerEngine>
  private let admission: AdmissionQueue<ProducerThread<ProducerEngine>.Job>
  private let shutdownDeadline: ShutdownDeadline
  private let status: SinkStatus
  private let metrics: KafkaSinkMetrics
  private let logger: Logger
  private let closing = Mutex(false)

  private init(
    configuration: KafkaSinkConfiguration, version: LibrdkafkaVersion,
    thread: ProducerThread<ProducerEngine>,
    admission: AdmissionQueue<ProducerThread<ProducerEngine>.Job>,
    shutdownDeadline: ShutdownDeadline, status: SinkStatus, metrics: KafkaSinkMetrics,
    logger: Logger
  ) {
    self.configuration = configuration
    self.librdkafkaVersion = version
    self.thread = thread
    self.admission = admission
    self.shutdownDeadline = shutdownDeadline
    self.status = status
    self.metrics = metrics
    self.logger = logger
  }

  deinit {
    // Not closed: let the thread destroy the producer and exit on its own.
    if !closing.withLock({ $0 }) {
      thread.stop(finally: { engine in engine.shutdown() })
    }
  }

  /// Starts a sink: refuses a librdkafka older than 2.2.0 (warns below
  /// 2.5.0), validates the configuration, connects, checks that the topic
  /// exists and initialises transactions, all within
  /// `startupTimeoutMilliseconds`.
  /// - Throws: `KafkaSinkError` naming the setting to fix
  ///   (`kafka.bootstrap`, `kafka.topic`, ...).
  public static func start(
    configuration: KafkaSinkConfiguration,
    logger: Logger = Logger(label: "privtrak.kafka"),
    metricsFactory: any MetricsFactory = MetricsSystem.factory
  ) async throws(KafkaSinkError) -> KafkaSink {
    let version = LibrdkafkaVersion.runtime
    switch LibrdkafkaVersionAssessment(version) {
    case .unsupported(let message):
      logger.critical("\(message)")
      throw .unsupportedLibrdkafka(version: version, message: message)
    case .supportedWithWarning(let message):
      logger.warning("\(message)")
    case .supported:
      break
    }
    try configuration.validate()

    let metrics = KafkaSinkMetrics(topic: configuration.topic, factory: metricsFactory)
    let status = SinkStatus()
    let thread = ProducerThread<ProducerEngine>(
      name: "privtrak-kafka", idleIntervalMilliseconds: 100)
    let admission = AdmissionQueue<ProducerThread<ProducerEngine>.Job>(
      limit: InFlightUsage(
        deltas: configuration.maxInFlightDeltas, bytes: configuration.maxInFlightBytes),
      maxWaiters: configuration.maxWaitingPublishers,
      dispatch: { job in thread.submit(job) },
      observe: { usage, waiting in
        metrics.inFlightDeltas.record(usage.deltas)
        metrics.inFlightBytes.record(usage.bytes)
        metrics.waitingPublishers.record(waiting)
      })
    let shutdownDeadline = ShutdownDeadline()
    let context = SinkContext(
      configuration: configuration, logger: logger, metrics: metrics, status: status)
    // The engine is created on the producer thread and stays there.
    try thread.start(makeContext: {
      ProducerEngine(
        context: context, shutdownDeadline: shutdownDeadline,
        // Once fenced or failed, waiting publishers fail at once with the reason.
        onTerminal: { error in admission.reject(with: error) })
    })

    let started: Result<Void, KafkaSinkError> = await withCheckedContinuation { continuation in
      thread.submit { engine in
        do throws(KafkaSinkError) {
          try engine.start()
          continuation.resume(returning: .success(()))
        } catch {
          continuation.resume(returning: .failure(error))
        }
      }
    }
    if case .failure(let error) = started {
      logger.error("Kafka sink did not start", metadata: ["error": "\(error)"])
      await withCheckedContinuation { continuation in
        thread.stop(finally: { engine in
          engine.discard()  // nothing was produced: no flush
          continuation.resume()
        })
      }
      throw error
    }
    thread.setIdleJob { engine in engine.poll() }
    return KafkaSink(
      configuration: configuration, version: version, thread: thread, admission: admission,
      shutdownDeadline: shutdownDeadline, status: status, metrics: metrics, logger: logger)
  }

  /// Publishes `batch` atomically; returns once it is durable. Suspends
  /// while the in-flight bound is full. An empty batch returns at once.
  /// - Throws: `KafkaSinkError.fenced`, `.fatal`, `.closed`, `.saturated`,
  ///   or `CancellationError` (only while waiting for room; an admitted
  ///   batch runs to its outcome). After a throw the caller keeps the batch:
  ///   read_committed consumers of a broker that filters aborted
  ///   transactions never saw it, except when `close` gave up on a commit
  ///   still in progress; consumers deduplicate on `DeltaOrigin` for that
  ///   case and for brokers that do not filter (Tansu).
  public func publish(_ batch: DeltaBatch) async throws {
    guard !batch.deltas.isEmpty else { return }
    do {
      if let error = status.terminalError { throw error }
      let encoded = EncodedBatch(
        batch, framing: configuration.framing, deltaHeaders: configuration.deltaHeaders)
      let usage = InFlightUsage(deltas: encoded.deltaCount, bytes: encoded.byteCount)
      let id = admission.reserveID()
      let admission = admission
      try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation {
          (continuation: CheckedContinuation<Void, any Error>) in
          admission.enqueue(
            id: id, usage: usage,
            job: { engine in
              let result = engine.publish(encoded)
              admission.release(usage)
              continuation.resume(with: result.mapError { $0 })
            },
            fail: { continuation.resume(throwing: $0) })
        }
      } onCancel: {
        admission.cancel(id: id)
      }
    } catch {
      metrics.publishFailures(Self.failureReason(error)).increment()
      throw error
    }
  }

  /// Stops admitting batches (waiting publishers fail with `.closed`), lets
  /// admitted batches finish for up to `shutdownTimeoutMilliseconds` (the
  /// rest fail with `.closed`, their callers keep them), then destroys the
  /// producer. Later calls return at once.
  public func close() async throws {
    let first = closing.withLock { closing in
      defer { closing = true }
      return !closing
    }
    guard first else { return }
    status.transition(to: .closing)
    admission.reject(with: .closed)
    shutdownDeadline.request(within: configuration.shutdownTimeoutMilliseconds)
    await withCheckedContinuation { continuation in
      thread.stop(finally: { engine in
        engine.shutdown()
        continuation.resume()
      })
    }
    status.transition(to: .closed, error: .closed)
    metrics.ready.record(0)
    logger.info("Kafka sink closed", metadata: ["state": "\(status.state)"])
  }

  /// Where the sink is in its life.
  public var state: KafkaSinkState { status.state }
  /// Whether the instance should receive traffic (`/readyz`): false before
  /// start completes, once fenced or failed, and when closing.
  public var isReady: Bool { status.state.isReady }
  /// Whether another producer with the same transactional id took over.
  public var isFenced: Bool {
    if case .fenced = status.state { return true }
    return false
  }
  /// Deltas and bytes admitted and not yet durable or failed.
  public var inFlight: InFlightUsage { admission.inFlight }
  /// The most deltas and the most bytes ever in flight at once.
  public var peakInFlight: InFlightUsage { admission.peak }
  /// The in-flight bound (`maxInFlightDeltas`, `maxInFlightBytes`).
  public var inFlightLimit: InFlightUsage { admission.limit }
  /// Publishers suspended waiting for room.
  public var waitingPublishers: Int { admission.waiting }

  private static func failureReason(_ error: any Error) -> String {
    switch error {
    case KafkaSinkError.fenced: "fenced"
    case KafkaSinkError.fatal: "fatal"
    case KafkaSinkError.closed: "closed"
    case KafkaSinkError.saturated: "saturated"
    case is CancellationError: "cancelled"
    default: "other"
    }
  }
}
