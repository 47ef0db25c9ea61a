import NIOCore
import NIOPosix

/// BEP 15 over a few UDP sockets, each acting as one client: it connects,
/// reuses its connection id for ``LoadConfiguration/connectionIDLifetime``,
/// connects again when the id is older, the tracker rejects it, or an
/// announce timed out.
final class UDPAnnounceTransport: AnnounceTransport {
  private struct Pending {
    var parameters: AnnounceParameters
    var sentAt: UInt64
  }

  /// One socket's BEP 15 state.
  private final class Client {
    var channel: (any Channel)?
    var connectionID: UInt64?
    var connectionIDReceivedAt: UInt64 = 0
    var connectTransaction: UInt32?
    var connectSentAt: UInt64 = 0
    var waitingForConnection: [Pending] = []
    var inFlight: [UInt32: Pending] = [:]
    var nextTransaction: UInt32 = 1
    var needsFlush = false

    func transactionID() -> UInt32 {
      nextTransaction &+= 1
      return nextTransaction
    }
  }

  private let configuration: LoadConfiguration
  private let address: SocketAddress
  private let encoder: AnnounceEncoder
  private let eventLoop: any EventLoop
  private weak var run: LoadRun?
  private let clients: [Client]
  private var nextClient = 0

  init(
    configuration: LoadConfiguration, address: SocketAddress, encoder: AnnounceEncoder,
    eventLoop: any EventLoop, run: LoadRun
  ) {
    self.configuration = configuration
    self.address = address
    self.encoder = encoder
    self.eventLoop = eventLoop
    self.run = run
    self.clients = (0..<configuration.connections).map { _ in Client() }
  }

