/// What the ledger reads, where it writes and how.
public struct LedgerConfiguration: Sendable, Hashable {
  /// The delta topic.
  public var source: LedgerSource
  /// The PostgreSQL database.
  public var destination: LedgerDestination
  /// A static assignment: the partitions this instance applies (several
  /// ledger instances split a topic by giving each its own list); nil reads
  /// every partition. Ignored when ``group`` is set.
  public var partitions: [Int32]?
  /// Consumer-group assignment: the Kafka consumer group whose members
  /// split the topic's partitions between them (librdkafka `subscribe`;
  /// every assignment starts at the offsets PostgreSQL stores, and a
  /// revocation waits for the batch in flight); nil uses ``partitions``.
  public var group: String?
  /// Most Kafka records in one PostgreSQL transaction.
  public var maxBatchRecords: Int
  /// Extra librdkafka properties (applied last; `isolation.level` stays
  /// `read_committed` unless overridden here).
  public var kafkaProperties: [String: String]
  /// Longest wait for one batch's apply statement; past it (or when the
  /// connection closes under it) the connection is dropped and the batch
  /// retried from the stored offsets.
  public var applyTimeout: Duration = .seconds(30)
  /// First and largest wait between retries while Kafka or PostgreSQL is unreachable.
  public var retryInitialBackoff: Duration
  /// Largest wait between retries.
  public var retryMaxBackoff: Duration

  /// Creates a configuration.
  public init(
    source: LedgerSource, destination: LedgerDestination, partitions: [Int32]? = nil,
    group: String? = nil, maxBatchRecords: Int = 5000, kafkaProperties: [String: String] = [:],
    retryInitialBackoff: Duration = .milliseconds(200), retryMaxBackoff: Duration = .seconds(10)
  ) {
    self.source = source
    self.destination = destination
    self.partitions = partitions
    self.group = group
    self.maxBatchRecords = maxBatchRecords
    self.kafkaProperties = kafkaProperties
    self.retryInitialBackoff = retryInitialBackoff
    self.retryMaxBackoff = retryMaxBackoff
  }
}
