import CRdKafka
import Logging

// librdkafka calls plain C functions, which cannot capture Swift context: the
// `ProducerEvents` travel as the configuration's opaque pointer (unretained;
// the `LibrdkafkaProducer` owning the rd_kafka_t holds them, so they outlive it).

/// Delivery report per record; served by poll/flush/commit on the producer thread.
let deliveryReportCallback:
  @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) ->
    Void = {
      _, message, opaque in
      guard let message, let opaque else { return }
      let events = Unmanaged<ProducerEvents>.fromOpaque(opaque).takeUnretainedValue()
      events.deliveryReported(
        error: message.pointee.err, tag: UInt(bitPattern: message.pointee._private))
    }

/// Client-level errors (transport, authentication, fatal); served by
/// poll/flush/commit on the producer thread.
let errorCallback:
  @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void =
    {
      client, code, reason, opaque in
      guard let client, let opaque else { return }
      let events = Unmanaged<ProducerEvents>.fromOpaque(opaque).takeUnretainedValue()
      events.clientErrorReported(
        client: client, code: rd_kafka_resp_err_t(rawValue: code),
        reason: reason.map { String(cString: $0) } ?? "")
    }

/// librdkafka's own log lines; called from librdkafka's internal threads, so
/// it only touches the events' logger (immutable and thread-safe).
let logCallback:
  @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    client, level, facility, message in
    guard let client, let opaque = rd_kafka_opaque(client) else { return }
    let logger = Unmanaged<ProducerEvents>.fromOpaque(opaque).takeUnretainedValue().logger
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
    logger.log(
      level: logLevel, "librdkafka: \(message.map { String(cString: $0) } ?? "")",
      metadata: ["librdkafka.facility": "\(facilityName)"])
  }

/// Consumer group rebalances of a ``KafkaGroupRecordReader`` (its
/// `GroupRebalanceEvents` as the opaque); served inside
/// `rd_kafka_consumer_poll` and `rd_kafka_consumer_close` on the reader's
/// thread. The assignment is not changed here: the rebalance is queued for
/// the reader's caller, which seeks to offsets of its own (`assign`) or
/// first finishes or drops what it read (`unassign`), and the poll in
/// progress returns at once (`rd_kafka_yield`). Only while the reader
/// closes is the assignment given up here, as the close expects.
let rebalanceCallback:
  @convention(c) (
    OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    UnsafeMutableRawPointer?
  ) -> Void = {
    client, code, list, opaque in
    guard let client, let opaque else { return }
    let events = Unmanaged<GroupRebalanceEvents>.fromOpaque(opaque).takeUnretainedValue()
    if events.closing {
      rd_kafka_assign(client, nil)
      return
    }
    var partitions: [Int32] = []
    if let list, let elements = list.pointee.elems {
      partitions = UnsafeBufferPointer(start: elements, count: Int(list.pointee.cnt)).map(
        \.partition
      ).sorted()
    }
    switch code {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
      events.post(.assigned(partitions))
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
      events.post(rd_kafka_assignment_lost(client) != 0 ? .lost(partitions) : .revoked(partitions))
    default:
      // A failed rebalance: librdkafka wants the assignment cleared, and
      // what was read from it may already be another member's.
      events.post(.lost(partitions))
    }
    rd_kafka_yield(client)
  }
