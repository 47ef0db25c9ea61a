import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// The operator's HTTP endpoint, on its own port so that it can stay private:
///
/// - `GET /metrics`: every metric in the Prometheus text format.
/// - `GET /healthz`: 200 while the process serves requests (liveness).
/// - `GET /readyz`: 200 when ``Readiness`` holds, else 503 with one unmet
///   condition per line (readiness).
///
/// It starts before the sink connects, so liveness answers during a slow
/// start, and stops after everything else, so the drain can be watched.
public final class AdminServer: Sendable {
  private let host: String
  private let port: Int
  private let registry: PrometheusCollectorRegistry
  private let readiness: Readiness
  private let logger: Logger
  private let channel = Mutex<(any Channel)?>(nil)

  /// Creates a server; nothing listens until ``start(group:)``.
  public init(
    host: String, port: Int, registry: PrometheusCollectorRegistry, readiness: Readiness,
    logger: Logger
  ) {
    self.host = host
    self.port = port
    self.registry = registry
    self.readiness = readiness
    self.logger = logger
  }

  /// Binds and starts answering; returns the bound address.
  @discardableResult
  public func start(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws
    -> SocketAddress
  {
    let (registry, readiness) = (registry, readiness)
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let pipeline = channel.pipeline.syncOperations
          try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(30)))
          try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
          try pipeline.addHandler(AdminHandler(registry: registry, readiness: readiness))
        }
      }
    let bound = try await bootstrap.bind(host: host, port: port).get()
    channel.withLock { $0 = bound }
    let address = bound.localAddress!
    logger.notice(
      "admin endpoint listening (/metrics, /healthz, /readyz)",
      metadata: ["address": "\(address.hostAndPort)"])
    return address
  }

  /// Stops listening; open connections close with it.
  public func shutdown() async {
    guard let bound = channel.withLock({ $0.take() }) else { return }
    try? await bound.close()
  }
}

/// Answers one admin connection's requests.
private final class AdminHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let registry: PrometheusCollectorRegistry
  private let readiness: Readiness
  private var head: HTTPRequestHead?

  init(registry: PrometheusCollectorRegistry, readiness: Readiness) {
    self.registry = registry
    self.readiness = readiness
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head): self.head = head
    case .body: break
    case .end:
      guard let head else { return }
      self.head = nil
      respond(to: head, context: context)
    }
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is IdleStateHandler.IdleStateEvent {
      context.close(promise: nil)
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
    let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
    let (status, contentType, body): (HTTPResponseStatus, String, [UInt8])
    if head.method != .GET && head.method != .HEAD {
      (status, contentType, body) = (.methodNotAllowed, "text/plain", Array("use GET\n".utf8))
    } else {
      switch path {
      case "/metrics":
        (status, contentType, body) = (
          .ok, "text/plain; version=0.0.4; charset=utf-8", registry.emitToBuffer()
        )
      case "/healthz":
        (status, contentType, body) = (.ok, "text/plain", Array("ok\n".utf8))
      case "/readyz":
        let unmet = readiness.unmetConditions
        (status, contentType, body) =
          unmet.isEmpty
          ? (.ok, "text/plain", Array("ready\n".utf8))
          : (.serviceUnavailable, "text/plain", Array((unmet.joined(separator: "\n") + "\n").utf8))
      default:
        (status, contentType, body) = (
          .notFound, "text/plain", Array("not found: try /metrics, /healthz or /readyz\n".utf8)
        )
      }
    }
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: contentType)
    headers.add(name: "Content-Length", value: "\(body.count)")
    headers.add(name: "Cache-Control", value: "no-store")
    let keepAlive = head.isKeepAlive
    if !keepAlive { headers.add(name: "Connection", value: "close") }
    context.write(
      wrapOutboundOut(
        .head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
      promise: nil)
    if head.method != .HEAD {
      context.write(
        wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))),
        promise: nil)
    }
    let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
    if !keepAlive {
      let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
      done.whenComplete { _ in loopBound.value.close(promise: nil) }
    }
  }
}
