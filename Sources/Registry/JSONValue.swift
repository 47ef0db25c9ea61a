#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// A parsed JSON value, so that registry files can be checked field by
/// field (unknown keys, wrong types) with precise errors, which `Codable`
/// structs would silently accept or report vaguely.
enum JSONValue: Decodable, Equatable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case array([JSONValue])
  case object([String: JSONValue])

  init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if container.decodeNil() {
      self = .null
    } else if let value = try? container.decode(Bool.self) {
      self = .bool(value)
    } else if let value = try? container.decode(Double.self) {
      self = .number(value)
    } else if let value = try? container.decode(String.self) {
      self = .string(value)
    } else if let value = try? container.decode([JSONValue].self) {
      self = .array(value)
    } else {
      self = .object(try container.decode([String: JSONValue].self))
    }
  }

  /// Parses one JSON text.
  static func parse(_ text: Substring) throws -> JSONValue {
    try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
  }
}

/// Writes one JSON object on one line, fields in the order added.
struct JSONLineWriter {
  private var text = "{"

  mutating func field(_ name: String, _ value: String) {
    separator()
    text += quoted(name) + ":" + quoted(value)
  }

  mutating func field(_ name: String, _ value: UInt32) {
    separator()
    text += quoted(name) + ":" + String(value)
  }

  mutating func field(_ name: String, _ value: Bool) {
    separator()
    text += quoted(name) + ":" + (value ? "true" : "false")
  }

  func finish() -> String { text + "}" }

  private mutating func separator() {
    if text != "{" { text += "," }
  }

  private func quoted(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }
}
