/// Byte-level helpers for reading an URL query without allocating: ranges
/// into the request target, percent-decoding into caller-provided storage.
/// Every function is total: hostile input yields nil or a failure value.
enum QueryBytes {
  /// What a percent-decode produced.
  enum DecodeResult: Equatable {
    /// The decoded byte count.
    case decoded(Int)
    /// A `%` not followed by two hex digits.
    case badEscape
    /// More bytes than the output can hold.
    case tooLong
  }

  /// Percent-decodes `bytes[range]` into `output`; `+` decodes to a space as
  /// in form encoding (what Go's and most trackers' query parsers do).
  static func percentDecode(
    _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
    into output: UnsafeMutableBufferPointer<UInt8>
  ) -> DecodeResult {
    var index = range.lowerBound
    var count = 0
    while index < range.upperBound {
      guard count < output.count else { return .tooLong }
      var byte = bytes[index]
      if byte == UInt8(ascii: "%") {
        // Both hex digits must lie inside the value.
        guard index + 2 < range.upperBound, let high = nibble(bytes[index + 1]),
          let low = nibble(bytes[index + 2])
        else { return .badEscape }
        byte = high << 4 | low
        index += 3
      } else {
        if byte == UInt8(ascii: "+") { byte = UInt8(ascii: " ") }
        index += 1
      }
      output[count] = byte
      count += 1
    }
    return .decoded(count)
  }

  /// The value of one hex digit.
  @inline(__always)
  static func nibble(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte &- UInt8(ascii: "A") &+ 10
    default: nil
    }
  }

  /// Whether `bytes[range]` spells `literal` exactly.
  @inline(__always)
  static func equals(
    _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ literal: StaticString
  ) -> Bool {
    guard range.count == literal.utf8CodeUnitCount else { return false }
    return literal.withUTF8Buffer { expected in
      var offset = 0
      while offset < expected.count {
        if bytes[range.lowerBound + offset] != expected[offset] { return false }
        offset += 1
      }
      return true
    }
  }

  /// Result of reading an unsigned decimal.
  enum UnsignedResult: Equatable {
    case value(UInt64)
    /// Empty, a sign, or a non-digit.
    case notANumber
    /// Digits whose value exceeds `limit`.
    case tooLarge
  }

  /// Reads `bytes[range]` as plain decimal digits no larger than `limit`.
  static func unsigned(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, limit: UInt64)
    -> UnsignedResult
  {
    guard !range.isEmpty else { return .notANumber }
    var value: UInt64 = 0
    var overflowed = false
    for index in range {
      let digit = bytes[index] &- UInt8(ascii: "0")
      guard digit < 10 else { return .notANumber }
      let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
      if overflow1 || overflow2 { overflowed = true }
      value = sum
    }
    if overflowed || value > limit { return .tooLarge }
    return .value(value)
  }

  /// Reads an optionally negative decimal, saturating at the bounds of `Int`
  /// (a huge `numwant` just means "as many as allowed"); nil if not an integer.
  static func saturatingInteger(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
    var digits = range
    var negative = false
    if let first = range.first, bytes[first] == UInt8(ascii: "-") {
      negative = true
      digits = range.dropFirst()
    }
    switch unsigned(bytes, digits, limit: UInt64(Int.max)) {
    case .value(let value): return negative ? -Int(value) : Int(value)
    case .tooLarge: return negative ? Int.min : Int.max
    case .notANumber: return nil
    }
  }

  /// Client-supplied text made safe to echo in a failure reason: printable
  /// ASCII only (others become `?`), at most 32 characters.
  static func echo(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
    var result = [UInt8]()
    result.reserveCapacity(min(bytes.count, 35))
    for byte in bytes.prefix(32) {
      result.append((0x21...0x7e).contains(byte) ? byte : UInt8(ascii: "?"))
    }
    if bytes.count > 32 { result.append(contentsOf: "...".utf8) }
    return String(decoding: result, as: UTF8.self)
  }
}
