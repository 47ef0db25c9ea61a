import Metrics

/// The ledger's metrics (`privtrak_ledger_*`).
struct LedgerMetrics: Sendable {
  let applied: Counter
  let duplicates: Counter
  let skipped: Counter
  let rejected: Counter
  let transactions: Counter
  let retries: Counter
  let lagRecords: Gauge
  let lagSeconds: Gauge

  init(factory: any MetricsFactory = MetricsSystem.factory) {
    applied = Counter(label: "privtrak_ledger_deltas_applied_total", factory: factory)
    duplicates = Counter(label: "privtrak_ledger_duplicate_deltas_total", factory: factory)
    skipped = Counter(label: "privtrak_ledger_skipped_already_applied_total", factory: factory)
    rejected = Counter(label: "privtrak_ledger_rejected_records_total", factory: factory)
    transactions = Counter(label: "privtrak_ledger_transactions_total", factory: factory)
    retries = Counter(label: "privtrak_ledger_retries_total", factory: factory)
    lagRecords = Gauge(label: "privtrak_ledger_lag_records", factory: factory)
    lagSeconds = Gauge(label: "privtrak_ledger_lag_seconds", factory: factory)
  }
}
