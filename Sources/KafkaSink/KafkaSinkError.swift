/// Why `KafkaSink` could not start or could not publish a batch.
///
/// A `publish` that throws delivered nothing the caller may count on: the
/// caller keeps the batch and retries it, or saves it in the snapshot.
public enum KafkaSinkError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The librdkafka loaded at run time is older than the minimum supported.
  case unsupportedLibrdkafka(version: LibrdkafkaVersion, message: String)
  /// A setting has a value the sink or librdkafka rejects.
  case invalidSetting(setting: String, message: String)
  /// No broker in the bootstrap list answered in time.
  case bootstrapUnreachable(setting: String, bootstrap: String, detail: String)
  /// The topic does not exist and auto-creation is off.
  case unknownTopic(setting: String, topic: String)
  /// The brokers rejected the client's credentials (SASL/SSL).
  case authenticationFailed(setting: String, detail: String)
  /// The credentials are valid but lack a permission (topic write, transactional id).
  case authorizationFailed(setting: String, detail: String)
  /// Start-up failed for another reason (e.g. transactions could not be initialised in time).
  case startupFailed(setting: String, detail: String)
  /// Another producer with the same `transactional.id` took over; this sink
  /// publishes nothing more.
  case fenced(transactionalID: String, detail: String)
  /// librdkafka raised a fatal error; this sink publishes nothing more.
  case fatal(detail: String)
  /// The sink is closing or closed; the batch was not (or not known to be) published.
  case closed
  /// Too many publishers are already waiting for room.
  case saturated(waitingPublishers: Int)

  /// The setting to look at, when one is to blame.
  public var setting: String? {
    switch self {
    case .invalidSetting(let setting, _), .bootstrapUnreachable(let setting, _, _),
      .unknownTopic(let setting, _),
      .authenticationFailed(let setting, _), .authorizationFailed(let setting, _),
      .startupFailed(let setting, _):
      setting
    case .fenced: KafkaSetting.transactionalID
    case .unsupportedLibrdkafka, .fatal, .closed, .saturated: nil
    }
  }

  public var description: String {
    switch self {
    case .unsupportedLibrdkafka(_, let message):
      message
    case .invalidSetting(let setting, let message):
      "\(setting): \(message)"
    case .bootstrapUnreachable(let setting, let bootstrap, let detail):
      "\(setting): no Kafka broker reachable at \(bootstrap) (\(detail)); check the address and that the brokers run"
    case .unknownTopic(let setting, let topic):
      "\(setting): topic \"\(topic)\" does not exist; create it or allow topic auto-creation"
    case .authenticationFailed(let setting, let detail):
      "\(setting): the brokers rejected the credentials (\(detail)); check sasl.*/ssl.* properties"
    case .authorizationFailed(let setting, let detail):
      "\(setting): not authorized (\(detail))"
    case .startupFailed(let setting, let detail):
      "\(setting): \(detail)"
    case .fenced(let transactionalID, let detail):
      "fenced: another producer with transactional.id \"\(transactionalID)\" took over (\(detail)); "
        + "this instance stops publishing"
    case .fatal(let detail):
      "fatal Kafka producer error: \(detail); this instance stops publishing"
    case .closed:
      "the Kafka sink is closed"
    case .saturated(let waitingPublishers):
      "the Kafka sink is saturated: \(waitingPublishers) publishers already wait for room"
    }
  }
}
