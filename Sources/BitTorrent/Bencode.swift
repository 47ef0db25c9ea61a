/// A decoded bencode value. Dictionary keys are raw byte strings kept in the
/// order they appeared (bencode requires them sorted; the decoder checks).
public indirect enum BencodeValue: Sendable, Hashable {
  /// `i<n>e`
  case integer(Int64)
  /// `<len>:<bytes>`
  case bytes([UInt8])
  /// `l...e`
  case list([BencodeValue])
  /// `d...e`
  case dictionary([(key: [UInt8], value: BencodeValue)])

  /// Looks up a dictionary key given as text.
  public subscript(key: String) -> BencodeValue? {
    guard case .dictionary(let entries) = self else { return nil }
    let wanted = Array(key.utf8)
    return entries.first { $0.key == wanted }?.value
  }

  /// The byte string as UTF-8 text, if this is a byte string.
  public var text: String? {
    guard case .bytes(let bytes) = self else { return nil }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// The integer, if this is an integer.
  public var integer: Int64? {
    guard case .integer(let value) = self else { return nil }
    return value
  }

  public static func == (lhs: BencodeValue, rhs: BencodeValue) -> Bool {
    switch (lhs, rhs) {
    case (.integer(let a), .integer(let b)): return a == b
    case (.bytes(let a), .bytes(let b)): return a == b
    case (.list(let a), .list(let b)): return a == b
    case (.dictionary(let a), .dictionary(let b)):
      return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    default: return false
    }
  }

  public func hash(into hasher: inout Hasher) {
    switch self {
    case .integer(let value):
      hasher.combine(0)
      hasher.combine(value)
    case .bytes(let value):
      hasher.combine(1)
      hasher.combine(value)
    case .list(let value):
      hasher.combine(2)
      hasher.combine(value)
    case .dictionary(let entries):
      hasher.combine(3)
      for entry in entries {
        hasher.combine(entry.key)
        hasher.combine(entry.value)
      }
    }
  }

  /// The canonical encoding of this value.
  public var encoded: [UInt8] {
    var writer = BencodeWriter()
    writer.write(self)
    return writer.bytes
  }
}

/// Why bencode could not be decoded; `offset` is where decoding stopped.
public struct BencodeError: Error, Sendable, Equatable, CustomStringConvertible {
  /// What went wrong.
  public enum Kind: Sendable, Equatable {
    case unexpectedEnd
    case unexpectedByte(UInt8)
    case invalidInteger
    case invalidLength
    case tooDeep
    case unsortedOrDuplicateKey
    case trailingBytes
  }

  /// What went wrong.
  public var kind: Kind
  /// Byte offset of the problem.
  public var offset: Int

  public var description: String { "bencode \(kind) at byte \(offset)" }
}

/// A strict bencode decoder with a nesting limit, safe on hostile input.
public struct BencodeDecoder: Sendable {
  /// Deepest list/dictionary nesting accepted.
  public var maxDepth: Int
  /// Longest byte string accepted.
  public var maxStringLength: Int

  /// Creates a decoder with limits.
  public init(maxDepth: Int = 64, maxStringLength: Int = 16 << 20) {
    self.maxDepth = maxDepth
    self.maxStringLength = maxStringLength
  }

  /// Decodes exactly one value spanning all of `input`.
  public func decode(_ input: [UInt8]) throws(BencodeError) -> BencodeValue {
    var offset = 0
    let value = try decodeValue(input, &offset, depth: 0)
    guard offset == input.count else { throw BencodeError(kind: .trailingBytes, offset: offset) }
    return value
  }

  private func decodeValue(_ input: [UInt8], _ offset: inout Int, depth: Int) throws(BencodeError)
    -> BencodeValue
  {
    guard offset < input.count else { throw BencodeError(kind: .unexpectedEnd, offset: offset) }
    guard depth <= maxDepth else { throw BencodeError(kind: .tooDeep, offset: offset) }
    switch input[offset] {
    case UInt8(ascii: "i"):
      offset += 1
      return .integer(try decodeInteger(input, &offset, terminator: UInt8(ascii: "e")))
    case UInt8(ascii: "l"):
      offset += 1
      var items: [BencodeValue] = []
      while true {
        guard offset < input.count else { throw BencodeError(kind: .unexpectedEnd, offset: offset) }
        if input[offset] == UInt8(ascii: "e") {
          offset += 1
          return .list(items)
        }
        items.append(try decodeValue(input, &offset, depth: depth + 1))
      }
    case UInt8(ascii: "d"):
      offset += 1
      var entries: [(key: [UInt8], value: BencodeValue)] = []
      while true {
        guard offset < input.count else { throw BencodeError(kind: .unexpectedEnd, offset: offset) }
        if input[offset] == UInt8(ascii: "e") {
          offset += 1
          return .dictionary(entries)
        }
        let keyOffset = offset
        let key = try decodeString(input, &offset)
        if let previous = entries.last?.key, !previous.lexicographicallyPrecedes(key) {
          throw BencodeError(kind: .unsortedOrDuplicateKey, offset: keyOffset)
        }
        entries.append((key, try decodeValue(input, &offset, depth: depth + 1)))
      }
    case UInt8(ascii: "0")...UInt8(ascii: "9"):
      return .bytes(try decodeString(input, &offset))
    case let byte:
      throw BencodeError(kind: .unexpectedByte(byte), offset: offset)
    }
  }

  private func decodeString(_ input: [UInt8], _ offset: inout Int) throws(BencodeError) -> [UInt8] {
    let start = offset
    let length = try decodeInteger(input, &offset, terminator: UInt8(ascii: ":"))
    guard length >= 0, length <= maxStringLength else {
      throw BencodeError(kind: .invalidLength, offset: start)
    }
    guard input.count - offset >= Int(length) else {
      throw BencodeError(kind: .unexpectedEnd, offset: input.count)
    }
    let bytes = Array(input[offset..<offset + Int(length)])
    offset += Int(length)
    return bytes
  }

  /// Parses a decimal integer up to `terminator`, rejecting leading zeros,
  /// `-0`, empty digits and overflow.
  private func decodeInteger(_ input: [UInt8], _ offset: inout Int, terminator: UInt8)
    throws(BencodeError) -> Int64
  {
    let start = offset
    var negative = false
    if offset < input.count, input[offset] == UInt8(ascii: "-") {
      negative = true
      offset += 1
    }
    let digitsStart = offset
    var magnitude: UInt64 = 0
    while offset < input.count, input[offset] != terminator {
      let byte = input[offset]
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
        throw BencodeError(kind: .unexpectedByte(byte), offset: offset)
      }
      let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
      guard !overflow1, !overflow2, sum <= UInt64(Int64.max) + (negative ? 1 : 0) else {
        throw BencodeError(kind: .invalidInteger, offset: start)
      }
      magnitude = sum
      offset += 1
    }
    guard offset < input.count else { throw BencodeError(kind: .unexpectedEnd, offset: offset) }
    let digitCount = offset - digitsStart
    guard digitCount > 0,
      !(digitCount > 1 && input[digitsStart] == UInt8(ascii: "0")),
      !(negative && magnitude == 0),
      !(negative && terminator == UInt8(ascii: ":"))
    else { throw BencodeError(kind: .invalidInteger, offset: start) }
    offset += 1
    if negative { return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude) }
    return Int64(magnitude)
  }
}

