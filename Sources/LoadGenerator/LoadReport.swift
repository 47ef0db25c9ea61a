/// What a load run measured.
public struct LoadReport: Sendable, Equatable {
  /// Latency percentiles of successful announces, in microseconds.
  public struct Latency: Sendable, Equatable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var mean: Double
  }

  /// Successful announces by event.
  public struct Events: Sendable, Equatable {
    public var started = 0
    public var completed = 0
    public var stopped = 0
    public var periodic = 0
  }

  /// `host:port` driven.
  public var target: String
  /// The protocol.
  public var transport: LoadConfiguration.Transport
  /// Measured seconds (after warm-up).
  public var seconds: Double
  /// Announces answered with a peer list.
  public var succeeded: Int
  /// Announces that failed, by kind: `failure: <reason>` (tracker refused),
  /// `timeout`, `transport: <what>` (connection lost, bad answer, …).
  public var errors: [String: Int]
  /// Successful announces by event.
  public var events: Events
  /// Latency of successful announces.
  public var latency: Latency
  /// UDP connect requests sent over the whole run, warm-up included.
  public var udpConnects: Int
  /// HTTP connections opened over the whole run, warm-up included.
  public var httpConnections: Int
  /// Connection attempts that failed over the whole run (not counted as announces).
  public var connectFailures: Int
  /// CPU seconds (user + system) the generating process used while measuring;
  /// near `seconds` means the generator, not the tracker, was the bound.
  public var generatorCPUSeconds: Double

  /// Announces completed, successful or not.
  public var requests: Int { succeeded + errors.values.reduce(0, +) }
  /// Failed announces.
  public var errorCount: Int { errors.values.reduce(0, +) }
  /// Successful announces per second.
  public var announcesPerSecond: Double { seconds > 0 ? Double(succeeded) / seconds : 0 }

  /// A human-readable summary, several lines.
  public var text: String {
    var lines = [
      "target \(target) (\(transport.rawValue)), \(format(seconds, 2)) s measured",
      "announces ok \(succeeded), errors \(errorCount), \(format(announcesPerSecond, 0)) announces/s",
      "latency µs p50 \(format(latency.p50, 1)) p90 \(format(latency.p90, 1)) p99 \(format(latency.p99, 1)) p99.9 \(format(latency.p999, 1)) max \(format(latency.max, 1))",
      "events started \(events.started) periodic \(events.periodic) completed \(events.completed) stopped \(events.stopped)",
      "udp connects \(udpConnects), http connections \(httpConnections), connect failures \(connectFailures), generator cpu \(format(generatorCPUSeconds, 2)) s",
    ]
    for (kind, count) in errors.sorted(by: { $0.value > $1.value }) {
      lines.append("error \(count)× \(kind)")
    }
    return lines.joined(separator: "\n")
  }

  /// One JSON object (keys stable, for scripts).
  public var json: String {
    let errorFields = errors.sorted(by: { $0.key < $1.key }).map {
      "\(jsonString($0.key)):\($0.value)"
    }
    return "{"
      + [
        "\"target\":\(jsonString(target))", "\"transport\":\"\(transport.rawValue)\"",
        "\"seconds\":\(format(seconds, 3))", "\"requests\":\(requests)",
        "\"succeeded\":\(succeeded)", "\"errors\":\(errorCount)",
        "\"error_kinds\":{\(errorFields.joined(separator: ","))}",
        "\"announces_per_second\":\(format(announcesPerSecond, 1))",
        "\"latency_us\":{\"p50\":\(format(latency.p50, 1)),\"p90\":\(format(latency.p90, 1)),\"p99\":\(format(latency.p99, 1)),\"p99_9\":\(format(latency.p999, 1)),\"max\":\(format(latency.max, 1)),\"mean\":\(format(latency.mean, 1))}",
        "\"events\":{\"started\":\(events.started),\"periodic\":\(events.periodic),\"completed\":\(events.completed),\"stopped\":\(events.stopped)}",
        "\"udp_connects\":\(udpConnects)", "\"http_connections\":\(httpConnections)",
        "\"connect_failures\":\(connectFailures)",
        "\"generator_cpu_seconds\":\(format(generatorCPUSeconds, 3))",
      ].joined(separator: ",") + "}"
  }
}

/// Fixed-point rendering without Foundation.
func format(_ value: Double, _ decimals: Int) -> String {
  guard value.isFinite else { return "0" }
  var scale = 1.0
  for _ in 0..<decimals { scale *= 10 }
  let scaled = (abs(value) * scale).rounded()
  let whole = Int(scaled / scale)
  let fraction = Int(scaled - Double(whole) * scale)
  let sign = value < 0 && scaled > 0 ? "-" : ""
  guard decimals > 0 else { return "\(sign)\(whole)" }
  var digits = String(fraction)
  while digits.count < decimals { digits = "0" + digits }
  return "\(sign)\(whole).\(digits)"
}

/// A JSON string literal.
func jsonString(_ text: String) -> String {
  var out = "\""
  for scalar in text.unicodeScalars {
    switch scalar {
    case "\"": out += "\\\""
    case "\\": out += "\\\\"
    case "\n": out += "\\n"
    case "\r": out += "\\r"
    case "\t": out += "\\t"
    default:
      if scalar.value < 0x20 {
        let hex = Array("0123456789abcdef")
        out += "\\u00\(hex[Int(scalar.value >> 4)])\(hex[Int(scalar.value & 0xf)])"
      } else {
        out.unicodeScalars.append(scalar)
      }
    }
  }
  return out + "\""
}
