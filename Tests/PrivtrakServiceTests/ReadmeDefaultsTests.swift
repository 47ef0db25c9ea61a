import Foundation
import Testing

@testable import PrivtrakService

/// The README's configuration table against the code: setting a key to the
/// default the README states must change nothing, so a default changed in
/// one place only (or a key renamed) fails here.
@Suite struct ReadmeDefaultsTests {
  /// One table row: the keys and the defaults written in backticks.
  struct Row {
    var keys: [String]
    var defaults: [String]
    var line: String
  }

  static func configurationRows() throws -> [Row] {
    let readme = URL(fileURLWithPath: #filePath)
      .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("README.md")
    let text = try String(contentsOf: readme, encoding: .utf8)
    let section = try #require(
      text.components(separatedBy: "\n## Configuration reference\n").dropFirst().first)
    let table = section.components(separatedBy: "\n## ")[0]
    return table.split(separator: "\n").compactMap { line -> Row? in
      guard line.hasPrefix("| `") else { return nil }
      // `\|` inside a cell is an escaped bar, not a cell boundary.
      let cells = line.replacingOccurrences(of: "\\|", with: "\u{1}")
        .split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
      guard cells.count >= 2 else { return nil }
      return Row(
        keys: backticked(cells[0]), defaults: backticked(cells[1]), line: String(line))
    }
  }

  static func backticked(_ cell: String) -> [String] {
    cell.split(separator: "`", omittingEmptySubsequences: false).enumerated()
      .filter { $0.offset % 2 == 1 }.map { String($0.element) }
  }

  /// `a.b: value` as a YAML document.
  static func yaml(_ key: String, _ value: String, extra: String = "") -> String {
    let parts = key.split(separator: ".", maxSplits: 1)
    return "\(parts[0]):\n  \(parts[1]): \(value)\n" + extra
  }

  @Test func everyStatedDefaultIsTheCodesDefault() throws {
    let rows = try Self.configurationRows()
    #expect(rows.count > 40, "the configuration table was not found")
    let defaults = try ServiceConfiguration.parse(yaml: "", file: "empty.yaml")
    var checked = 0
    for row in rows {
      if row.keys == ["accounting.batch_size"] {
        // `1000` (file) / `10000` (Kafka): the default follows the sink.
        #expect(row.defaults.count == 2, "\(row.line)")
        let kafka = "sink:\n  url: kafka://broker:9092/deltas\n"
        #expect(
          try ServiceConfiguration.parse(yaml: Self.yaml(row.keys[0], row.defaults[0]), file: "f")
            == defaults, "\(row.line)")
        #expect(
          try ServiceConfiguration.parse(
            yaml: Self.yaml(row.keys[0], row.defaults[1], extra: kafka), file: "f")
            == ServiceConfiguration.parse(yaml: kafka, file: "f"), "\(row.line)")
        checked += 2
        continue
      }
      // Free-form maps (`kafka.properties.<name>`), and defaults described in
      // words or derived at run time (`privtrak-<hostname>`), have no literal.
      guard !row.keys.contains(where: { $0.contains("<") }),
        !row.defaults.contains(where: { $0.contains("<") }), !row.defaults.isEmpty
      else { continue }
      // `a` / `b` keys pair with `x` / `y` defaults; one default may serve both.
      let values =
        row.defaults.count == row.keys.count
        ? row.defaults : Array(repeating: row.defaults[0], count: row.keys.count)
      #expect(row.defaults.count == row.keys.count || row.defaults.count == 1, "\(row.line)")
      for (key, value) in zip(row.keys, values) {
        let parsed = try ServiceConfiguration.parse(yaml: Self.yaml(key, value), file: "f")
        #expect(parsed == defaults, "README says \(key) defaults to \(value)")
        checked += 1
      }
    }
    #expect(checked >= 45)
  }
}
