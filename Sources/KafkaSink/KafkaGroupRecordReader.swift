import CRdKafka

/// A change of a consumer group member's partitions, as the group decided it
/// (``KafkaGroupRecordReader/takeRebalance()``).
public enum KafkaRebalance: Sendable, Hashable {
  /// The group assigned these partitions (the whole new assignment): call
  /// ``KafkaGroupRecordReader/assign(_:startOffsets:)`` with where each starts.
  case assigned([Int32])
  /// The group takes these partitions back (the whole assignment) in an
  /// orderly rebalance: the member may still finish what it read from them,
  /// then must call ``KafkaGroupRecordReader/unassign()``; the group waits
  /// for that (up to the rebalance timeout, `max.poll.interval.ms`).
  case revoked([Int32])
  /// The member lost these partitions without a rebalance (its session
  /// timed out, it was fenced): another member may already read them, so
  /// nothing read from them may be used any more; call
  /// ``KafkaGroupRecordReader/unassign()``.
  case lost([Int32])
}

/// Reads the records of one topic as a member of a Kafka consumer group
/// (`subscribe`), `read_committed` unless `isolation.level` is overridden,
/// with the group's assignment handed to the caller instead of applied by
/// librdkafka: every assignment, revocation and loss is queued
/// (``takeRebalance()``) and takes effect only when the caller calls
/// ``assign(_:startOffsets:)`` or ``unassign()``. So the caller seeks every
/// assigned partition to offsets it keeps itself (Kafka's committed offsets
/// are never read, and nothing is committed), and finishes or drops what it
/// read from revoked partitions before the group may give them to another
/// member.
///
/// Only eager assignors (`range`, `roundrobin`; the default is
/// `range,roundrobin`): every rebalance revokes the whole assignment and
/// then assigns a whole new one. A `cooperative-sticky`
/// `partition.assignment.strategy` is refused.
///
/// Blocking and not thread-safe, like ``KafkaRecordReader``: `poll` blocks the
/// calling thread up to its timeout, and the rebalance callback runs inside
/// `poll` (and inside `close`) on that thread.
public final class KafkaGroupRecordReader {
  /// The topic being read.
  public let topic: String
  /// The consumer group (`group.id`).
  public let group: String
  /// The topic's partitions when the reader opened.
  public let topicPartitions: [Int32]
  /// The partitions currently assigned (after ``assign(_:startOffsets:)``),
  /// in order; empty before the first assignment and after ``unassign()``.
  public private(set) var assignedPartitions: [Int32] = []
  /// The last error librdkafka reported that it retries by itself (e.g. a
  /// broker connection refused); nil when none happened yet.
  public private(set) var lastTransientError: String?
  /// Partitions whose end was reported after the last record read from them
  /// (for read_committed: the last stable offset at the time).
  public private(set) var partitionsAtEnd: Set<Int32> = []

  private let client: OpaquePointer
  /// The rebalance callback's opaque (unretained by librdkafka): held here
  /// so it outlives the client.
  private let events: GroupRebalanceEvents
  /// Per assigned partition: the offset after the last record consumed, or
  /// where EOF was reported, or where the assignment started it.
  private var positions: [Int32: Int64] = [:]
  private var closed = false

