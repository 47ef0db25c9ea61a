import NIOCore
import NIOPosix

/// HTTP/1.1 over many keep-alive connections, up to
/// ``LoadConfiguration/pipelineDepth`` requests each. A connection the server
/// closes (HTTP/1.0 trackers answer once per connection) is opened again.
final class HTTPAnnounceTransport: AnnounceTransport {
  private struct Pending {
    var parameters: AnnounceParameters
    var sentAt: UInt64
  }

  private final class Connection {
    var channel: (any Channel)?
    /// Bumped on every (re)connect, so free-slot tokens of a closed channel are ignored.
    var generation = 0
    var closing = false
    var pending = CircularBuffer<Pending>()
    var scanner = HTTPResponseScanner()
    var needsFlush = false
    var answers = 0
  }

  private let configuration: LoadConfiguration
  private let address: SocketAddress
  private let encoder: AnnounceEncoder
  private let eventLoop: any EventLoop
  private weak var run: LoadRun?
  private let connections: [Connection]
  /// One token per free request slot: (connection, generation).
  private var freeSlots: [(Int, Int)] = []
  private var closed = false
  /// Learnt when a server closes a connection after an answer that did not
  /// say it would: from then on only an explicit keep-alive keeps one open.
  private var serverClosesAfterEachAnswer = false
  private var loopBound: NIOLoopBound<HTTPAnnounceTransport>!

  init(
    configuration: LoadConfiguration, address: SocketAddress, encoder: AnnounceEncoder,
    eventLoop: any EventLoop, run: LoadRun
  ) {
    self.configuration = configuration
    self.address = address
    self.encoder = encoder
    self.eventLoop = eventLoop
    self.run = run
    self.connections = (0..<configuration.connections).map { _ in Connection() }
  }

  func start() -> EventLoopFuture<Void> {
    loopBound = NIOLoopBound(self, eventLoop: eventLoop)
    let opens = connections.indices.map { connect($0) }
    return EventLoopFuture.whenAllComplete(opens, on: eventLoop).flatMapThrowing { results in
      // Start if at least one connection opened; the others keep retrying.
      guard results.contains(where: { if case .success = $0 { true } else { false } }) else {
        if case .failure(let error) = results.first { throw error }
        return
      }
    }
  }

