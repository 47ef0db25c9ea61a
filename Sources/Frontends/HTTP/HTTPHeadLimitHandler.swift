import NIOCore

/// Sits in front of the HTTP decoder and enforces ``HTTPHeadLimitScanner``'s
/// limits plus a deadline for receiving one head (slow-loris drip feeding
/// defeats a plain idle timeout). On a violation it passes on the bytes
/// before it, fires the violation as an error for the tracker handler to
/// answer in order, and drops everything after.
final class HTTPHeadLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  /// Fired (as an error) when a head took longer than the head timeout.
  struct HeadTimeout: Error {}

  private var scanner: HTTPHeadLimitScanner
  private let headTimeout: TimeAmount
  private var headDeadline: NIODeadline?
  private var headsSeenAtDeadline = 0
  private var stopped = false

  init(maxRequestLineLength: Int, maxHeadLength: Int, headTimeout: TimeAmount) {
    scanner = HTTPHeadLimitScanner(
      maxRequestLineLength: maxRequestLineLength, maxHeadLength: maxHeadLength)
    self.headTimeout = headTimeout
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !stopped else { return }
    var buffer = unwrapInboundIn(data)
    let violation = buffer.withUnsafeReadableBytes { scanner.scan($0) }
    if let (kind, offset) = violation {
      stopped = true
      if offset > 0, let prefix = buffer.readSlice(length: offset) {
        context.fireChannelRead(wrapInboundOut(prefix))
      }
      context.fireErrorCaught(kind)
      return
    }
    if scanner.isInsideHead {
      let now = NIODeadline.now()
      if let deadline = headDeadline, headsSeenAtDeadline == scanner.completedHeads {
        if now > deadline {
          stopped = true
          context.fireErrorCaught(HeadTimeout())
          return
        }
      } else {
        headDeadline = now + headTimeout
        headsSeenAtDeadline = scanner.completedHeads
      }
    } else {
      headDeadline = nil
    }
    context.fireChannelRead(data)
  }
}