  func start() -> EventLoopFuture<Void> {
    let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
    let bindHost = address.protocol == .inet6 ? "::" : "0.0.0.0"
    let binds = clients.indices.map { index in
      DatagramBootstrap(group: eventLoop)
        .channelOption(.datagramVectorReadMessageCount, value: 32)
        .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
        .channelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
              UDPClientHandler(transport: loopBound, client: index))
          }
        }
        .bind(host: bindHost, port: 0)
        .map { channel in loopBound.value.clients[index].channel = channel }
    }
    return EventLoopFuture.andAllSucceed(binds, on: eventLoop)
  }

  func hasRoom() -> Bool { true }

  func send(_ parameters: AnnounceParameters, sentAt: UInt64) {
    let client = clients[nextClient]
    nextClient = (nextClient + 1) % clients.count
    let pending = Pending(parameters: parameters, sentAt: sentAt)
    if let id = client.connectionID,
      sentAt &- client.connectionIDReceivedAt
        < UInt64(configuration.connectionIDLifetime.nanoseconds)
    {
      writeAnnounce(pending, connectionID: id, client: client)
    } else {
      client.connectionID = nil
      client.waitingForConnection.append(pending)
      if client.connectTransaction == nil { sendConnect(client, now: sentAt) }
    }
  }

  private func writeAnnounce(_ pending: Pending, connectionID: UInt64, client: Client) {
    guard let channel = client.channel else { return }
    let transaction = client.transactionID()
    var buffer = channel.allocator.buffer(capacity: 160)
    encoder.writeUDPAnnounce(
      pending.parameters, connectionID: connectionID, transactionID: transaction, into: &buffer)
    client.inFlight[transaction] = pending
    channel.write(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
    client.needsFlush = true
  }

  private func sendConnect(_ client: Client, now: UInt64) {
    guard let channel = client.channel else { return }
    let transaction = client.transactionID()
    var buffer = channel.allocator.buffer(capacity: 16)
    encoder.writeConnect(transactionID: transaction, into: &buffer)
    client.connectTransaction = transaction
    client.connectSentAt = now
    channel.write(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
    client.needsFlush = true
    run?.countUDPConnect()
  }

  func flush() {
    for client in clients where client.needsFlush {
      client.needsFlush = false
      client.channel?.flush()
    }
  }

  /// One datagram from the tracker to socket `index`.
  func receive(_ packet: ByteBuffer, client index: Int) {
    let client = clients[index]
    guard let action = packet.getInteger(at: packet.readerIndex, as: UInt32.self),
      let transaction = packet.getInteger(at: packet.readerIndex + 4, as: UInt32.self)
    else { return }
    let now = LoadRun.now()
    switch action {
    case 0 where transaction == client.connectTransaction:
      guard let id = packet.getInteger(at: packet.readerIndex + 8, as: UInt64.self) else { return }
      client.connectionID = id
      client.connectionIDReceivedAt = now
      client.connectTransaction = nil
      let waiting = client.waitingForConnection
      client.waitingForConnection = []
      for pending in waiting { writeAnnounce(pending, connectionID: id, client: client) }
    case 1:
      guard let pending = client.inFlight.removeValue(forKey: transaction) else { return }
      let failure = packet.readableBytes >= 20 ? nil : "transport: short announce answer"
      run?.announceFinished(pending.parameters, sentAt: pending.sentAt, failure: failure)
    case 3:
      let message = String(
        decoding: packet.readableBytesView.dropFirst(8), as: UTF8.self)
      if transaction == client.connectTransaction {
        client.connectTransaction = nil
        let waiting = client.waitingForConnection
        client.waitingForConnection = []
        for pending in waiting {
          run?.announceFinished(
            pending.parameters, sentAt: pending.sentAt, failure: "failure: \(message)")
        }
      } else if let pending = client.inFlight.removeValue(forKey: transaction) {
        // A rejected connection id: the next announce connects again.
        if message.lowercased().contains("connection") { client.connectionID = nil }
        run?.announceFinished(
          pending.parameters, sentAt: pending.sentAt, failure: "failure: \(message)")
      }
    default:
      break
    }
  }

  func expire(sentBefore deadline: UInt64) {
    let now = LoadRun.now()
    for client in clients {
      for (transaction, pending) in client.inFlight where pending.sentAt < deadline {
        client.inFlight[transaction] = nil
        // Trackers that drop packets with an unverifiable id (privtrak
        // does: no answer to unproven senders) give no error to react to;
        // as real clients do, the next announce after a timeout connects again.
        client.connectionID = nil
        run?.announceFinished(pending.parameters, sentAt: pending.sentAt, failure: "timeout")
      }
      if client.connectTransaction != nil, client.connectSentAt < deadline {
        // A lost connect: announces waiting since before the deadline time out, the rest wait on a new connect.
        let (expired, kept) = client.waitingForConnection.reduce(into: ([Pending](), [Pending]())) {
          if $1.sentAt < deadline { $0.0.append($1) } else { $0.1.append($1) }
        }
        client.waitingForConnection = kept
        client.connectTransaction = nil
        for pending in expired {
          run?.announceFinished(pending.parameters, sentAt: pending.sentAt, failure: "timeout")
        }
        if !client.waitingForConnection.isEmpty { sendConnect(client, now: now) }
      }
    }
    flush()
  }

  func close() -> EventLoopFuture<Void> {
    let closes = clients.compactMap { $0.channel?.close() }
    for client in clients {
      client.inFlight = [:]
      client.waitingForConnection = []
      client.channel = nil
    }
    return EventLoopFuture.andAllComplete(closes, on: eventLoop)
  }
}

/// Hands a socket's datagrams to its transport and flushes after each read burst.
private final class UDPClientHandler: ChannelInboundHandler {
  typealias InboundIn = AddressedEnvelope<ByteBuffer>

  private let transport: NIOLoopBound<UDPAnnounceTransport>
  private let client: Int

  init(transport: NIOLoopBound<UDPAnnounceTransport>, client: Int) {
    self.transport = transport
    self.client = client
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    transport.value.receive(unwrapInboundIn(data).data, client: client)
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    transport.value.flush()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // ICMP port unreachable and the like: the announce will time out; keep the socket.
  }
}
