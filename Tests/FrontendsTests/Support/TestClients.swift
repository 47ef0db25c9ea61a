import BitTorrent
import NIOCore
import NIOPosix
import Synchronization

/// Why a test client gave up.
struct TestClientError: Error, CustomStringConvertible {
  var description: String
}

/// Forwards received bytes (or datagrams) into an AsyncStream; ends the
/// stream when the connection closes.
private final class StreamingHandler<Message: Sendable>: ChannelInboundHandler, Sendable {
  typealias InboundIn = Message
  let continuation: AsyncStream<Message>.Continuation

  init(continuation: AsyncStream<Message>.Continuation) {
    self.continuation = continuation
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    continuation.yield(unwrapInboundIn(data))
  }

  func channelInactive(context: ChannelHandlerContext) {
    continuation.finish()
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }
}

/// How long a test client waits for the server before closing itself and
/// failing the test (a guard against hangs, never a pass/fail criterion).
let testClientWatchdog: TimeAmount = .seconds(20)

/// A parsed HTTP response.
struct TestHTTPResponse {
  var status: Int
  var headers: [(name: String, value: String)]
  var body: [UInt8]

  func header(_ name: String) -> String? {
    headers.first { $0.name == name.lowercased() }?.value
  }

  /// The body as bencode.
  func bencode() throws -> BencodeValue {
    try BencodeDecoder().decode(body)
  }

  /// The `failure reason`, if the body carries one.
  var failureReason: String? {
    (try? bencode())?["failure reason"]?.text
  }
}

/// Set when a test client's watchdog closed its connection.
final class WatchdogFlag: Sendable {
  private let value = Atomic(false)
  var fired: Bool { value.load(ordering: .relaxed) }
  func fire() { value.store(true, ordering: .relaxed) }
}

/// A raw TCP client: writes whatever bytes a test wants and parses responses.
final class TestHTTPConnection {
  let channel: any Channel
  private var iterator: AsyncStream<ByteBuffer>.AsyncIterator
  private var pending: [UInt8] = []
  private let watchdogFlag: WatchdogFlag
  private let watchdog: Scheduled<Void>

  /// True when the server, not the watchdog, closed the connection.
  private(set) var closedByServer = false

  private init(
    channel: any Channel, stream: AsyncStream<ByteBuffer>, watchdogFlag: WatchdogFlag,
    watchdog: Scheduled<Void>
  ) {
    self.channel = channel
    self.iterator = stream.makeAsyncIterator()
    self.watchdogFlag = watchdogFlag
    self.watchdog = watchdog
  }

