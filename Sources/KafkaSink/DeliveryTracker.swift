import CRdKafka

/// Delivery reports of the current attempt at a batch. Reports of earlier
/// attempts (purged, or late) still arrive: each record's tag carries the
/// attempt's generation, so they are counted as failures in metrics but not
/// against the current attempt.
struct DeliveryTracker {
  private var generation: UInt = 0
  /// Records of the current attempt not yet reported (or given up).
  private(set) var pending = 0
  /// Records of the current attempt reported undeliverable.
  private(set) var failed = 0
  /// The last delivery error seen, of any attempt (for failure reasons).
  private var lastError: String?

  /// Starts a new attempt of `records` records.
  mutating func start(records: Int) {
    generation &+= 1
    pending = records
    failed = 0
    lastError = nil
  }

  /// The per-record opaque: attempt generation (high 32 bits) and record index + 1.
  func tag(index: Int) -> UInt {
    (generation & 0xffff_ffff) << 32 | UInt(index + 1) & 0xffff_ffff
  }

  /// Records `count` records that were never handed to librdkafka.
  mutating func notProduced(_ count: Int) {
    pending -= count
  }

  /// A delivery report (of this attempt or an earlier one).
  mutating func reported(error: rd_kafka_resp_err_t, tag: UInt) {
    if error != RD_KAFKA_RESP_ERR_NO_ERROR { lastError = describe(error) }
    guard tag >> 32 == generation & 0xffff_ffff, pending > 0 else { return }
    pending -= 1
    if error != RD_KAFKA_RESP_ERR_NO_ERROR { failed += 1 }
  }

  /// " (delivery: reason)" after the last delivery error, for failure reasons; else empty.
  var errorSuffix: String {
    lastError.map { " (delivery: \($0))" } ?? ""
  }
}
