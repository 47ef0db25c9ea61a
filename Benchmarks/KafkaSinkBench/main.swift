// KafkaSinkBench: publishes generated deltas through KafkaSink and prints
// throughput; optionally writes the same records as a kcat -P input file so
// scripts/bench-kafka-sink can compare with raw librdkafka. Driven by
// scripts/bench-kafka-sink (which also measures bytes on the wire).
//
//   KafkaSinkBench --bootstrap HOST:PORT --topic T [--deltas N] [--batch N]
//                  [--publishers N] [--framing per-delta|per-batch]
//                  [--delivery exactly-once|at-least-once] [--linger-ms N]
//                  [--kcat-input FILE]

import BitTorrent
import DeltaModel
import DeltaWire
import KafkaSink
import Logging
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

struct Options {
  var bootstrap = "127.0.0.1:19092"
  var topic = ""
  var deltas = 500_000
  var batch = 1_000
  var publishers = 4
  var framing = RecordFraming.perDelta
  var delivery = KafkaSinkConfiguration.DeliveryMode.exactlyOnce
  var kcatInput: String?
  var lingerMilliseconds = 5

  init(_ arguments: [String]) {
    var iterator = arguments.dropFirst().makeIterator()
    while let flag = iterator.next() {
      guard let value = iterator.next() else { fail("missing value for \(flag)") }
      switch flag {
      case "--bootstrap": bootstrap = value
      case "--topic": topic = value
      case "--deltas": deltas = parsed(Int(value), "--deltas")
      case "--batch": batch = parsed(Int(value), "--batch")
      case "--publishers": publishers = parsed(Int(value), "--publishers")
      case "--framing": framing = parsed(RecordFraming(rawValue: value), "--framing")
      case "--delivery":
        delivery = parsed(KafkaSinkConfiguration.DeliveryMode(rawValue: value), "--delivery")
      case "--kcat-input": kcatInput = value
      case "--linger-ms": lingerMilliseconds = parsed(Int(value), "--linger-ms")
      default: fail("unknown flag \(flag)")
      }
    }
    if topic.isEmpty { fail("--topic is required") }
  }
}

func fail(_ message: String) -> Never {
  let line = Array("KafkaSinkBench: \(message)\n".utf8)
  _ = write(2, line, line.count)
  exit(2)
}

func parsed<T>(_ value: T?, _ flag: String) -> T {
  guard let value else { fail("bad value for \(flag)") }
  return value
}

/// Deltas shaped like production ones: 10k users, 2k torrents, counters of realistic size.
func makeBatches(_ options: Options) -> [DeltaBatch] {
  var generator = SystemRandomNumberGenerator()
  let instance = UInt64.random(in: 1..<UInt64.max, using: &generator)
  var sequence: UInt64 = 0
  return stride(from: 0, to: options.deltas, by: options.batch).map { start in
    DeltaBatch(
      deltas: (start..<min(start + options.batch, options.deltas)).map { _ in
        sequence += 1
        let user = UInt64.random(in: 0..<10_000, using: &generator)
        let torrent = UInt8.random(in: 0..<255, using: &generator)
        return Delta(
          userID: UserID(high: 0x5eed_0000_0000_0000 | user, low: user &* 0x9e37_79b9_7f4a_7c15),
          infoHash: InfoHash(
            Array(repeating: torrent, count: 19) + [UInt8(truncatingIfNeeded: user)])!,
          uploaded: Int64.random(in: 0..<50_000_000, using: &generator),
          downloaded: Int64.random(in: 0..<5_000_000, using: &generator), event: .none,
          reportedAtMilliseconds: 1_764_000_000_000 + Int64(sequence), seeding: sequence % 3 != 0,
          intervalSeconds: 1800, reset: false,
          origin: DeltaOrigin(instance: instance, sequence: sequence))
      })
  }
}

/// kcat -P -K '\t' input: key TAB value NEWLINE per record. TAB and NEWLINE
/// bytes inside keys and values become 0x0b, so records keep their size.
func writeKcatInput(_ batches: [DeltaBatch], framing: RecordFraming, path: String) -> (
  records: Int, bytes: Int
) {
  guard let file = fopen(path, "w") else { fail("cannot write \(path)") }
  defer { fclose(file) }
  var records = 0
  var bytes = 0
  var line: [UInt8] = []
  for batch in batches {
    for record in KafkaRecordLayout.records(for: batch, framing: framing) {
      line.removeAll(keepingCapacity: true)
      for byte in record.key { line.append(byte == 0x09 || byte == 0x0a ? 0x0b : byte) }
      line.append(0x09)
      for byte in record.value { line.append(byte == 0x09 || byte == 0x0a ? 0x0b : byte) }
      line.append(0x0a)
      fwrite(line, 1, line.count, file)
      records += 1
      bytes += record.key.count + record.value.count
    }
  }
  return (records, bytes)
}

let options = Options(CommandLine.arguments)
LoggingSystem.bootstrap { label in
  var handler = StreamLogHandler.standardError(label: label)
  handler.logLevel = .warning
  return handler
}
let batches = makeBatches(options)
// DeltaWire encoding alone (the sink's share of CPU per delta before librdkafka).
let encodeStarted = ContinuousClock.now
let recordBytes = batches.reduce(0) { total, batch in
  total
    + KafkaRecordLayout.records(for: batch, framing: options.framing).reduce(0) {
      $0 + $1.key.count + $1.value.count
    }
}
let encodeElapsed = ContinuousClock.now - encodeStarted
let encodeNanosecondsPerDelta =
  (Double(encodeElapsed.components.seconds) * 1e9 + Double(encodeElapsed.components.attoseconds)
    / 1e9)
  / Double(options.deltas)
if let path = options.kcatInput {
  let written = writeKcatInput(batches, framing: options.framing, path: path)
  print("kcat_input records=\(written.records) key_value_bytes=\(written.bytes) file=\(path)")
}

var configuration = KafkaSinkConfiguration(
  bootstrap: options.bootstrap, topic: options.topic, transactionalID: "privtrak-bench-\(getpid())")
configuration.deliveryMode = options.delivery
configuration.framing = options.framing
configuration.maxInFlightDeltas = options.batch * options.publishers
configuration.lingerMilliseconds = options.lingerMilliseconds
let sink: KafkaSink
do {
  sink = try await KafkaSink.start(configuration: configuration)
} catch {
  fail("\(error)")
}

let next = Atomic<Int>(0)
let clock = ContinuousClock()
let started = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
  for _ in 0..<options.publishers {
    group.addTask {
      while true {
        let index = next.add(1, ordering: .relaxed).oldValue
        guard index < batches.count else { return }
        try await sink.publish(batches[index])
      }
    }
  }
  try await group.waitForAll()
}
let elapsed = clock.now - started
try await sink.close()

let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print(
  "sink deltas=\(options.deltas) batch=\(options.batch) publishers=\(options.publishers) "
    + "framing=\(options.framing.rawValue) delivery=\(options.delivery.rawValue) seconds=\(seconds) "
    + "deltas_per_second=\(Int(Double(options.deltas) / seconds)) "
    + "record_key_value_bytes_per_delta=\(Double(recordBytes) / Double(options.deltas)) "
    + "deltawire_encode_ns_per_delta=\(Int(encodeNanosecondsPerDelta)) "
    + "peak_in_flight_deltas=\(sink.peakInFlight.deltas)")
