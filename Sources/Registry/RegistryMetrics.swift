import Metrics

/// The registry's metrics. Names are stable; every one starts with
/// `privtrak_registry_`.
final class RegistryMetrics: Sendable {
  /// Refused announces and scrapes, by `reason` (``Refusal/label``).
  private let refusals: [String: Counter]

  init(factory: any MetricsFactory) {
    var refusals: [String: Counter] = [:]
    for label in Refusal.labels {
      refusals[label] = Counter(
        label: "privtrak_registry_refusals_total", dimensions: [("reason", label)],
        factory: factory)
    }
    self.refusals = refusals
  }

  func refused(_ refusal: Refusal) {
    refusals[refusal.label]?.increment()
  }
}

/// Gauges of how many records the registry holds.
final class RegistrySizeGauges: Sendable {
  private let users: Gauge
  private let torrents: Gauge
  private let tokens: Gauge
  private let clientRules: Gauge

  init(factory: any MetricsFactory) {
    users = Gauge(label: "privtrak_registry_users", factory: factory)
    torrents = Gauge(label: "privtrak_registry_torrents", factory: factory)
    tokens = Gauge(label: "privtrak_registry_tokens", factory: factory)
    clientRules = Gauge(label: "privtrak_registry_client_rules", factory: factory)
  }

  func record(_ counts: RegistryCounts) {
    users.record(counts.users)
    torrents.record(counts.torrents)
    tokens.record(counts.tokens)
    clientRules.record(counts.clientRules)
  }
}
