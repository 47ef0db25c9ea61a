/// Why bytes could not be turned into the accounting model.
public indirect enum DeltaWireError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The bytes are not a valid protobuf encoding of `message`.
  case malformed(message: String, reason: String)
  /// A bytes field has a length the model cannot hold (`expected` is e.g. "16" or "4 or 16").
  case invalidLength(field: String, expected: String, actual: Int)
  /// An event value this decoder does not know (written by a newer schema).
  case unknownEvent(rawValue: Int)
  /// A delta inside a batch is invalid; `index` is its position in the batch.
  case invalidDeltaInBatch(index: Int, error: DeltaWireError)
  /// A Kafka record lacks a header the layout requires.
  case missingHeader(name: String)
  /// A Kafka record declares a schema version this decoder does not read.
  case unsupportedSchema(version: String)
  /// A Kafka record declares a payload type this decoder does not read.
  case unsupportedType(name: String)
  /// A headerless (per-delta) record whose key is not its delta's user id.
  case keyMismatch

  public var description: String {
    switch self {
    case .malformed(let message, let reason):
      "malformed \(message): \(reason)"
    case .invalidLength(let field, let expected, let actual):
      "\(field) must be \(expected) bytes, got \(actual)"
    case .unknownEvent(let rawValue):
      "unknown event value \(rawValue) (written by a newer schema?)"
    case .invalidDeltaInBatch(let index, let error):
      "delta #\(index) of the batch: \(error)"
    case .missingHeader(let name):
      "record has no \(name) header"
    case .unsupportedSchema(let version):
      "unsupported privtrak schema version \"\(version)\""
    case .unsupportedType(let name):
      "unsupported record type \"\(name)\""
    case .keyMismatch:
      "record without privtrak headers whose key is not its delta's user_id (not a privtrak record?)"
    }
  }
}
