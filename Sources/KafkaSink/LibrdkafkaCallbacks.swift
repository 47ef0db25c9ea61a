import CRdKafka
import Logging

// librdkafka calls plain C functions, which cannot capture Swift context: the
// engine travels as the configuration's opaque pointer (unretained; the
// engine outlives its rd_kafka_t, which it destroys itself).

/// Delivery report per record; served by poll/flush/commit on the producer thread.
let deliveryReportCallback:
  @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) ->
    Void = {
      _, message, opaque in
      guard let message, let opaque else { return }
      let engine = Unmanaged<ProducerEngine>.fromOpaque(opaque).takeUnretainedValue()
      engine.deliveryReported(
        error: message.pointee.err, tag: UInt(bitPattern: message.pointee._private))
    }

/// Client-level errors (transport, authentication, fatal); served by
/// poll/flush/commit on the producer thread.
let errorCallback:
  @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void =
    {
      _, code, reason, opaque in
      guard let opaque else { return }
      let engine = Unmanaged<ProducerEngine>.fromOpaque(opaque).takeUnretainedValue()
      engine.clientErrorReported(
        code: rd_kafka_resp_err_t(rawValue: code), reason: reason.map { String(cString: $0) } ?? "")
    }

/// librdkafka's own log lines; called from librdkafka's internal threads, so
/// it only touches the (thread-safe) logger.
let logCallback:
  @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    client, level, facility, message in
    guard let client, let opaque = rd_kafka_opaque(client) else { return }
    let engine = Unmanaged<ProducerEngine>.fromOpaque(opaque).takeUnretainedValue()
    let facilityName = facility.map { String(cString: $0) } ?? ""
    // Connection failures (facility FAIL) also reach the error callback,
    // which logs them rate-limited; here they would flood during an outage.
    let logLevel: Logger.Level
    switch level {
    case _ where facilityName == "FAIL": logLevel = .debug
    case ...2: logLevel = .critical
    case 3: logLevel = .error
    case 4: logLevel = .warning
    case 5, 6: logLevel = .info
    default: logLevel = .debug
    }
    engine.logger.log(
      level: logLevel, "librdkafka: \(message.map { String(cString: $0) } ?? "")",
      metadata: ["librdkafka.facility": "\(facilityName)"])
  }
