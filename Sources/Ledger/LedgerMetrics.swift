import Metrics

/// The ledger's metrics (`privtrak_ledger_*`).
struct LedgerMetrics: Sendable {
  let factory: any MetricsFactory
  let applied: Counter
  let duplicates: Counter
  let skipped: Counter
  let rejected: Counter
  let transactions: Counter
  let retries: Counter
  let rebalances: Counter
  let lagRecords: Gauge
  let lagSeconds: Gauge
  let partitionsAssigned: Gauge

  init(factory: any MetricsFactory = MetricsSystem.factory) {
    self.factory = factory
    applied = Counter(label: "privtrak_ledger_deltas_applied_total", factory: factory)
    duplicates = Counter(label: "privtrak_ledger_duplicate_deltas_total", factory: factory)
    skipped = Counter(label: "privtrak_ledger_skipped_already_applied_total", factory: factory)
    rejected = Counter(label: "privtrak_ledger_rejected_records_total", factory: factory)
    transactions = Counter(label: "privtrak_ledger_transactions_total", factory: factory)
    retries = Counter(label: "privtrak_ledger_retries_total", factory: factory)
    rebalances = Counter(label: "privtrak_ledger_rebalances_total", factory: factory)
    lagRecords = Gauge(label: "privtrak_ledger_lag_records", factory: factory)
    lagSeconds = Gauge(label: "privtrak_ledger_lag_seconds", factory: factory)
    partitionsAssigned = Gauge(label: "privtrak_ledger_partitions_assigned", factory: factory)
  }
}

/// The lag of every partition a ledger reads, as the per-partition gauges
/// `privtrak_ledger_partition_lag_records{partition}` and
/// `privtrak_ledger_partition_lag_seconds{partition}`, and their aggregates
/// (`privtrak_ledger_lag_records`: the sum, `privtrak_ledger_lag_seconds`:
/// the largest). A partition's series exist only while it is assigned here,
/// so the instance that reads a partition is the one that reports it.
///
/// Records: the high watermark librdkafka last learned minus the position
/// after the last record applied (transaction markers count until the end
/// of the partition is reported past them). Seconds: now minus the newest
/// `reported_at_ms` applied from the partition, while records are left to
/// apply; 0 when there are none (an idle partition is not behind); absent
/// while unknown (records left, none applied yet since the assignment).
struct PartitionLag {
  private let metrics: LedgerMetrics
  private var records: [Int32: Gauge] = [:]
  private var seconds: [Int32: Gauge] = [:]
  /// Per partition: the newest `reported_at_ms` applied since it was assigned.
  private var newestApplied: [Int32: Int64] = [:]

  init(metrics: LedgerMetrics) {
    self.metrics = metrics
  }

  /// A batch committed: its partitions' newest delta times.
  mutating func applied(_ batch: LedgerBatch) {
    for (partition, newest) in batch.newestReportedAtByPartition {
      newestApplied[partition] = max(newestApplied[partition] ?? .min, newest)
    }
  }

  /// Records every assigned partition's lag (`lag(partition)`: nil while
  /// unknown) at `nowMilliseconds`, and the aggregates.
  mutating func update(
    partitions: [Int32], nowMilliseconds: Int64, lag: (Int32) -> Int64?
  ) {
    var totalRecords: Int64 = 0
    var largestSeconds: Double = 0
    for partition in partitions {
      guard let behind = lag(partition) else { continue }
      totalRecords += behind
      gauge(&records, "privtrak_ledger_partition_lag_records", partition).record(behind)
      let behindSeconds: Double
      if behind == 0 {
        behindSeconds = 0
      } else if let newest = newestApplied[partition] {
        behindSeconds = max(0, Double(nowMilliseconds - newest) / 1000)
      } else {
        continue
      }
      gauge(&seconds, "privtrak_ledger_partition_lag_seconds", partition).record(behindSeconds)
      largestSeconds = max(largestSeconds, behindSeconds)
    }
    metrics.lagRecords.record(totalRecords)
    metrics.lagSeconds.record(largestSeconds)
    metrics.partitionsAssigned.record(partitions.count)
  }

  /// The partitions are no longer read here: their series go away.
  mutating func forget(_ partitions: some Sequence<Int32>) {
    for partition in partitions {
      records.removeValue(forKey: partition)?.destroy()
      seconds.removeValue(forKey: partition)?.destroy()
      newestApplied.removeValue(forKey: partition)
    }
  }

  /// Every partition's series go away (the reader closed).
  mutating func forgetAll() {
    forget(Set(records.keys).union(seconds.keys).union(newestApplied.keys))
  }

  private func gauge(_ gauges: inout [Int32: Gauge], _ label: String, _ partition: Int32) -> Gauge {
    if let gauge = gauges[partition] { return gauge }
    let gauge = Gauge(
      label: label, dimensions: [("partition", String(partition))], factory: metrics.factory)
    gauges[partition] = gauge
    return gauge
  }
}
