import NIOCore

/// Sits in front of the HTTP decoder and enforces ``HTTPHeadLimitScanner``'s
/// limits plus a deadline for receiving one head (slow-loris drip feeding
/// defeats a plain idle timeout). On a violation it passes on the bytes
/// before it, fires the violation as an error for the tracker handler to
/// answer in order, and drops everything after.
///
/// The deadline is a timer started by a head's first byte, so a client that
/// starts a head and then goes quiet loses its connection slot after the
/// head timeout, not only after the (longer) idle timeout.
final class HTTPHeadLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  /// Fired (as an error) when a head took longer than the head timeout.
  struct HeadTimeout: Error {}

  private var scanner: HTTPHeadLimitScanner
  private let headTimeout: TimeAmount
  private var context: ChannelHandlerContext?
  private var headTimer: Scheduled<Void>?
  /// `scanner.completedHeads` when the running timer started: a later head gets a fresh timer.
  private var headsSeenAtTimerStart = 0
  private var stopped = false

  init(maxRequestLineLength: Int, maxHeadLength: Int, headTimeout: TimeAmount) {
    scanner = HTTPHeadLimitScanner(
      maxRequestLineLength: maxRequestLineLength, maxHeadLength: maxHeadLength)
    self.headTimeout = headTimeout
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    stopHeadTimer()
    self.context = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    stopHeadTimer()
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !stopped else { return }
    var buffer = unwrapInboundIn(data)
    let violation = buffer.withUnsafeReadableBytes { scanner.scan($0) }
    if let (kind, offset) = violation {
      stop()
      if offset > 0, let prefix = buffer.readSlice(length: offset) {
        context.fireChannelRead(wrapInboundOut(prefix))
      }
      context.fireErrorCaught(kind)
      return
    }
    if scanner.isInsideHead {
      if headTimer == nil || headsSeenAtTimerStart != scanner.completedHeads {
        startHeadTimer(context: context)
      }
    } else {
      stopHeadTimer()
    }
    context.fireChannelRead(data)
  }

  private func startHeadTimer(context: ChannelHandlerContext) {
    headTimer?.cancel()
    headsSeenAtTimerStart = scanner.completedHeads
    let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
    headTimer = context.eventLoop.scheduleTask(in: headTimeout) {
      handler.value.headTimedOut()
    }
  }

  private func headTimedOut() {
    headTimer = nil
    guard !stopped, scanner.isInsideHead, let context else { return }
    stop()
    context.fireErrorCaught(HeadTimeout())
  }

  private func stopHeadTimer() {
    headTimer?.cancel()
    headTimer = nil
  }

  private func stop() {
    stopped = true
    stopHeadTimer()
  }
}
