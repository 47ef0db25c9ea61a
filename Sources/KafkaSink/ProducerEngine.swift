import CRdKafka
import Logging
import Synchronization

/// Owns the librdkafka producer. Every method except `requestShutdown` runs
/// on the producer thread, and so do the delivery-report and error callbacks
/// (librdkafka serves them inside poll, flush and commit, which only that
/// thread calls).
final class ProducerEngine: @unchecked Sendable {
    // @unchecked: mutable state is confined to the producer thread;
    // `shutdownDeadline` is atomic; the rest is immutable and Sendable.

    /// How one attempt at a batch ended.
    private enum AttemptOutcome {
        /// Committed (or, at least once, every record acknowledged).
        case durable
        /// Not durable; try again after a pause.
        case retry(reason: String)
        /// The producer is unusable (fenced, fatal).
        case terminal(KafkaSinkError)
        /// The shutdown deadline passed mid-attempt.
        case abandoned
    }

    let configuration: KafkaSinkConfiguration
    let logger: Logger
    let metrics: KafkaSinkMetrics
    let status: SinkStatus
    /// Told once when the producer becomes unusable, from the producer thread.
    private let onTerminal: @Sendable (KafkaSinkError) -> Void

    /// The monotonic time (ns) after which retries stop: `.max` until `close`.
    private let shutdownDeadline = Atomic<Int64>(.max)

    private var client: OpaquePointer?
    private var topic: OpaquePointer?
    private var values: UnsafeMutablePointer<rd_kafka_vu_t>
    private var valueCapacity: Int

    /// Errors seen through the error callback, for start-up diagnostics.
    private var lastClientError: String?
    private var authenticationError: String?
    private var terminalReported = false

    /// Delivery tracking of the current attempt (tags carry the generation).
    private var deliveryGeneration: UInt = 0
    private var pendingDeliveries = 0
    private var failedDeliveries = 0
    private var lastDeliveryError: String?