  static func connect(to address: SocketAddress) async throws -> TestHTTPConnection {
    let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(
            StreamingHandler(continuation: continuation))
        }
      }
      .connect(to: address).get()
    let flag = WatchdogFlag()
    let watchdog = channel.eventLoop.scheduleTask(in: testClientWatchdog) {
      flag.fire()
      channel.close(promise: nil)
    }
    // Once closed (by the server, or by the test) the watchdog has nothing
    // to do: a test task that resumes late under a busy parallel run must
    // not mistake a server's close for the watchdog's.
    channel.closeFuture.whenComplete { _ in watchdog.cancel() }
    return TestHTTPConnection(
      channel: channel, stream: stream, watchdogFlag: flag, watchdog: watchdog)
  }

  deinit {
    watchdog.cancel()
    channel.close(promise: nil)
  }

  func send(_ text: String) async throws {
    try await send(Array(text.utf8))
  }

  func send(_ bytes: [UInt8]) async throws {
    try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
  }

  /// Sends `GET target` with keep-alive.
  func get(_ target: String, headers: [(String, String)] = []) async throws -> TestHTTPResponse {
    var request = "GET \(target) HTTP/1.1\r\nHost: tracker\r\n"
    for (name, value) in headers { request += "\(name): \(value)\r\n" }
    request += "\r\n"
    try await send(request)
    guard let response = try await readResponse() else {
      throw TestClientError(
        description: "connection closed before a response to \(target.prefix(80))")
    }
    return response
  }

  /// Reads the next response; nil if the connection closed first.
  func readResponse() async throws -> TestHTTPResponse? {
    while true {
      if let response = try parseResponse() { return response }
      guard let chunk = await iterator.next() else {
        noteClosed()
        if pending.isEmpty { return nil }
        throw TestClientError(description: "connection closed inside a response")
      }
      pending.append(contentsOf: chunk.readableBytesView)
    }
  }

  /// Waits until the connection closes; returns any bytes received meanwhile.
  func waitUntilClosed() async -> [UInt8] {
    while let chunk = await iterator.next() {
      pending.append(contentsOf: chunk.readableBytesView)
    }
    noteClosed()
    defer { pending.removeAll() }
    return pending
  }

  private func noteClosed() {
    closedByServer = !watchdogFlag.fired
  }

  private func parseResponse() throws -> TestHTTPResponse? {
    let separator = Array("\r\n\r\n".utf8)
    guard pending.count >= 4,
      let headEnd = (0...(pending.count - 4)).first(where: {
        pending[$0..<$0 + 4].elementsEqual(separator)
      })
    else { return nil }
    let headText = String(decoding: pending[..<headEnd], as: UTF8.self)
    var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
    let statusLine = lines.removeFirst().split(separator: " ")
    guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
      throw TestClientError(description: "bad status line \(statusLine)")
    }
    let headers = lines.compactMap { line -> (name: String, value: String)? in
      guard let colon = line.firstIndex(of: ":") else { return nil }
      return (
        line[..<colon].lowercased(),
        String(line[line.index(after: colon)...].drop(while: { $0 == " " }))
      )
    }
    let length = headers.first { $0.name == "content-length" }.flatMap { Int($0.value) } ?? 0
    let bodyStart = headEnd + 4
    guard pending.count >= bodyStart + length else { return nil }
    let body = Array(pending[bodyStart..<bodyStart + length])
    pending.removeFirst(bodyStart + length)
    return TestHTTPResponse(status: status, headers: headers, body: body)
  }
}

/// A UDP client talking to one server address.
final class TestUDPClient {
  let channel: any Channel
  let server: SocketAddress
  private var iterator: AsyncStream<AddressedEnvelope<ByteBuffer>>.AsyncIterator
  private let watchdog: Scheduled<Void>
  private var sentinel: UInt32 = 0

  private init(
    channel: any Channel, server: SocketAddress, stream: AsyncStream<AddressedEnvelope<ByteBuffer>>,
    watchdog: Scheduled<Void>
  ) {
    self.channel = channel
    self.server = server
    self.iterator = stream.makeAsyncIterator()
    self.watchdog = watchdog
  }

  /// Binds an ephemeral port on `host` (use the server's family).
  static func connect(to server: SocketAddress, bindHost: String) async throws -> TestUDPClient {
    let (stream, continuation) = AsyncStream<AddressedEnvelope<ByteBuffer>>.makeStream()
    let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(
            StreamingHandler(continuation: continuation))
        }
      }
      .bind(host: bindHost, port: 0).get()
    let watchdog = channel.eventLoop.scheduleTask(in: testClientWatchdog) {
      channel.close(promise: nil)
    }
    return TestUDPClient(channel: channel, server: server, stream: stream, watchdog: watchdog)
  }

  deinit {
    watchdog.cancel()
    channel.close(promise: nil)
  }

  func send(_ bytes: [UInt8]) async throws {
    let envelope = AddressedEnvelope(
      remoteAddress: server, data: channel.allocator.buffer(bytes: bytes))
    try await channel.writeAndFlush(envelope)
  }

  /// The next datagram from the server.
  func receive() async throws -> [UInt8] {
    guard let envelope = await iterator.next() else {
      throw TestClientError(description: "no UDP answer before the watchdog closed the client")
    }
    return Array(envelope.data.readableBytesView)
  }

  /// Sends and returns the answer.
  func exchange(_ bytes: [UInt8]) async throws -> [UInt8] {
    try await send(bytes)
    return try await receive()
  }

  /// Proves that the server answered nothing sent so far: sends a connect
  /// and checks that the next datagram is its reply. Packets the server
  /// drops are dropped on its event loop before the connect is read, and
  /// loopback keeps order, so any answer to them would arrive first.
  func nextAnswerIsTheReplyToAConnect() async throws -> Bool {
    sentinel &+= 1
    let transactionID = 0xC0DE_0000 | sentinel
    let answer = try await exchange(UDPPackets.connect(transactionID: transactionID))
    return answer.count == 16 && answer.readUInt32(at: 0) == 0
      && answer.readUInt32(at: 4) == transactionID
  }

  /// Runs a BEP 15 connect and returns the connection id.
  func connectionID(transactionID: UInt32 = 0x0102_0304) async throws -> UInt64 {
    let answer = try await exchange(UDPPackets.connect(transactionID: transactionID))
    guard answer.count == 16, answer.readUInt32(at: 0) == 0,
      answer.readUInt32(at: 4) == transactionID
    else {
      throw TestClientError(description: "bad connect answer \(answer)")
    }
    return answer.readUInt64(at: 8)
  }
}