  private func connect(_ index: Int) -> EventLoopFuture<Void> {
    let loopBound = self.loopBound!
    return ClientBootstrap(group: eventLoop)
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(
            HTTPClientConnectionHandler(transport: loopBound, connection: index))
        }
      }
      .connect(to: address)
      .map { channel in loopBound.value.opened(channel, connection: index) }
      .flatMapErrorThrowing { error in
        loopBound.value.failedToOpen(connection: index)
        throw error
      }
  }

  private func opened(_ channel: any Channel, connection index: Int) {
    guard !closed else {
      channel.close(promise: nil)
      return
    }
    let connection = connections[index]
    connection.channel = channel
    connection.generation += 1
    connection.closing = false
    connection.scanner.reset()
    connection.answers = 0
    for _ in 0..<configuration.pipelineDepth { freeSlots.append((index, connection.generation)) }
    run?.countHTTPConnection()
    run?.transportHasRoom()
  }

  private func failedToOpen(connection index: Int) {
    guard !closed else { return }
    run?.countConnectFailure()
    let loopBound = self.loopBound!
    eventLoop.scheduleTask(in: .milliseconds(50)) {
      _ = loopBound.value.reopen(index)
    }
  }

  private func reopen(_ index: Int) -> EventLoopFuture<Void> {
    guard !closed else { return eventLoop.makeSucceededVoidFuture() }
    return connect(index)
  }

  func hasRoom() -> Bool {
    while let (index, generation) = freeSlots.last {
      let connection = connections[index]
      if connection.generation == generation, connection.channel != nil, !connection.closing {
        return true
      }
      freeSlots.removeLast()
    }
    return false
  }

  func send(_ parameters: AnnounceParameters, sentAt: UInt64) {
    // `hasRoom()` was true, so the last token is valid.
    let (index, _) = freeSlots.removeLast()
    let connection = connections[index]
    guard let channel = connection.channel else { return }
    var buffer = channel.allocator.buffer(capacity: 384)
    encoder.writeHTTPAnnounce(parameters, into: &buffer)
    connection.pending.append(Pending(parameters: parameters, sentAt: sentAt))
    channel.write(buffer, promise: nil)
    connection.needsFlush = true
  }

  func flush() {
    for connection in connections where connection.needsFlush {
      connection.needsFlush = false
      connection.channel?.flush()
    }
  }

  /// Bytes from connection `index`.
  func receive(_ bytes: inout ByteBuffer, connection index: Int) {
    let connection = connections[index]
    connection.scanner.append(&bytes)
    while true {
      let response: ScannedHTTPResponse?
      do {
        response = try connection.scanner.next()
      } catch {
        failAll(connection, kind: "transport: \(error)")
        connection.channel?.close(promise: nil)
        return
      }
      guard let response else { return }
      finishHead(of: connection, index: index, with: response)
    }
  }

  private func finishHead(of connection: Connection, index: Int, with response: ScannedHTTPResponse)
  {
    guard let pending = connection.pending.popFirst() else { return }
    connection.answers += 1
    if response.closes || configuration.connectionPerAnnounce
      || (serverClosesAfterEachAnswer && !response.saysKeepAlive)
    {
      connection.closing = true
    } else {
      freeSlots.append((index, connection.generation))
    }
    let failure: String? =
      if let reason = response.failureReason {
        "failure: \(reason)"
      } else if response.status != 200 {
        "http status \(response.status)"
      } else {
        nil
      }
    run?.announceFinished(pending.parameters, sentAt: pending.sentAt, failure: failure)
    if connection.closing, connection.pending.isEmpty {
      connection.channel?.close(promise: nil)
    }
  }

  /// Connection `index` closed: an answer that ran to the end completes, the rest fail; reopen.
  func closedByPeer(connection index: Int) {
    let connection = connections[index]
    if let response = connection.scanner.finishAtEOF() {
      finishHead(of: connection, index: index, with: response)
    }
    if connection.answers > 0, !connection.closing, !connection.pending.isEmpty {
      // Requests written after an answer the server then closed on.
      serverClosesAfterEachAnswer = true
      failAll(connection, kind: "transport: server closed a connection after an answer")
    } else {
      failAll(connection, kind: "transport: connection closed")
    }
    connection.channel = nil
    connection.generation += 1
    guard !closed else { return }
    _ = connect(index)
  }

  private func failAll(_ connection: Connection, kind: String) {
    connection.closing = true
    while let pending = connection.pending.popFirst() {
      run?.announceFinished(pending.parameters, sentAt: pending.sentAt, failure: kind)
    }
  }

  func expire(sentBefore deadline: UInt64) {
    for connection in connections {
      if let oldest = connection.pending.first, oldest.sentAt < deadline {
        // A stuck connection: its requests time out and it is replaced.
        connection.closing = true
        while let pending = connection.pending.popFirst() {
          run?.announceFinished(pending.parameters, sentAt: pending.sentAt, failure: "timeout")
        }
        connection.channel?.close(promise: nil)
      }
    }
  }

  func close() -> EventLoopFuture<Void> {
    closed = true
    let closes = connections.compactMap { connection -> EventLoopFuture<Void>? in
      connection.pending.removeAll()
      return connection.channel?.close()
    }
    return EventLoopFuture.andAllComplete(closes, on: eventLoop).assumeIsolated().map {
      [self] in loopBound = nil
    }.nonisolated()
  }
}

/// Hands a connection's bytes and its closing to the transport.
private final class HTTPClientConnectionHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer

  private let transport: NIOLoopBound<HTTPAnnounceTransport>
  private let connection: Int

  init(transport: NIOLoopBound<HTTPAnnounceTransport>, connection: Int) {
    self.transport = transport
    self.connection = connection
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = unwrapInboundIn(data)
    transport.value.receive(&bytes, connection: connection)
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    transport.value.flush()
  }

  func channelInactive(context: ChannelHandlerContext) {
    transport.value.closedByPeer(connection: connection)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }
}