    init(
        configuration: KafkaSinkConfiguration, logger: Logger, metrics: KafkaSinkMetrics, status: SinkStatus,
        onTerminal: @escaping @Sendable (KafkaSinkError) -> Void
    ) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.status = status
        self.onTerminal = onTerminal
        valueCapacity = 8
        values = .allocate(capacity: valueCapacity)
    }

    deinit {
        values.deallocate()
    }

    // MARK: Start-up

    /// Creates the producer, checks that the cluster answers and the topic
    /// exists, and initialises transactions, all within the start-up timeout.
    func start() throws(KafkaSinkError) {
        let deadline = monotonicNanoseconds() + Int64(configuration.startupTimeoutMilliseconds) * 1_000_000
        try createClient()
        try checkTopic(until: deadline)
        if configuration.deliveryMode == .exactlyOnce {
            try initialiseTransactions(until: deadline)
        }
        status.transition(to: .ready)
        metrics.ready.record(1)
        logger.info(
            "Kafka sink ready",
            metadata: [
                "kafka.bootstrap": "\(configuration.bootstrap)", "kafka.topic": "\(configuration.topic)",
                "kafka.delivery": "\(configuration.deliveryMode.rawValue)",
                "kafka.transactional_id": "\(configuration.deliveryMode == .exactlyOnce ? configuration.transactionalID : "-")",
                "librdkafka": "\(LibrdkafkaVersion.runtime)",
            ])
    }

    private func createClient() throws(KafkaSinkError) {
        var errorText = [CChar](repeating: 0, count: 512)
        guard let conf = rd_kafka_conf_new() else { throw .fatal(detail: "rd_kafka_conf_new failed") }
        for property in configuration.librdkafkaProperties {
            guard rd_kafka_conf_set(conf, property.name, property.value, &errorText, errorText.count) == RD_KAFKA_CONF_OK
            else {
                rd_kafka_conf_destroy(conf)
                let shown = Self.isSecret(property.name) ? "<redacted>" : property.value
                throw .invalidSetting(
                    setting: property.setting, message: "\(property.name)=\(shown): \(String(nulTerminated: errorText))")
            }
        }
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(self).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
        rd_kafka_conf_set_error_cb(conf, errorCallback)
        rd_kafka_conf_set_log_cb(conf, logCallback)
        guard let created = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)  // only freed by rd_kafka_new on success
            throw .invalidSetting(setting: KafkaSetting.properties, message: String(nulTerminated: errorText))
        }
        client = created
        topic = rd_kafka_topic_new(created, configuration.topic, nil)
    }

    private func checkTopic(until deadline: Int64) throws(KafkaSinkError) {
        guard let client, let topic else { return }
        var lastProblem = "no answer"
        while true {
            let remaining = Self.milliseconds(until: deadline)
            if remaining <= 0 { break }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let result = rd_kafka_metadata(client, 0, topic, &metadata, Int32(clamping: remaining))
            rd_kafka_poll(client, 0)  // collect transport and authentication errors
            if let authenticationError {
                throw .authenticationFailed(setting: KafkaSetting.properties, detail: authenticationError)
            }
            if result == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata {
                defer { rd_kafka_metadata_destroy(metadata) }
                let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
                if let entry = topics.first(where: { String(cString: $0.topic) == configuration.topic }) {
                    switch entry.err {
                    case RD_KAFKA_RESP_ERR_NO_ERROR where entry.partition_cnt > 0:
                        logger.debug(
                            "Kafka topic found",
                            metadata: ["kafka.topic": "\(configuration.topic)", "partitions": "\(entry.partition_cnt)"])
                        return
                    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART where !configuration.allowTopicAutoCreation:
                        throw .unknownTopic(setting: KafkaSetting.topic, topic: configuration.topic)
                    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
                        throw .authorizationFailed(
                            setting: KafkaSetting.topic, detail: "no permission to describe or write \(configuration.topic)")
                    default:
                        lastProblem = "topic metadata: \(Self.describe(entry.err))"
                    }
                } else {
                    lastProblem = "topic missing from the metadata reply"
                }
            } else {
                lastProblem = lastClientError ?? Self.describe(result)
            }
            rd_kafka_poll(client, Int32(clamping: min(100, Self.milliseconds(until: deadline))))
        }
        if lastProblem.hasPrefix("topic") {
            throw .startupFailed(
                setting: KafkaSetting.topic,
                detail: "topic \(configuration.topic) not usable within \(configuration.startupTimeoutMilliseconds) ms: \(lastProblem)")
        }
        throw .bootstrapUnreachable(
            setting: KafkaSetting.bootstrap, bootstrap: configuration.bootstrap,
            detail: "no metadata within \(configuration.startupTimeoutMilliseconds) ms: \(lastProblem)")
    }

    private func initialiseTransactions(until deadline: Int64) throws(KafkaSinkError) {
        guard let client else { return }
        var lastProblem = "timed out"
        while true {
            let remaining = Self.milliseconds(until: deadline)
            if remaining <= 0 { break }
            guard let error = rd_kafka_init_transactions(client, Int32(clamping: remaining)) else { return }
            defer { rd_kafka_error_destroy(error) }
            let code = rd_kafka_error_code(error)
            lastProblem = Self.describe(error)
            if code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED {
                throw .authorizationFailed(setting: KafkaSetting.transactionalID, detail: lastProblem)
            }
            if rd_kafka_error_is_fatal(error) != 0 {
                throw .startupFailed(setting: KafkaSetting.transactionalID, detail: "init_transactions: \(fatalReason())")
            }
            if rd_kafka_error_is_retriable(error) == 0 {
                throw .startupFailed(setting: KafkaSetting.transactionalID, detail: "init_transactions: \(lastProblem)")
            }
            rd_kafka_poll(client, Int32(clamping: min(100, Self.milliseconds(until: deadline))))
        }
        throw .startupFailed(
            setting: KafkaSetting.transactionalID,
            detail:
                "transactions not initialised within \(configuration.startupTimeoutMilliseconds) ms (\(lastProblem)); "
                + "a previous producer with this transactional.id may still be committing")
    }

    // MARK: Publishing

    /// Makes `batch` durable, retrying until it is, the producer becomes
    /// unusable, or the shutdown deadline passes. Blocks the producer thread.
    func publish(_ batch: EncodedBatch) -> Result<Void, KafkaSinkError> {
        let started = monotonicNanoseconds()
        var attempt = 0
        while true {
            if let terminal = status.terminalError { return .failure(terminal) }
            if shutdownExpired { return .failure(.closed) }
            let outcome =
                configuration.deliveryMode == .exactlyOnce ? transactionAttempt(batch) : acknowledgedAttempt(batch)
            switch outcome {
            case .durable:
                metrics.batchesCommitted.increment()
                metrics.deltasCommitted.increment(by: Int64(batch.deltaCount))
                metrics.recordsCommitted.increment(by: Int64(batch.records.count))
                metrics.bytesCommitted.increment(by: Int64(batch.byteCount))
                metrics.publishDuration.recordNanoseconds(monotonicNanoseconds() - started)
                if attempt > 0 {
                    logger.info(
                        "Kafka batch durable after retries",
                        metadata: ["attempts": "\(attempt + 1)", "deltas": "\(batch.deltaCount)"])
                }
                status.transition(to: .ready)
                return .success(())
            case .terminal(let error):
                enterTerminal(error)
                return .failure(error)
            case .abandoned:
                logger.warning(
                    "Kafka batch abandoned: shutdown timeout passed before it became durable; the caller keeps it",
                    metadata: ["deltas": "\(batch.deltaCount)", "attempts": "\(attempt + 1)"])
                return .failure(.closed)
            case .retry(let reason):
                attempt += 1
                metrics.batchRetries.increment()
                status.transition(to: .retrying(reason: reason))
                // Every attempt up to 3, then powers of two: visible, not a flood.
                let level: Logger.Level = attempt <= 3 || attempt & (attempt - 1) == 0 ? .warning : .debug
                logger.log(
                    level: level, "Kafka batch not durable yet; retrying",
                    metadata: ["reason": "\(reason)", "attempt": "\(attempt)", "deltas": "\(batch.deltaCount)"])
                pause(milliseconds: backoffMilliseconds(attempt: attempt))
            }
        }
    }

    /// One transaction: begin, produce every record, commit.
    private func transactionAttempt(_ batch: EncodedBatch) -> AttemptOutcome {
        guard let client else { return .terminal(.closed) }
        if let error = rd_kafka_begin_transaction(client) {
            defer { rd_kafka_error_destroy(error) }
            if let terminal = terminalError(for: error) { return .terminal(terminal) }
            let reason = "begin_transaction: \(Self.describe(error))"
            return abortThenRetry(reason: reason)
        }
        startDeliveryTracking(records: batch.records.count)
        if let failure = produce(batch) {
            switch failure {
            case .terminal(let error): return .terminal(error)
            case .retry(let reason): return abortThenRetry(reason: reason)
            case .abandoned, .durable: return abortThenRetry(reason: "produce interrupted")
            }
        }
        while true {
            guard let error = rd_kafka_commit_transaction(client, Int32(configuration.operationTimeoutMilliseconds))
            else { return .durable }
            defer { rd_kafka_error_destroy(error) }
            if let terminal = terminalError(for: error) { return .terminal(terminal) }
            let reason = "commit_transaction: \(Self.describe(error))"
            if rd_kafka_error_txn_requires_abort(error) != 0 {
                return abortThenRetry(reason: reason + deliveryErrorSuffix)
            }
            if rd_kafka_error_is_retriable(error) != 0 {
                // Resumable: calling commit again continues the same commit.
                if shutdownExpired {
                    // The commit may still complete in the background; the
                    // caller republishes and consumers dedupe on DeltaOrigin.
                    _ = abortTransaction()
                    return .abandoned
                }
                metrics.batchRetries.increment()
                status.transition(to: .retrying(reason: reason))
                logger.debug("Kafka commit not finished yet; calling it again", metadata: ["reason": "\(reason)"])
                continue
            }
            // Neither retriable nor abortable: librdkafka advises treating it as
            // fatal; an abort that succeeds shows the producer still works.
            return abortThenRetry(reason: reason)
        }
    }

    /// Idempotent, non-transactional: produce every record, wait for every
    /// delivery report; any failure resends the whole batch (in order).
    private func acknowledgedAttempt(_ batch: EncodedBatch) -> AttemptOutcome {
        guard let client else { return .terminal(.closed) }
        startDeliveryTracking(records: batch.records.count)
        let produceFailure = produce(batch)
        while pendingDeliveries > 0 {
            rd_kafka_flush(client, 100)
            if let terminal = status.terminalError { return .terminal(terminal) }
            if shutdownExpired {
                rd_kafka_purge(client, RD_KAFKA_PURGE_F_QUEUE)
                return .abandoned
            }
        }
        if let produceFailure { return produceFailure }
        if failedDeliveries > 0 {
            return .retry(reason: "\(failedDeliveries) of \(batch.records.count) records undeliverable\(deliveryErrorSuffix)")
        }
        return .durable
    }

    /// Hands every record of `batch` to librdkafka (copied). Returns nil when
    /// all were accepted; records not produced are taken off the pending count.
    private func produce(_ batch: EncodedBatch) -> AttemptOutcome? {
        guard let client, let topic else { return .terminal(.closed) }
        let maxHeaders = batch.records.lazy.map(\.headers.count).max() ?? 0
        ensureValueCapacity(5 + maxHeaders)
        return batch.storage.withUnsafeBytes { raw -> AttemptOutcome? in
            guard let base = raw.baseAddress else { return nil }
            let mutableBase = UnsafeMutableRawPointer(mutating: base)
            for (index, record) in batch.records.enumerated() {
                values[0].vtype = RD_KAFKA_VTYPE_RKT
                values[0].u.rkt = topic
                values[1].vtype = RD_KAFKA_VTYPE_KEY
                values[1].u.mem.ptr = record.key.isEmpty ? nil : mutableBase + record.key.lowerBound
                values[1].u.mem.size = record.key.count
                values[2].vtype = RD_KAFKA_VTYPE_VALUE
                values[2].u.mem.ptr = record.value.isEmpty ? nil : mutableBase + record.value.lowerBound
                values[2].u.mem.size = record.value.count
                values[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                values[3].u.i = RD_KAFKA_MSG_F_COPY
                values[4].vtype = RD_KAFKA_VTYPE_OPAQUE
                values[4].u.ptr = UnsafeMutableRawPointer(bitPattern: deliveryTag(index: index))
                var count = 5
                for header in batch.headers[record.headers] {
                    values[count].vtype = RD_KAFKA_VTYPE_HEADER
                    values[count].u.header.name = (base + header.nameOffset).assumingMemoryBound(to: CChar.self)
                    values[count].u.header.val = UnsafeRawPointer(base + header.value.lowerBound)
                    values[count].u.header.size = header.value.count
                    count += 1
                }
                while true {
                    guard let error = rd_kafka_produceva(client, values, count) else { break }
                    let code = rd_kafka_error_code(error)
                    let terminal = terminalError(for: error)
                    let description = Self.describe(error)
                    rd_kafka_error_destroy(error)
                    if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                        rd_kafka_poll(client, 10)  // let librdkafka drain its queue, then try again
                        continue
                    }
                    pendingDeliveries -= batch.records.count - index
                    if let terminal { return .terminal(terminal) }
                    return .retry(reason: "produce: \(description)")
                }
            }
            return nil
        }
    }

    /// Aborts the open transaction, then asks for a retry (or reports why not).
    private func abortThenRetry(reason: String) -> AttemptOutcome {
        switch abortTransaction() {
        case .aborted: return .retry(reason: reason)
        case .terminal(let error): return .terminal(error)
        case .abandoned: return .abandoned
        }
    }

    private enum AbortOutcome {
        case aborted
        case terminal(KafkaSinkError)
        case abandoned
    }

    private func abortTransaction() -> AbortOutcome {
        guard let client else { return .terminal(.closed) }
        while true {
            guard let error = rd_kafka_abort_transaction(client, Int32(configuration.operationTimeoutMilliseconds))
            else {
                metrics.transactionsAborted.increment()
                return .aborted
            }
            defer { rd_kafka_error_destroy(error) }
            if let terminal = terminalError(for: error) { return .terminal(terminal) }
            if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__STATE {
                return .aborted  // no transaction in progress: nothing to abort
            }
            if rd_kafka_error_is_retriable(error) == 0 {
                return .terminal(.fatal(detail: "abort_transaction: \(Self.describe(error))"))
            }
            if shutdownExpired { return .abandoned }
            status.transition(to: .retrying(reason: "abort_transaction: \(Self.describe(error))"))
        }
    }

    // MARK: Callbacks (producer thread)

    func deliveryReported(error: rd_kafka_resp_err_t, tag: UInt) {
        if error != RD_KAFKA_RESP_ERR_NO_ERROR {
            metrics.deliveryFailures.increment()
            lastDeliveryError = Self.describe(error)
        }
        guard tag >> 32 == deliveryGeneration & 0xffff_ffff, pendingDeliveries > 0 else { return }
        pendingDeliveries -= 1
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { failedDeliveries += 1 }
    }

    func clientErrorReported(code: rd_kafka_resp_err_t, reason: String) {
        metrics.clientErrors(String(cString: rd_kafka_err2name(code))).increment()
        switch code {
        case RD_KAFKA_RESP_ERR__FATAL:
            enterTerminal(fatalProducerError(fallback: reason))
        case RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
            authenticationError = reason
            logger.error("Kafka authentication failed", metadata: ["reason": "\(reason)"])
        default:
            lastClientError = reason
            logger.warning(
                "Kafka client error", metadata: ["error": "\(Self.describe(code))", "reason": "\(reason)"])
        }
    }

    // MARK: Idle, shutdown

    /// Serves callbacks while no batch is in progress.
    func poll() {
        if let client { rd_kafka_poll(client, 0) }
    }

    /// Retries stop once `milliseconds` have passed; any thread may call it.
    func requestShutdown(within milliseconds: Int) {
        shutdownDeadline.store(monotonicNanoseconds() + Int64(milliseconds) * 1_000_000, ordering: .relaxed)
    }

    /// Flushes what is left (nothing, in transactional mode) and destroys the producer.
    func shutdown() {
        guard let client else { return }
        if status.terminalError == nil {
            let remaining = Self.milliseconds(until: shutdownDeadline.load(ordering: .relaxed))
            rd_kafka_flush(client, Int32(clamping: min(remaining, configuration.shutdownTimeoutMilliseconds)))
        }
        if let topic { rd_kafka_topic_destroy(topic) }
        topic = nil
        rd_kafka_destroy(client)
        self.client = nil
    }

    // MARK: Helpers

    private var shutdownExpired: Bool {
        monotonicNanoseconds() >= shutdownDeadline.load(ordering: .relaxed)
    }

    private func startDeliveryTracking(records: Int) {
        deliveryGeneration &+= 1
        pendingDeliveries = records
        failedDeliveries = 0
        lastDeliveryError = nil
    }

    /// The per-record opaque: attempt generation (high 32 bits) and record index + 1.
    private func deliveryTag(index: Int) -> UInt {
        (deliveryGeneration & 0xffff_ffff) << 32 | UInt(index + 1) & 0xffff_ffff
    }

    private var deliveryErrorSuffix: String {
        lastDeliveryError.map { " (delivery: \($0))" } ?? ""
    }

    private func ensureValueCapacity(_ needed: Int) {
        guard needed > valueCapacity else { return }
        values.deallocate()
        valueCapacity = needed
        values = .allocate(capacity: needed)
    }

    /// Sleeps on the producer thread while serving callbacks, waking early at the shutdown deadline.
    private func pause(milliseconds: Int) {
        guard let client else { return }
        let until = monotonicNanoseconds() + Int64(milliseconds) * 1_000_000
        while !shutdownExpired {
            let remaining = Self.milliseconds(until: until)
            if remaining <= 0 { return }
            rd_kafka_poll(client, Int32(clamping: min(remaining, 100)))
        }
    }

    private func backoffMilliseconds(attempt: Int) -> Int {
        let doublings = min(attempt - 1, 20)
        return min(configuration.retryBackoffMilliseconds << doublings, configuration.maxRetryBackoffMilliseconds)
    }

    /// The terminal error an error object implies (fatal, fenced), else nil.
    private func terminalError(for error: OpaquePointer) -> KafkaSinkError? {
        let code = rd_kafka_error_code(error)
        guard rd_kafka_error_is_fatal(error) != 0 || code == RD_KAFKA_RESP_ERR__FATAL || Self.isFencing(code) else {
            return nil
        }
        return fatalProducerError(fallback: Self.describe(error), code: code)
    }

    /// Classifies the producer's fatal error (fenced or other).
    private func fatalProducerError(fallback: String, code: rd_kafka_resp_err_t = RD_KAFKA_RESP_ERR_NO_ERROR) -> KafkaSinkError {
        var text = [CChar](repeating: 0, count: 512)
        var original = code
        var reason = fallback
        if let client {
            let fatalCode = rd_kafka_fatal_error(client, &text, text.count)
            if fatalCode != RD_KAFKA_RESP_ERR_NO_ERROR {
                original = fatalCode
                reason = "\(Self.describe(fatalCode)): \(String(nulTerminated: text))"
            }
        }
        if Self.isFencing(original) {
            return .fenced(transactionalID: configuration.transactionalID, detail: reason)
        }
        return .fatal(detail: reason)
    }

    private func fatalReason() -> String {
        fatalProducerError(fallback: "unknown").description
    }

    /// Moves to fenced/failed once: logs, metrics, and tells the sink.
    private func enterTerminal(_ error: KafkaSinkError) {
        guard !terminalReported else { return }
        terminalReported = true
        switch error {
        case .fenced(let transactionalID, let detail):
            status.transition(to: .fenced(reason: detail), error: error)
            metrics.fenced.record(1)
            logger.critical(
                "Kafka producer fenced: another instance with the same transactional.id took over; this instance stops publishing and reports not ready (batches stay with the caller)",
                metadata: ["kafka.transactional_id": "\(transactionalID)", "reason": "\(detail)"])
        default:
            status.transition(to: .failed(reason: error.description), error: error)
            logger.critical(
                "Kafka producer failed fatally; this instance stops publishing and reports not ready",
                metadata: ["reason": "\(error)"])
        }
        metrics.ready.record(0)
        onTerminal(error)
    }

    private static func isFencing(_ code: rd_kafka_resp_err_t) -> Bool {
        code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED
            || code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH
    }

    private static func isSecret(_ name: String) -> Bool {
        ["password", "secret", "key", "token", "jaas"].contains { name.contains($0) }
    }

    static func describe(_ code: rd_kafka_resp_err_t) -> String {
        "\(String(cString: rd_kafka_err2name(code))): \(String(cString: rd_kafka_err2str(code)))"
    }

    static func describe(_ error: OpaquePointer) -> String {
        "\(String(cString: rd_kafka_error_name(error))): \(String(cString: rd_kafka_error_string(error)))"
    }

    static func milliseconds(until deadline: Int64) -> Int {
        let nanoseconds = deadline - monotonicNanoseconds()
        return nanoseconds <= 0 ? 0 : Int(min(nanoseconds / 1_000_000, Int64(Int32.max)))
    }
}

extension String {
    /// The text of a NUL-terminated C buffer.
    init(nulTerminated buffer: [CChar]) {
        self = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
