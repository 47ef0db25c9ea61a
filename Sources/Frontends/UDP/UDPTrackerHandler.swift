import BitTorrent
import Logging
import NIOCore
import Tracker

/// Answers BEP 15 datagrams on one socket. Connects are answered on the event
/// loop, and so are announces when no hook must suspend (the common case;
/// see ``MeasuredAnnounce``): their answers join the read burst's batched
/// send. An announce a hook suspends, and every scrape, runs in a task off
/// the loop and its answer hops back.
///
/// Anti-amplification and anti-reflection: a sender that has not proved its
/// address with a valid connection id gets the BEP 15 connect reply (16
/// bytes for a 16-byte request) and nothing else — every other packet from
/// it is dropped and counted, so a spoofed flood cannot aim answers at a
/// victim. Errors (malformed fields, unknown actions) go only to verified
/// senders.
final class UDPTrackerHandler: ChannelInboundHandler {
  typealias InboundIn = AddressedEnvelope<ByteBuffer>
  typealias OutboundOut = AddressedEnvelope<ByteBuffer>

  private let tracker: Tracker
  private let connectionIDs: UDPConnectionIDs
  private let maxInFlightRequests: Int
  private let acceptClientSuppliedIP: Bool
  private let metrics: FrontendMetrics
  private let logger: Logger
  private var context: ChannelHandlerContext?
  private var inFlight = 0
  private var needsFlush = false

  init(
    tracker: Tracker, connectionIDs: UDPConnectionIDs, maxInFlightRequests: Int,
    acceptClientSuppliedIP: Bool, metrics: FrontendMetrics,
    logger: Logger
  ) {
    self.metrics = metrics
    self.tracker = tracker
    self.connectionIDs = connectionIDs
    self.maxInFlightRequests = maxInFlightRequests
    self.acceptClientSuppliedIP = acceptClientSuppliedIP
    self.logger = logger
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let envelope = unwrapInboundIn(data)
    let packet = envelope.data
    guard let header = UDPPacketCodec.parseHeader(packet),
      let client = envelope.remoteAddress.trackerIPAddress,
      let rawPort = envelope.remoteAddress.port, rawPort > 0
    else { return }
    let remote = envelope.remoteAddress

    let action = UDPPacketCodec.Action(rawValue: header.action)
    if action == .connect, header.connectionID == UDPPacketCodec.protocolID {
      var buffer = context.channel.allocator.buffer(capacity: 16)
      UDPPacketCodec.writeConnect(
        transactionID: header.transactionID,
        connectionID: connectionIDs.make(for: client), into: &buffer)
      metrics.succeeded(.connect)
      send(buffer, to: remote, context: context)
      return
    }
    guard connectionIDs.isValid(header.connectionID, for: client) else {
      // Unverified (forged, stale, another address's id, or junk): silence.
      // No per-packet log either: a flood must not turn into a log flood.
      metrics.rejected(.badConnectionID)
      return
    }
    // Verified from here on: full-size answers and error packets are allowed.
    switch action {
    case .connect:
      metrics.failed(.connect, .badRequest)
      replyError(header, "bad protocol id", to: remote, context: context)

    case .announce:
      guard inFlight < maxInFlightRequests else {
        metrics.rejected(.overload)
        logger.debug("UDP request dropped: too many in flight")
        return
      }
      announce(header: header, packet: packet, client: client, to: remote, context: context)

    case .scrape:
      guard inFlight < maxInFlightRequests else {
        metrics.rejected(.overload)
        logger.debug("UDP request dropped: too many in flight")
        return
      }
      let request: ScrapeRequest
      do throws(TrackerFailure) {
        request = try UDPPacketCodec.parseScrape(packet, client: client)
      } catch {
        rejectMalformed(header, error, to: remote, context: context)
        return
      }
      let (tracker, metrics, transactionID) = (tracker, metrics, header.transactionID)
      runOffLoop(to: remote, context: context) { buffer in
        let start = ContinuousClock.now
        do throws(TrackerFailure) {
          let response = try await tracker.scrape(request)
          metrics.succeeded(.scrape, since: start)
          UDPPacketCodec.writeScrape(response, transactionID: transactionID, into: &buffer)
        } catch {
          metrics.failed(.scrape, error.kind, since: start)
          UDPPacketCodec.writeError(
            transactionID: transactionID, message: error.reason, into: &buffer)
        }
      }

    case .error, nil:
      metrics.rejected(.malformed)
      replyError(header, "unknown action: \(header.action)", to: remote, context: context)
    }
  }

