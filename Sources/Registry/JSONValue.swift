import BitTorrent

/// A JSON scalar of a registry record. Registry lines are flat objects, so
/// a hand-written scanner reads them (a 3-million-line file in seconds,
/// where Foundation's JSONDecoder took minutes) and can say exactly what
/// is wrong.
enum JSONValue: Equatable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)

  /// Parses one flat JSON object (`{"key": scalar, …}`); nested arrays or
  /// objects are errors.
  static func parseObject(_ line: ArraySlice<UInt8>) throws(RegistryRecordProblem)
    -> [String: JSONValue]
  {
    var scanner = FlatJSONScanner(line)
    return try scanner.object()
  }
}

/// Reads one flat JSON object from UTF-8 bytes.
private struct FlatJSONScanner {
  let bytes: ArraySlice<UInt8>
  var position: Int

  init(_ bytes: ArraySlice<UInt8>) {
    self.bytes = bytes
    position = bytes.startIndex
  }

  mutating func object() throws(RegistryRecordProblem) -> [String: JSONValue] {
    skipSpace()
    guard take(UInt8(ascii: "{")) else { throw RegistryRecordProblem("expected a JSON object") }
    var object: [String: JSONValue] = [:]
    skipSpace()
    if take(UInt8(ascii: "}")) { return try end(object) }
    while true {
      skipSpace()
      guard peek() == UInt8(ascii: "\"") else { throw invalid() }
      let key = try string()
      skipSpace()
      guard take(UInt8(ascii: ":")) else { throw invalid() }
      skipSpace()
      guard object[key] == nil else { throw RegistryRecordProblem("field \(key) appears twice") }
      object[key] = try value(for: key)
      skipSpace()
      if take(UInt8(ascii: ",")) { continue }
      guard take(UInt8(ascii: "}")) else { throw invalid() }
      return try end(object)
    }
  }

  private mutating func end(_ object: [String: JSONValue]) throws(RegistryRecordProblem)
    -> [String: JSONValue]
  {
    skipSpace()
    guard position == bytes.endIndex else { throw invalid() }
    return object
  }

  private func invalid() -> RegistryRecordProblem { RegistryRecordProblem("not valid JSON") }

  private func peek() -> UInt8? { position < bytes.endIndex ? bytes[position] : nil }

  private mutating func take(_ byte: UInt8) -> Bool {
    guard peek() == byte else { return false }
    position += 1
    return true
  }

  private mutating func skipSpace() {
    while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
      position += 1
    }
  }

  private mutating func literal(_ word: String) -> Bool {
    let utf8 = Array(word.utf8)
    guard bytes.endIndex - position >= utf8.count,
      bytes[position..<position + utf8.count].elementsEqual(utf8)
    else { return false }
    position += utf8.count
    return true
  }

  private mutating func value(for key: String) throws(RegistryRecordProblem) -> JSONValue {
    switch peek() {
    case UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "t"): if literal("true") { return .bool(true) }
    case UInt8(ascii: "f"): if literal("false") { return .bool(false) }
    case UInt8(ascii: "n"): if literal("null") { return .null }
    case UInt8(ascii: "["), UInt8(ascii: "{"):
      throw RegistryRecordProblem("field \(key): expected a string, number, true, false or null")
    default:
      let start = position
      while let byte = peek(),
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
          || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e")
          || byte == UInt8(ascii: "E")
      {
        position += 1
      }
      if position > start,
        let number = Double(String(decoding: bytes[start..<position], as: UTF8.self))
      {
        return .number(number)
      }
    }
    throw invalid()
  }

  private mutating func string() throws(RegistryRecordProblem) -> String {
    guard take(UInt8(ascii: "\"")) else { throw invalid() }
    var out: [UInt8] = []
    while let byte = peek() {
      position += 1
      switch byte {
      case UInt8(ascii: "\""):
        return String(decoding: out, as: UTF8.self)
      case UInt8(ascii: "\\"):
        guard let escaped = peek() else { throw invalid() }
        position += 1
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "u"):
          var scalar = try hex4()
          if (0xD800...0xDBFF).contains(scalar) {
            // A surrogate pair: the low half must follow.
            guard literal("\\u") else { throw invalid() }
            let low = try hex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw invalid() }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
          }
          guard let unicode = Unicode.Scalar(scalar) else { throw invalid() }
          out += Array(String(Character(unicode)).utf8)
        default: throw invalid()
        }
      case 0..<0x20:
        throw invalid()
      default:
        out.append(byte)
      }
    }
    throw invalid()
  }

  private mutating func hex4() throws(RegistryRecordProblem) -> UInt32 {
    guard bytes.endIndex - position >= 4 else { throw invalid() }
    var value: UInt32 = 0
    for _ in 0..<4 {
      guard let nibble = Hex.nibble(bytes[position]) else { throw invalid() }
      value = value << 4 | UInt32(nibble)
      position += 1
    }
    return value
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
