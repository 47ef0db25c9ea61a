import BitTorrent
import Logging
import NIOCore
import Tracker

/// Answers BEP 15 datagrams on one socket. Connects are answered on the event
/// loop; announces and scrapes run in the tracker off the loop and their
/// answers hop back. Anti-amplification: until a sender proves its address
/// with a valid connection id, nothing sent to it is larger than what it sent.
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

    switch UDPPacketCodec.Action(rawValue: header.action) {
    case .connect:
      guard header.connectionID == UDPPacketCodec.protocolID else {
        metrics.failed(.connect, .badRequest)
        replyError(
          header, "bad protocol id", to: remote, requestLength: packet.readableBytes,
          context: context)
        return
      }
      var buffer = context.channel.allocator.buffer(capacity: 16)
      UDPPacketCodec.writeConnect(
        transactionID: header.transactionID,
        connectionID: connectionIDs.make(for: client), into: &buffer)
      metrics.succeeded(.connect)
      send(buffer, to: remote, context: context)

    case .announce, .scrape:
      guard connectionIDs.isValid(header.connectionID, for: client) else {
        metrics.rejected(.badConnectionID)
        replyError(
          header, "bad connection id", to: remote, requestLength: packet.readableBytes,
          context: context)
        return
      }
      // Verified from here on: full-size answers are allowed.
      guard inFlight < maxInFlightRequests else {
        metrics.rejected(.overload)
        logger.debug("UDP request dropped: too many in flight")
        return
      }
      let work: @Sendable (inout ByteBuffer) async -> Void
      do throws(TrackerFailure) {
        work = try makeWork(header: header, packet: packet, client: client)
      } catch {
        metrics.rejected(.malformed)
        logger.debug("rejected UDP request", metadata: ["reason": "\(error.reason)"])
        replyError(header, error.reason, to: remote, requestLength: nil, context: context)
        return
      }
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

    case .error, nil:
      metrics.rejected(.malformed)
      let verified = connectionIDs.isValid(header.connectionID, for: client)
      replyError(
        header, "unknown action: \(header.action)", to: remote,
        requestLength: verified ? nil : packet.readableBytes, context: context)
    }
  }

  /// Parses the request now (on the loop, so bad input is answered at
  /// once) and returns the tracker call that writes the answer.
  private func makeWork(header: UDPPacketCodec.Header, packet: ByteBuffer, client: IPAddress)
    throws(TrackerFailure)
    -> @Sendable (inout ByteBuffer) async -> Void
  {
    let (tracker, logger, metrics) = (tracker, logger, metrics)
    let transactionID = header.transactionID
    if header.action == UDPPacketCodec.Action.announce.rawValue {
      let request = try UDPPacketCodec.parseAnnounce(
        packet, client: client, acceptClientSuppliedIP: acceptClientSuppliedIP)
      if let passkey = request.passkey {
        logger.trace("UDP announce", metadata: ["passkey": "\(redactedPasskey(passkey))"])
      }
      return { buffer in
        let start = ContinuousClock.now
        do throws(TrackerFailure) {
          let response = try await tracker.announce(request)
          metrics.succeeded(.announce, since: start)
          UDPPacketCodec.writeAnnounce(
            response, transactionID: transactionID, ipv6: client.isIPv6, into: &buffer)
        } catch {
          metrics.failed(.announce, error.kind, since: start)
          logger.debug("UDP announce failed", metadata: ["reason": "\(error.reason)"])
          UDPPacketCodec.writeError(
            transactionID: transactionID, message: error.reason, into: &buffer)
        }
      }
    }
    let request = try UDPPacketCodec.parseScrape(packet, client: client)
    return { buffer in
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
  }

  private func finish(_ answer: ByteBuffer, to remote: SocketAddress) {
    inFlight -= 1
    guard let context else { return }
    context.writeAndFlush(
      wrapOutboundOut(AddressedEnvelope(remoteAddress: remote, data: answer)), promise: nil)
  }

  private func replyError(
    _ header: UDPPacketCodec.Header, _ message: String, to remote: SocketAddress,
    requestLength: Int?,
    context: ChannelHandlerContext
  ) {
    var buffer = context.channel.allocator.buffer(capacity: 8 + message.utf8.count)
    UDPPacketCodec.writeError(
      transactionID: header.transactionID, message: message, maxLength: requestLength, into: &buffer
    )
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