  /// Answers on the loop when the tracker can finish without suspending
  /// (the common case: the answer joins this read burst's batched send);
  /// otherwise finishes off the loop and hops back.
  private func announce(
    header: UDPPacketCodec.Header, packet: ByteBuffer, client: IPAddress,
    to remote: SocketAddress, context: ChannelHandlerContext
  ) {
    let request: AnnounceRequest
    do throws(TrackerFailure) {
      request = try UDPPacketCodec.parseAnnounce(
        packet, client: client, acceptClientSuppliedIP: acceptClientSuppliedIP)
    } catch {
      rejectMalformed(header, error, to: remote, context: context)
      return
    }
    if let passkey = request.passkey {
      logger.trace("UDP announce", metadata: ["passkey": "\(redactedPasskey(passkey))"])
    }
    let (transactionID, ipv6, logger) = (header.transactionID, client.isIPv6, logger)
    switch metrics.announce(request, through: tracker) {
    case .finished(let result):
      var buffer = context.channel.allocator.buffer(
        capacity: Self.answerLength(of: result, ipv6: ipv6))
      Self.write(result, transactionID: transactionID, ipv6: ipv6, logger: logger, into: &buffer)
      send(buffer, to: remote, context: context)
    case .pending(let finish):
      runOffLoop(to: remote, context: context) { buffer in
        Self.write(
          await finish(), transactionID: transactionID, ipv6: ipv6, logger: logger, into: &buffer)
      }
    }
  }

  /// The announce answer, or the error packet of a refused announce (the
  /// sender is verified by now).
  private static func write(
    _ result: Result<AnnounceResponse, TrackerFailure>, transactionID: UInt32, ipv6: Bool,
    logger: Logger, into buffer: inout ByteBuffer
  ) {
    switch result {
    case .success(let response):
      UDPPacketCodec.writeAnnounce(
        response, transactionID: transactionID, ipv6: ipv6, into: &buffer)
    case .failure(let error):
      logger.debug("UDP announce failed", metadata: ["reason": "\(error.reason)"])
      UDPPacketCodec.writeError(
        transactionID: transactionID, message: error.reason, into: &buffer)
    }
  }

  private static func answerLength(
    of result: Result<AnnounceResponse, TrackerFailure>, ipv6: Bool
  ) -> Int {
    switch result {
    case .success(let response): UDPPacketCodec.announceLength(response, ipv6: ipv6)
    case .failure(let error): UDPPacketCodec.errorLength(message: error.reason)
    }
  }

  private func rejectMalformed(
    _ header: UDPPacketCodec.Header, _ error: TrackerFailure, to remote: SocketAddress,
    context: ChannelHandlerContext
  ) {
    metrics.rejected(.malformed)
    logger.debug("rejected UDP request", metadata: ["reason": "\(error.reason)"])
    replyError(header, error.reason, to: remote, context: context)
  }

  /// Runs `work` in a task (it may suspend) and sends what it wrote from
  /// the loop; counts against ``maxInFlightRequests`` meanwhile.
  private func runOffLoop(
    to remote: SocketAddress, context: ChannelHandlerContext,
    _ work: @escaping @Sendable (inout ByteBuffer) async -> Void
  ) {
    inFlight += 1
    let eventLoop = context.eventLoop
    let allocator = context.channel.allocator
    let handler = NIOLoopBound(self, eventLoop: eventLoop)
    Task {
      var buffer = allocator.buffer(capacity: 64)
      await work(&buffer)
      let answer = buffer
      eventLoop.execute { handler.value.finish(answer, to: remote) }
    }
  }

  private func finish(_ answer: ByteBuffer, to remote: SocketAddress) {
    inFlight -= 1
    guard let context else { return }
    context.writeAndFlush(
      wrapOutboundOut(AddressedEnvelope(remoteAddress: remote, data: answer)), promise: nil)
  }

  /// Sends an error packet; only ever called for a verified sender.
  private func replyError(
    _ header: UDPPacketCodec.Header, _ message: String, to remote: SocketAddress,
    context: ChannelHandlerContext
  ) {
    var buffer = context.channel.allocator.buffer(
      capacity: UDPPacketCodec.errorLength(message: message))
    UDPPacketCodec.writeError(transactionID: header.transactionID, message: message, into: &buffer)
    send(buffer, to: remote, context: context)
  }

  private func send(_ buffer: ByteBuffer, to remote: SocketAddress, context: ChannelHandlerContext)
  {
    context.write(
      wrapOutboundOut(AddressedEnvelope(remoteAddress: remote, data: buffer)), promise: nil)
    needsFlush = true
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if needsFlush {
      needsFlush = false
      context.flush()
    }
    context.fireChannelReadComplete()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // A datagram socket survives per-packet errors (e.g. ICMP port unreachable); keep serving.
    logger.debug("UDP socket error", metadata: ["error": "\(error)"])
  }
}
