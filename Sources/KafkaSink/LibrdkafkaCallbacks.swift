import CRdKafka
import Logging

// librdkafka calls plain C functions, which cannot capture Swift context: the
// engine travels as the configuration's opaque pointer (unretained; the
// engine outlives its rd_kafka_t, which it destroys itself).

/// Delivery report per record; served by poll/flush/commit on the producer thread.
let deliveryReportCallback:
    @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
        _, message, opaque in
        guard let message, let opaque else { return }
        let engine = Unmanaged<ProducerEngine>.fromOpaque(opaque).takeUnretainedValue()
        engine.deliveryReported(error: message.pointee.err, tag: UInt(bitPattern: message.pointee._private))
    }

/// Client-level errors (transport, authentication, fatal); served by
/// poll/flush/commit on the producer thread.
let errorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    _, code, reason, opaque in
    guard let opaque else { return }
    let engine = Unmanaged<ProducerEngine>.fromOpaque(opaque).takeUnretainedValue()
    engine.clientErrorReported(code: rd_kafka_resp_err_t(rawValue: code), reason: reason.map { String(cString: $0) } ?? "")
}

/// librdkafka's own log lines; called from librdkafka's internal threads, so
/// it only touches the (thread-safe) logger.
let logCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    client, level, facility, message in
    guard let client, let opaque = rd_kafka_opaque(client) else { return }
    let engine = Unmanaged<ProducerEngine>.fromOpaque(opaque).takeUnretainedValue()
    let logLevel: Logger.Level =
        switch level {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5, 6: .info
        default: .debug
        }
    engine.logger.log(
        level: logLevel, "librdkafka: \(message.map { String(cString: $0) } ?? "")",
        metadata: ["librdkafka.facility": "\(facility.map { String(cString: $0) } ?? "")"])
}
