/// Watches the raw byte stream of an HTTP/1.1 connection and tells when a
/// request line or a request head grows past its limit, before the HTTP
/// decoder buffers it. Pure state machine, fed chunk by chunk.
///
/// It tracks request heads only (request line and headers up to the empty
/// line). Bodies are not expected on a tracker: the handler answers a request
/// that announces one and closes the connection, so body bytes never reach a
/// following head.
public struct HTTPHeadLimitScanner: Sendable {
  /// Which limit was passed.
  public enum Violation: Error, Sendable, Equatable {
    /// The request line (method, target, version) is longer than allowed → 414.
    case requestLineTooLong
    /// The whole head is larger than allowed → 431.
    case headTooLarge
  }

  /// Most bytes in a request line.
  public let maxRequestLineLength: Int
  /// Most bytes in a whole head, line endings included.
  public let maxHeadLength: Int

  private var headLength = 0
  private var lineLength = 0
  private var inRequestLine = true
  /// True between the first byte of a head and its closing empty line.
  public private(set) var isInsideHead = false
  /// Heads completed so far (wrapping); lets a caller notice that a new head began.
  public private(set) var completedHeads = 0

  /// Creates a scanner.
  public init(maxRequestLineLength: Int, maxHeadLength: Int) {
    self.maxRequestLineLength = maxRequestLineLength
    self.maxHeadLength = maxHeadLength
  }

  /// Scans the next chunk. Returns nil when every byte is within limits,
  /// otherwise the violation and the offset of the first byte past the limit
  /// (bytes before it may be passed on; nothing after it should be).
  public mutating func scan(_ chunk: UnsafeRawBufferPointer) -> (violation: Violation, offset: Int)?
  {
    var offset = 0
    for byte in chunk {
      defer { offset += 1 }
      switch byte {
      case UInt8(ascii: "\n"):
        // Empty lines before a request line are tolerated, as llhttp does.
        guard isInsideHead else { continue }
        if lineLength == 0 && !inRequestLine {
          isInsideHead = false
          completedHeads &+= 1
          headLength = 0
          inRequestLine = true
          continue
        }
        inRequestLine = false
        lineLength = 0
        headLength += 1
      case UInt8(ascii: "\r"):
        guard isInsideHead else { continue }
        headLength += 1
      default:
        isInsideHead = true
        lineLength += 1
        headLength += 1
        if inRequestLine && lineLength > maxRequestLineLength {
          return (.requestLineTooLong, offset)
        }
      }
      if headLength > maxHeadLength { return (.headTooLarge, offset) }
    }
    return nil
  }
}
