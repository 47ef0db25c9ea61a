import BitTorrent
import Logging
import NIOCore
import NIOHTTP1
import Tracker

/// One response as it will be written.
struct HTTPTrackerReply: Sendable {
  var status: HTTPResponseStatus
  var body: [UInt8]
  /// Close the connection after this response whatever the request asked.
  var forceClose = false
  /// Add `Allow: GET` (405 responses).
  var allowGET = false

  static func failure(_ status: HTTPResponseStatus, _ reason: String, forceClose: Bool = false)
    -> Self
  {
    HTTPTrackerReply(status: status, body: HTTPTrackerBody.failure(reason), forceClose: forceClose)
  }
}

/// The per-connection HTTP tracker logic: parses each request, runs the
/// tracker asynchronously, and writes responses strictly in request order
/// (several pipelined requests may be in the tracker at once). Every method
/// runs on the channel's event loop; the tracker work hops back through
/// `NIOLoopBound`.
final class HTTPTrackerHandler: ChannelDuplexHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundIn = HTTPServerResponsePart
  typealias OutboundOut = HTTPServerResponsePart

  /// A response slot, in request order.
  private struct Slot {
    var version: HTTPVersion
    var keepAlive: Bool
    var reply: HTTPTrackerReply?
  }

  private let tracker: Tracker
  private let parser: HTTPAnnounceParser
  private let resolver: ClientAddressResolver
  private let maxURLLength: Int
  private let maxPipelinedRequests: Int
  private let metrics: FrontendMetrics
  private let logger: Logger

  private var context: ChannelHandlerContext?
  private var peerAddress: IPAddress?
  private var head: HTTPRequestHead?
  private var requestHasBody = false
  private var slots = CircularBuffer<Slot>(initialCapacity: 4)
  /// Sequence number of `slots.first`.
  private var firstSequence: UInt64 = 0
  /// No further request is taken; the connection closes once `slots` drains.
  private var closing = false
  private var readHeld = false

  init(
    tracker: Tracker, parser: HTTPAnnounceParser, resolver: ClientAddressResolver,
    maxURLLength: Int,
    maxPipelinedRequests: Int, metrics: FrontendMetrics, logger: Logger
  ) {
    self.metrics = metrics
    self.tracker = tracker
    self.parser = parser
    self.resolver = resolver
    self.maxURLLength = maxURLLength
    self.maxPipelinedRequests = max(1, maxPipelinedRequests)
    self.logger = logger
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  func channelActive(context: ChannelHandlerContext) {
    peerAddress = context.channel.remoteAddress?.trackerIPAddress
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    closing = true
    slots.removeAll()
    context.fireChannelInactive()
  }

  // MARK: Inbound

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      self.head = head
      requestHasBody =
        head.headers.contains(name: "transfer-encoding")
        || head.headers.first(name: "content-length").map { $0 != "0" } ?? false
    case .body:
      requestHasBody = true
    case .end:
      guard let head else { return }
      self.head = nil
      handle(head, context: context)
    }
  }

  private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
    guard !closing else { return }
    let keepAlive = head.isKeepAlive
    if requestHasBody {
      metrics.rejected(.malformed)
      // Body bytes would confuse the head scanner; a tracker never needs them.
      enqueue(
        .failure(.badRequest, "request body not allowed", forceClose: true), head, keepAlive: false)
      return
    }
    guard head.method == .GET else {
      metrics.rejected(.malformed)
      // A HEAD client expects no body, so the one we send must end the connection.
      var reply = HTTPTrackerReply.failure(
        .methodNotAllowed, "method not allowed: use GET", forceClose: head.method == .HEAD)
      reply.allowGET = true
      enqueue(reply, head, keepAlive: keepAlive)
      return
    }
    guard head.uri.utf8.count <= maxURLLength else {
      metrics.rejected(.malformed)
      enqueue(
        .failure(.uriTooLong, "request URL too long", forceClose: true), head, keepAlive: false)
      return
    }
    if peerAddress == nil { peerAddress = context.channel.remoteAddress?.trackerIPAddress }
    guard let peerAddress else {
      metrics.rejected(.malformed)
      enqueue(
        .failure(.internalServerError, "no client address", forceClose: true), head,
        keepAlive: false)
      return
    }
    var clientAddress = peerAddress
    if resolver.isEnabled, resolver.isTrusted(peerAddress) {
      do throws(TrackerFailure) {
        clientAddress = try resolver.resolve(
          peer: peerAddress, forwardedFor: head.headers["x-forwarded-for"],
          realIP: head.headers.first(name: "x-real-ip"))
      } catch {
        metrics.rejected(.malformed)
        enqueue(.failure(.ok, error.reason), head, keepAlive: keepAlive)
        return
      }
    }
    switch parser.parse(target: head.uri, clientAddress: clientAddress) {
    case .notFound:
      metrics.rejected(.notFound)
      enqueue(.failure(.notFound, "unknown path"), head, keepAlive: keepAlive)
    case .failure(let failure):
      metrics.rejected(.malformed)
      logger.debug("rejected HTTP request", metadata: ["reason": "\(failure.reason)"])
      enqueue(.failure(.ok, failure.reason), head, keepAlive: keepAlive)
    case .announce(let request):
      announce(request, head, keepAlive: keepAlive, context: context)
    case .scrape(let request):
      let sequence = enqueue(nil, head, keepAlive: keepAlive)
      let (tracker, metrics) = (tracker, metrics)
      run(sequence: sequence, context: context) {
        let start = ContinuousClock.now
        do throws(TrackerFailure) {
          let body = HTTPTrackerBody.scrape(try await tracker.scrape(request))
          metrics.succeeded(.scrape, since: start)
          return body
        } catch {
          metrics.failed(.scrape, error.kind, since: start)
          return HTTPTrackerBody.failure(error.reason, retryInMinutes: error.retryInMinutes)
        }
      }
    }
  }

  /// Answers on the loop when the tracker can finish without suspending
  /// (the common case); otherwise finishes off the loop, in order.
  private func announce(
    _ request: AnnounceRequest, _ head: HTTPRequestHead, keepAlive: Bool,
    context: ChannelHandlerContext
  ) {
    switch metrics.announce(request, through: tracker) {
    case .finished(let result):
      let body = Self.body(of: result, for: request)
      enqueue(HTTPTrackerReply(status: .ok, body: body), head, keepAlive: keepAlive)
    case .pending(let finish):
      let sequence = enqueue(nil, head, keepAlive: keepAlive)
      run(sequence: sequence, context: context) { Self.body(of: await finish(), for: request) }
    }
  }

  /// The bencoded answer (or `failure reason`) of an announce.
  private static func body(
    of result: Result<AnnounceResponse, TrackerFailure>, for request: AnnounceRequest
  ) -> [UInt8] {
    switch result {
    case .success(let response):
      HTTPTrackerBody.announce(response, compact: request.compact, noPeerID: request.noPeerID)
    case .failure(let error):
      HTTPTrackerBody.failure(error.reason, retryInMinutes: error.retryInMinutes)
    }
  }

  /// Runs `work` off the event loop and completes slot `sequence` with its body.
  private func run(
    sequence: UInt64, context: ChannelHandlerContext,
    _ work: @escaping @Sendable () async -> [UInt8]
  ) {
    let eventLoop = context.eventLoop
    let handler = NIOLoopBound(self, eventLoop: eventLoop)
    Task {
      let body = await work()
      eventLoop.execute {
        handler.value.complete(sequence: sequence, reply: HTTPTrackerReply(status: .ok, body: body))
      }
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    guard !closing else { return }
    let reply: HTTPTrackerReply
    switch error {
    case HTTPHeadLimitScanner.Violation.requestLineTooLong:
      reply = .failure(.uriTooLong, "request URL too long", forceClose: true)
    case HTTPHeadLimitScanner.Violation.headTooLarge:
      reply = .failure(.requestHeaderFieldsTooLarge, "request headers too large", forceClose: true)
    case is HTTPHeadLimitHandler.HeadTimeout:
      reply = .failure(.requestTimeout, "request head not received in time", forceClose: true)
    case is HTTPParserError:
      reply = .failure(.badRequest, "malformed HTTP request", forceClose: true)
    default:
      logger.debug("HTTP connection error", metadata: ["error": "\(error)"])
      closing = true
      context.close(promise: nil)
      return
    }
    enqueue(reply, version: .http1_1, keepAlive: false)
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    switch event {
    case let idle as IdleStateHandler.IdleStateEvent where idle == .read:
      // Only an idle connection is idle; a slow tracker answer is not the client's fault.
      if slots.isEmpty && head == nil {
        closing = true
        context.close(promise: nil)
      }
    case is ChannelShouldQuiesceEvent:
      closing = true
      if slots.isEmpty { context.close(promise: nil) }
    default:
      context.fireUserInboundEventTriggered(event)
    }
  }

  // MARK: Outbound

  func read(context: ChannelHandlerContext) {
    if closing || slots.count >= maxPipelinedRequests {
      readHeld = true
    } else {
      context.read()
    }
  }

  // MARK: Ordering

  @discardableResult
  private func enqueue(_ reply: HTTPTrackerReply?, _ head: HTTPRequestHead, keepAlive: Bool)
    -> UInt64
  {
    enqueue(reply, version: head.version, keepAlive: keepAlive)
  }

  @discardableResult
  private func enqueue(_ reply: HTTPTrackerReply?, version: HTTPVersion, keepAlive: Bool) -> UInt64
  {
    let keepAlive = keepAlive && !(reply?.forceClose ?? false)
    if !keepAlive { closing = true }
    let sequence = firstSequence &+ UInt64(slots.count)
    slots.append(Slot(version: version, keepAlive: keepAlive, reply: reply))
    if reply != nil { writeReadyResponses() }
    return sequence
  }

  private func complete(sequence: UInt64, reply: HTTPTrackerReply) {
    // A closed connection dropped its slots; late answers are discarded.
    let offset = sequence &- firstSequence
    guard offset < UInt64(slots.count) else { return }
    slots[slots.index(slots.startIndex, offsetBy: Int(offset))].reply = reply
    writeReadyResponses()
  }

  /// Writes every finished response at the front of the queue, in order.
  private func writeReadyResponses() {
    guard let context else { return }
    var wrote = false
    while let slot = slots.first, let reply = slot.reply {
      slots.removeFirst()
      firstSequence &+= 1
      let close = !slot.keepAlive || (closing && slots.isEmpty)
      write(reply, version: slot.version, close: close, context: context)
      wrote = true
      if close {
        slots.removeAll()
        closing = true
        return
      }
    }
    if wrote { context.flush() }
    if readHeld && !closing && slots.count < maxPipelinedRequests {
      readHeld = false
      context.read()
    }
  }

  private func write(
    _ reply: HTTPTrackerReply, version: HTTPVersion, close: Bool, context: ChannelHandlerContext
  ) {
    var headers = HTTPHeaders()
    headers.reserveCapacity(4)
    headers.add(name: "content-type", value: "text/plain")
    headers.add(name: "content-length", value: String(reply.body.count))
    if reply.allowGET { headers.add(name: "allow", value: "GET") }
    if close {
      headers.add(name: "connection", value: "close")
    } else if version.major == 1 && version.minor == 0 {
      headers.add(name: "connection", value: "keep-alive")
    }
    context.write(
      wrapOutboundOut(
        .head(HTTPResponseHead(version: version, status: reply.status, headers: headers))),
      promise: nil)
    var buffer = context.channel.allocator.buffer(capacity: reply.body.count)
    buffer.writeBytes(reply.body)
    context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    if close {
      context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
        context.close(promise: nil)
      }
    } else {
      context.write(wrapOutboundOut(.end(nil)), promise: nil)
    }
  }
}
