import CRdKafka

/// A librdkafka client could not be created: the property it rejected
/// (secret values redacted) or librdkafka's own message.
public struct LibrdkafkaClientError: Error, Sendable, Equatable, CustomStringConvertible {
  /// What went wrong.
  public var message: String

  public var description: String { message }
}

/// Creates librdkafka clients from plain settings: the one place outside the
/// sink's producer that applies properties, redacts secret values in errors
/// and frees the configuration when creation fails. The delta reader, the
/// registry's reader, topic creator and publisher use it.
public enum LibrdkafkaClient {
  /// Whether a property's value must never be shown (`sasl.password`,
  /// `ssl.key.password`, …).
  public static func isSecret(_ name: String) -> Bool {
    ["password", "secret", "key", "token", "jaas"].contains { name.contains($0) }
  }

  /// A new client of `type` with `settings` applied in name order, then
  /// `configure` (callbacks, opaque) on the configuration.
  public static func create(
    _ type: rd_kafka_type_t, settings: [String: String],
    configure: (OpaquePointer) -> Void = { _ in }
  ) throws(LibrdkafkaClientError) -> OpaquePointer {
    var errorText = [CChar](repeating: 0, count: 512)
    guard let conf = rd_kafka_conf_new() else {
      throw LibrdkafkaClientError(message: "rd_kafka_conf_new failed")
    }
    for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
      guard rd_kafka_conf_set(conf, name, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK
      else {
        rd_kafka_conf_destroy(conf)
        let shown = isSecret(name) ? "<redacted>" : value
        throw LibrdkafkaClientError(
          message: "\(name)=\(shown): \(String(nulTerminated: errorText))")
      }
    }
    configure(conf)
    guard let client = rd_kafka_new(type, conf, &errorText, errorText.count) else {
      rd_kafka_conf_destroy(conf)  // only freed by rd_kafka_new on success
      throw LibrdkafkaClientError(message: String(nulTerminated: errorText))
    }
    return client
  }
}
