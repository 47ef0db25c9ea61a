import NIOCore

/// One HTTP/1.x answer, as far as a load generator cares.
struct ScannedHTTPResponse {
  /// Status code.
  var status: Int
  /// The tracker's bencoded `failure reason`, when the body carries one.
  var failureReason: String?
  /// Whether the server closes the connection after this answer.
  var closes: Bool
  /// Whether the server said `Connection: keep-alive` (some HTTP/1.1 trackers
  /// close after every answer without saying so).
  var saysKeepAlive = false
}

/// Splits a byte stream into HTTP/1.x responses: `Content-Length` bodies, or
/// a body that runs to the end of the connection when there is none (chunked
/// encoding is not used by trackers and is reported as a transport error).
struct HTTPResponseScanner {
  enum ScanError: Error, Equatable {
    case malformed(String)
  }

  private var buffer: ByteBuffer?
  /// Head of a response whose body ends with the connection.
  private var awaitingEOF: (status: Int, bodyStart: Int)?

  private static let headEnd = Array("\r\n\r\n".utf8)
  private static let failureKey = Array("14:failure reason".utf8)

  /// Appends bytes read from the connection.
  mutating func append(_ bytes: inout ByteBuffer) {
    if buffer == nil {
      buffer = bytes
    } else {
      buffer!.writeBuffer(&bytes)
    }
  }

  /// The next complete response, nil when more bytes are needed.
  mutating func next() throws(ScanError) -> ScannedHTTPResponse? {
    guard var buffer, awaitingEOF == nil else { return nil }
    let view = buffer.readableBytesView
    guard let headLength = Self.find(Self.headEnd, in: view) else {
      if view.count > 65536 { throw .malformed("response head over 64 KiB") }
      return nil
    }
    // Up to and including the last header line's CRLF.
    let head = view.prefix(headLength + 2)
    // "HTTP/1.1 200 …"
    guard head.count >= 12, head.starts(with: "HTTP/1.".utf8) else {
      throw .malformed("not an HTTP/1.x response")
    }
    let isHTTP10 = head[head.startIndex + 7] == UInt8(ascii: "0")
    var status = 0
    for byte in head.dropFirst(9).prefix(3) {
      guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
        throw .malformed("bad status line")
      }
      status = status * 10 + Int(byte - UInt8(ascii: "0"))
    }
    var contentLength: Int?
    var closes = isHTTP10
    var saysKeepAlive = false
    var lineStart = head.startIndex
    for index in head.indices where head[index] == UInt8(ascii: "\n") {
      let line = head[lineStart..<index]
      lineStart = index + 1
      if Self.hasPrefix(line, "content-length:") {
        contentLength = Self.integer(line.dropFirst(15))
      } else if Self.hasPrefix(line, "connection:") {
        let value = Array(line.dropFirst(11)).map { $0 | 0x20 }
        if Self.find(Array("close".utf8), in: value[...]) != nil { closes = true }
        if Self.find(Array("keep-alive".utf8), in: value[...]) != nil {
          closes = false
          saysKeepAlive = true
        }
      } else if Self.hasPrefix(line, "transfer-encoding:") {
        throw .malformed("chunked responses are not supported")
      }
    }
    let bodyStart = headLength + 4
    guard let contentLength else {
      awaitingEOF = (status, bodyStart)
      return nil
    }
    guard view.count >= bodyStart + contentLength else { return nil }
    let body = Array(view.dropFirst(bodyStart).prefix(contentLength))
    buffer.moveReaderIndex(forwardBy: bodyStart + contentLength)
    if buffer.readableBytes == 0 {
      self.buffer = nil
    } else {
      buffer.discardReadBytes()
      self.buffer = buffer
    }
    return ScannedHTTPResponse(
      status: status, failureReason: Self.failureReason(body), closes: closes,
      saysKeepAlive: saysKeepAlive)
  }

  /// The response whose body ended with the connection, if one was waiting.
  mutating func finishAtEOF() -> ScannedHTTPResponse? {
    guard let (status, bodyStart) = awaitingEOF, let buffer else { return nil }
    awaitingEOF = nil
    self.buffer = nil
    let body = Array(buffer.readableBytesView.dropFirst(bodyStart))
    return ScannedHTTPResponse(
      status: status, failureReason: Self.failureReason(body), closes: true)
  }

  /// Discards everything (the connection is gone).
  mutating func reset() {
    buffer = nil
    awaitingEOF = nil
  }

  /// `failure reason` of a bencoded dictionary, if present.
  static func failureReason(_ body: [UInt8]) -> String? {
    guard let keyAt = find(failureKey, in: body[...]) else { return nil }
    var index = keyAt + failureKey.count
    var length = 0
    while index < body.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(body[index]) {
      length = length * 10 + Int(body[index] - UInt8(ascii: "0"))
      index += 1
    }
    guard index < body.count, body[index] == UInt8(ascii: ":"), index + 1 + length <= body.count
    else { return "unreadable failure reason" }
    return String(decoding: body[(index + 1)..<(index + 1 + length)], as: UTF8.self)
  }

  private static func find<C: Collection<UInt8>>(_ needle: [UInt8], in haystack: C) -> Int?
  where C.Index == Int {
    guard haystack.count >= needle.count, let first = needle.first else { return nil }
    var index = haystack.startIndex
    let last = haystack.endIndex - needle.count
    while index <= last {
      if haystack[index] == first {
        var matched = true
        for offset in 1..<needle.count where haystack[index + offset] != needle[offset] {
          matched = false
          break
        }
        if matched { return index - haystack.startIndex }
      }
      index += 1
    }
    return nil
  }

  private static func hasPrefix<C: Collection<UInt8>>(_ line: C, _ prefix: String) -> Bool {
    let lowered = line.prefix(prefix.utf8.count).map { $0 | 0x20 }
    // '|0x20' lowercases letters and leaves ':' and '-' as they are.
    return lowered.elementsEqual(prefix.utf8)
  }

  private static func integer<C: Collection<UInt8>>(_ text: C) -> Int? {
    var value = 0
    var seen = false
    for byte in text {
      if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\r") { continue }
      guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
      value = value * 10 + Int(byte - UInt8(ascii: "0"))
      seen = true
    }
    return seen ? value : nil
  }
}