  /// Connects, checks that the topic exists and subscribes to it as a
  /// member of `group`. Partitions arrive later, as ``KafkaRebalance/assigned(_:)``
  /// from ``takeRebalance()`` once the group has formed.
  /// - Parameters:
  ///   - bootstrap: `host:port[,host:port]`.
  ///   - topic: the topic to read; it must exist.
  ///   - group: the consumer group's id.
  ///   - timeoutMilliseconds: bound of the metadata request.
  ///   - properties: extra librdkafka properties (applied last), e.g.
  ///     `session.timeout.ms`.
  /// - Throws: `KafkaDeltaReaderError`.
  public init(
    bootstrap: String, topic: String, group: String, timeoutMilliseconds: Int32 = 10_000,
    properties: [String: String] = [:]
  ) throws(KafkaDeltaReaderError) {
    self.topic = topic
    self.group = group
    var settings: [String: String] = [
      "bootstrap.servers": bootstrap,
      "group.id": group,
      "partition.assignment.strategy": "range,roundrobin",
      "isolation.level": "read_committed",
      // The offsets that count are the caller's (assign); Kafka's are
      // neither read nor written.
      "enable.auto.commit": "false",
      "enable.auto.offset.store": "false",
      "enable.partition.eof": "true",
      "fetch.wait.max.ms": "50",
      "allow.auto.create.topics": "false",
      "log_level": "4",
    ]
    settings.merge(properties) { _, extra in extra }
    if let strategy = settings["partition.assignment.strategy"], strategy.contains("cooperative") {
      throw .client(
        message:
          "partition.assignment.strategy=\(strategy): only eager assignors (range, roundrobin) are supported"
      )
    }
    let events = GroupRebalanceEvents()
    let client = try KafkaRecordReader.makeConsumer(settings) { conf in
      rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(events).toOpaque())
      rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
    }
    do {
      topicPartitions = try KafkaRecordReader.partitions(
        of: topic, client: client, timeout: timeoutMilliseconds)
      let list = rd_kafka_topic_partition_list_new(1)
      defer { rd_kafka_topic_partition_list_destroy(list) }
      rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
      let code = rd_kafka_subscribe(client, list)
      guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
        throw KafkaDeltaReaderError.client(
          message: "subscribe: \(String(cString: rd_kafka_err2str(code)))")
      }
    } catch let error as KafkaDeltaReaderError {
      rd_kafka_destroy(client)
      throw error
    } catch {
      rd_kafka_destroy(client)
      throw .client(message: "\(error)")
    }
    self.client = client
    self.events = events
  }

  deinit {
    close()
  }

  /// Whether a rebalance waits for ``takeRebalance()``.
  public var hasPendingRebalance: Bool { events.hasPending }

  /// The oldest rebalance not taken yet, if any. Each must be acted on, in
  /// order: ``KafkaRebalance/assigned(_:)`` with ``assign(_:startOffsets:)``,
  /// the others with ``unassign()``; until then the group waits.
  public func takeRebalance() -> KafkaRebalance? {
    events.take()
  }

  /// Starts reading `partitions` (the whole assignment the group gave),
  /// each at `startOffsets[partition]`, or from the beginning when it has none.
  /// - Throws: `KafkaDeltaReaderError.client` if librdkafka refuses.
  public func assign(_ partitions: [Int32], startOffsets: [Int32: Int64])
    throws(KafkaDeltaReaderError)
  {
    precondition(!closed, "assign after close")
    let sorted = Array(Set(partitions)).sorted()
    let list = rd_kafka_topic_partition_list_new(Int32(max(1, sorted.count)))
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for partition in sorted {
      rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset =
        startOffsets[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING)
    }
    let code = rd_kafka_assign(client, list)
    guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
      throw .client(message: "assign: \(String(cString: rd_kafka_err2str(code)))")
    }
    positions = [:]
    partitionsAtEnd = []
    for partition in sorted {
      if let start = startOffsets[partition] { positions[partition] = start }
    }
    assignedPartitions = sorted
  }

  /// Stops reading every assigned partition (records already fetched for
  /// them are dropped by librdkafka); the group may then give them to
  /// another member.
  /// - Throws: `KafkaDeltaReaderError.client` if librdkafka refuses.
  public func unassign() throws(KafkaDeltaReaderError) {
    precondition(!closed, "unassign after close")
    let code = rd_kafka_assign(client, nil)
    positions = [:]
    partitionsAtEnd = []
    assignedPartitions = []
    guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
      throw .client(message: "unassign: \(String(cString: rd_kafka_err2str(code)))")
    }
  }

  /// The records available now from the assigned partitions, in the order
  /// librdkafka delivers them (per partition: offset order). Waits up to
  /// `timeoutMilliseconds` for the first one, then takes at most
  /// `maxRecords` without waiting; returns early, with what it has, when a
  /// rebalance arrives (``hasPendingRebalance``).
  /// - Throws: `KafkaDeltaReaderError.consumer` for fatal errors.
  public func poll(timeoutMilliseconds: Int32 = 100, maxRecords: Int = 1000)
    throws(KafkaDeltaReaderError) -> [KafkaRawRecord]
  {
    precondition(!closed, "poll after close")
    var records: [KafkaRawRecord] = []
    var wait = timeoutMilliseconds
    while records.count < maxRecords, !events.hasPending,
      let message = rd_kafka_consumer_poll(client, wait)
    {
      wait = 0
      defer { rd_kafka_message_destroy(message) }
      switch try KafkaRecordReader.classify(message) {
      case .record(let record):
        // A record of a partition no longer assigned (fetched before an
        // unassign) is never handed out.
        guard assignedPartitions.contains(record.partition) else { continue }
        positions[record.partition] = max(positions[record.partition] ?? 0, record.offset + 1)
        partitionsAtEnd.remove(record.partition)
        records.append(record)
      case .endOfPartition(let partition, let offset):
        guard assignedPartitions.contains(partition) else { continue }
        positions[partition] = max(positions[partition] ?? 0, offset)
        partitionsAtEnd.insert(partition)
      case .transient(let text):
        lastTransientError = text
      }
    }
    return records
  }

  /// Records of assigned `partition` not read yet: the high watermark
  /// librdkafka last learned minus the reader's position; nil before it
  /// learned the watermark, or when the partition is not assigned.
  public func lag(of partition: Int32) -> Int64? {
    precondition(!closed, "lag after close")
    guard assignedPartitions.contains(partition) else { return nil }
    return KafkaRecordReader.lag(
      client: client, topic: topic, partition: partition, position: positions[partition])
  }

  /// Leaves the group (revoking the assignment at once, inside this call)
  /// and frees the client; nothing may be called afterwards.
  public func close() {
    guard !closed else { return }
    closed = true
    events.closing = true
    rd_kafka_consumer_close(client)
    rd_kafka_destroy(client)
  }
}

/// Where the rebalance callback reports: the rebalances not yet taken by
/// the reader's caller. The consumer's configuration carries it as the
/// opaque pointer (see LibrdkafkaCallbacks.swift).
///
/// Not `Sendable`: the callback is served inside `rd_kafka_consumer_poll`
/// and `rd_kafka_consumer_close`, which only the reader's thread calls.
final class GroupRebalanceEvents {
  private var pending: [KafkaRebalance] = []
  /// Set by `close`: the callback then gives partitions up at once, as
  /// librdkafka's close expects.
  var closing = false

  var hasPending: Bool { !pending.isEmpty }

  func post(_ rebalance: KafkaRebalance) {
    pending.append(rebalance)
  }

  func take() -> KafkaRebalance? {
    pending.isEmpty ? nil : pending.removeFirst()
  }
}