/// Builders for BEP 15 request packets.
enum UDPPackets {
  static func connect(transactionID: UInt32, magic: UInt64 = 0x417_2710_1980) -> [UInt8] {
    var bytes = [UInt8]()
    bytes.appendInteger(magic)
    bytes.appendInteger(UInt32(0))
    bytes.appendInteger(transactionID)
    return bytes
  }

  static func announce(
    connectionID: UInt64, transactionID: UInt32 = 7, infoHash: InfoHash, peerID: PeerID,
    downloaded: Int64 = 0, left: Int64, uploaded: Int64 = 0, event: UInt32 = 0, ip: UInt32 = 0,
    key: UInt32 = 0xabcd, numWant: Int32 = -1, port: UInt16, options: [UInt8] = []
  ) -> [UInt8] {
    var bytes = [UInt8]()
    bytes.appendInteger(connectionID)
    bytes.appendInteger(UInt32(1))
    bytes.appendInteger(transactionID)
    bytes += infoHash.bytes
    bytes += peerID.bytes
    bytes.appendInteger(downloaded)
    bytes.appendInteger(left)
    bytes.appendInteger(uploaded)
    bytes.appendInteger(event)
    bytes.appendInteger(ip)
    bytes.appendInteger(key)
    bytes.appendInteger(numWant)
    bytes.appendInteger(port)
    return bytes + options
  }

  static func scrape(connectionID: UInt64, transactionID: UInt32 = 9, infoHashes: [InfoHash])
    -> [UInt8]
  {
    var bytes = [UInt8]()
    bytes.appendInteger(connectionID)
    bytes.appendInteger(UInt32(2))
    bytes.appendInteger(transactionID)
    for hash in infoHashes { bytes += hash.bytes }
    return bytes
  }

  /// BEP 41 URL-data options carrying `path`, split into chunks of `chunk` bytes.
  static func urlData(_ path: String, chunk: Int = 255) -> [UInt8] {
    let bytes = Array(path.utf8)
    var options = [UInt8]()
    var start = 0
    while start < bytes.count {
      let piece = bytes[start..<min(bytes.count, start + chunk)]
      options += [0x2, UInt8(piece.count)] + piece
      start += chunk
    }
    return options + [0x0]
  }
}

extension Array where Element == UInt8 {
  mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
    Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
  }

  func readUInt32(at offset: Int) -> UInt32 {
    self[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
  }

  func readUInt64(at offset: Int) -> UInt64 {
    self[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
  }

  func readUInt16(at offset: Int) -> UInt16 {
    UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
  }

  /// The error message of a BEP 15 error packet, if this is one.
  var udpErrorMessage: String? {
    guard count >= 8, readUInt32(at: 0) == 3 else { return nil }
    return String(decoding: self[8...], as: UTF8.self)
  }
}
