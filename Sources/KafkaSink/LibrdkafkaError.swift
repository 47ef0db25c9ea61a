import CRdKafka

/// An `rd_kafka_error_t` read into a value; the C object is destroyed at once,
/// so no caller has to remember to.
struct LibrdkafkaError: Error, Sendable, CustomStringConvertible {
  let code: rd_kafka_resp_err_t
  /// "NAME: text", as librdkafka words it.
  let description: String
  /// The producer instance cannot be used any more.
  let isFatal: Bool
  /// Calling the same function again may succeed.
  let isRetriable: Bool

  /// Takes `error` over and destroys it.
  init(consuming error: OpaquePointer) {
    code = rd_kafka_error_code(error)
    description =
      "\(String(cString: rd_kafka_error_name(error))): \(String(cString: rd_kafka_error_string(error)))"
    isFatal = rd_kafka_error_is_fatal(error) != 0
    isRetriable = rd_kafka_error_is_retriable(error) != 0
    rd_kafka_error_destroy(error)
  }

  /// Whether `code` means another producer with the same transactional id took over.
  static func isFencing(_ code: rd_kafka_resp_err_t) -> Bool {
    code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED
      || code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH
  }
}

/// How bad an error is for the producer that raised it.
enum ErrorSeverity {
  /// Another producer took over: stop for good.
  case fenced(KafkaSinkError)
  /// This producer instance is unusable; a new one may work.
  case fatal(String)
  /// Retry, or abort and retry, as the error's flags say.
  case recoverable
}

/// "NAME: text" for a response code.
func describe(_ code: rd_kafka_resp_err_t) -> String {
  "\(String(cString: rd_kafka_err2name(code))): \(String(cString: rd_kafka_err2str(code)))"
}

extension String {
  /// The text of a NUL-terminated C buffer.
  init(nulTerminated buffer: [CChar]) {
    self = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }
}
