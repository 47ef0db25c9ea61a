/// Reads samples out of the Prometheus text exposition format, as a scraper does.
struct PrometheusText {
  struct Sample {
    let name: String
    let labels: [String: String]
    let value: Double
  }

  let samples: [Sample]

  init(_ text: String) {
    var samples: [Sample] = []
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
      guard let space = line.lastIndex(of: " "),
        let value = Double(line[line.index(after: space)...])
      else { continue }
      let series = line[..<space]
      guard let brace = series.firstIndex(of: "{") else {
        samples.append(Sample(name: String(series), labels: [:], value: value))
        continue
      }
      var labels: [String: String] = [:]
      let inner = series[
        series.index(after: brace)..<(series.lastIndex(of: "}") ?? series.endIndex)]
      // Label values here never contain `",` so a plain split is enough.
      for pair in inner.split(separator: "\",") {
        let parts = pair.split(separator: "=", maxSplits: 1)
        guard parts.count == 2 else { continue }
        labels[String(parts[0])] = String(parts[1].drop { $0 == "\"" }.prefix { $0 != "\"" })
      }
      samples.append(Sample(name: String(series[..<brace]), labels: labels, value: value))
    }
    self.samples = samples
  }

  /// The value of the series `name` whose labels include `labels`; 0 when absent
  /// (a counter that never moved may not be exported yet).
  func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
    samples.first { sample in
      sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
    }?.value ?? 0
  }

  /// Whether a series named `name` is exported at all.
  func has(_ name: String) -> Bool { samples.contains { $0.name == name } }
}