/// Appends bencode to a byte array; used directly on the response hot path so
/// no intermediate value tree is built.
public struct BencodeWriter: Sendable {
  /// The bytes written so far.
  public var bytes: [UInt8]

  /// Creates a writer with room for `capacity` bytes.
  public init(capacity: Int = 128) {
    bytes = []
    bytes.reserveCapacity(capacity)
  }

  /// Writes `i<value>e`.
  public mutating func writeInteger(_ value: Int64) {
    bytes.append(UInt8(ascii: "i"))
    appendDecimal(value)
    bytes.append(UInt8(ascii: "e"))
  }

  /// Writes a byte string.
  public mutating func writeBytes<Bytes: Collection<UInt8>>(_ value: Bytes) {
    appendDecimal(Int64(value.count))
    bytes.append(UInt8(ascii: ":"))
    bytes.append(contentsOf: value)
  }

  /// Writes a text string as its UTF-8 bytes.
  public mutating func writeString(_ value: String) {
    writeBytes(value.utf8)
  }

  /// Writes a byte-string length prefix; the caller appends exactly `length` bytes.
  public mutating func writeBytesHeader(length: Int) {
    appendDecimal(Int64(length))
    bytes.append(UInt8(ascii: ":"))
  }

  /// Opens a dictionary; keys must then be written in sorted order.
  public mutating func beginDictionary() { bytes.append(UInt8(ascii: "d")) }
  /// Opens a list.
  public mutating func beginList() { bytes.append(UInt8(ascii: "l")) }
  /// Closes the innermost list or dictionary.
  public mutating func end() { bytes.append(UInt8(ascii: "e")) }

  /// Writes any value, sorting dictionary keys.
  public mutating func write(_ value: BencodeValue) {
    switch value {
    case .integer(let number): writeInteger(number)
    case .bytes(let data): writeBytes(data)
    case .list(let items):
      beginList()
      for item in items { write(item) }
      end()
    case .dictionary(let entries):
      beginDictionary()
      for entry in entries.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
        writeBytes(entry.key)
        write(entry.value)
      }
      end()
    }
  }

  private mutating func appendDecimal(_ value: Int64) {
    if value < 0 { bytes.append(UInt8(ascii: "-")) }
    var magnitude = value.magnitude
    if magnitude == 0 {
      bytes.append(UInt8(ascii: "0"))
      return
    }
    var digits:
      (
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
      ) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var count = 0
    withUnsafeMutableBytes(of: &digits) { buffer in
      while magnitude > 0 {
        buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
        magnitude /= 10
        count += 1
      }
    }
    withUnsafeBytes(of: &digits) { buffer in
      for index in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[index]) }
    }
  }
}
