import NIOCore

/// How a transport reports the end of one announce.
protocol AnnounceCompletionHandler: AnyObject {
  /// `failure` is nil on success, else the error kind (see ``LoadReport/errors``).
  func announceFinished(_ parameters: AnnounceParameters, sentAt: UInt64, failure: String?)
  /// More announces can be sent (a connection opened, a pipeline slot freed).
  func transportHasRoom()
}

/// One protocol's way of sending announces; confined to the run's event loop.
protocol AnnounceTransport: AnyObject {
  /// Opens sockets or connections.
  func start() -> EventLoopFuture<Void>
  /// Whether ``send(_:sentAt:)`` can take an announce now.
  func hasRoom() -> Bool
  /// Writes one announce (not flushed).
  func send(_ parameters: AnnounceParameters, sentAt: UInt64)
  /// Flushes written announces.
  func flush()
  /// Fails announces unanswered since before `deadline` as timeouts.
  func expire(sentBefore deadline: UInt64)
  /// Closes everything; outstanding announces are dropped uncounted.
  func close() -> EventLoopFuture<Void>
}

/// Drives one load run on one event loop: picks peers round-robin, issues
/// announces within the concurrency and rate limits, counts outcomes and
/// stops at the configured request count or duration.
final class LoadRun: AnnounceCompletionHandler {
  private enum Phase {
    case warmingUp, measuring, finished
  }

  private let configuration: LoadConfiguration
  private let eventLoop: any EventLoop
  private var population: LoadPopulation
  private var transport: (any AnnounceTransport)!
  private var statistics = LoadStatistics()
  private var phase = Phase.warmingUp
  private var peerBusy: [Bool]
  private var cursor = 0
  private var inFlight = 0
  private var issuedWhileMeasuring = 0
  private var phaseStart: UInt64 = 0
  private var issuedInPhase = 0
  private var cpuAtStart = 0.0
  private var timers: [RepeatedTask] = []
  private let promise: EventLoopPromise<LoadReport>
  private let target: String
  private var begun = false
  private var udpConnects = 0
  private var httpConnections = 0
  private var connectFailures = 0

  init(
    configuration: LoadConfiguration, address: SocketAddress, eventLoop: any EventLoop
  ) {
    self.configuration = configuration
    self.eventLoop = eventLoop
    self.population = LoadPopulation(
      torrents: configuration.torrents, peers: configuration.peers,
      passkeys: configuration.passkeys)
    self.peerBusy = Array(repeating: false, count: configuration.peers)
    self.promise = eventLoop.makePromise()
    self.target = "\(configuration.host):\(configuration.port)"
    let requests = AnnounceEncoder(configuration: configuration)
    switch configuration.transport {
    case .udp:
      transport = UDPAnnounceTransport(
        configuration: configuration, address: address, encoder: requests, eventLoop: eventLoop,
        run: self)
    case .http:
      transport = HTTPAnnounceTransport(
        configuration: configuration, address: address, encoder: requests, eventLoop: eventLoop,
        run: self)
    }
  }

  /// Starts the run; the future completes with the report.
  func start() -> EventLoopFuture<LoadReport> {
    transport.start().assumeIsolated().whenComplete { [self] result in
      switch result {
      case .failure(let error):
        promise.fail(error)
      case .success:
        begin()
      }
    }
    return promise.futureResult
  }

  private func begin() {
    let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
    begun = true
    phaseStart = Self.now()
    if configuration.warmup > .zero {
      phase = .warmingUp
    } else {
      startMeasuring()
    }
    // Timeouts are swept, not timed one by one: one timer for all announces.
    timers.append(
      eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(20), delay: .milliseconds(20)) {
        _ in loopBound.value.tick()
      })
    if configuration.rate != nil {
      timers.append(
        eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(1), delay: .milliseconds(1)) {
          _ in loopBound.value.pump()
        })
    }
    pump()
  }

  private func startMeasuring() {
    phase = .measuring
    statistics = LoadStatistics()
    phaseStart = Self.now()
    issuedInPhase = 0
    cpuAtStart = processCPUSeconds()
  }

  private func tick() {
    guard phase != .finished else { return }
    let now = Self.now()
    transport.expire(sentBefore: now &- UInt64(configuration.timeout.nanoseconds))
    switch phase {
    case .warmingUp:
      if now - phaseStart >= UInt64(configuration.warmup.nanoseconds) { startMeasuring() }
    case .measuring:
      if case .duration(let length) = configuration.stop,
        now - phaseStart >= UInt64(length.nanoseconds)
      {
        finish(at: now)
        return
      }
    case .finished:
      return
    }
    pump()
  }

  /// Issues as many announces as the limits allow, then flushes.
  func pump() {
    guard begun, phase != .finished else { return }
    var allowed = configuration.concurrency - inFlight
    if let rate = configuration.rate {
      let elapsed = Self.now() - phaseStart
      let due = Int(Double(rate) * Double(elapsed) / 1e9) + 1 - issuedInPhase
      allowed = min(allowed, due)
    }
    if phase == .measuring, case .requests(let count) = configuration.stop {
      allowed = min(allowed, count - issuedWhileMeasuring)
    }
    var sent = 0
    while sent < allowed, transport.hasRoom() {
      guard let peer = nextIdlePeer() else { break }
      let parameters = population.next(peer: peer)
      peerBusy[peer] = true
      inFlight += 1
      issuedInPhase += 1
      if phase == .measuring { issuedWhileMeasuring += 1 }
      transport.send(parameters, sentAt: Self.now())
      sent += 1
    }
    if sent > 0 { transport.flush() }
  }

  private func nextIdlePeer() -> Int? {
    for _ in 0..<peerBusy.count {
      let peer = cursor
      cursor += 1
      if cursor == peerBusy.count { cursor = 0 }
      if !peerBusy[peer] { return peer }
    }
    return nil
  }

  func announceFinished(_ parameters: AnnounceParameters, sentAt: UInt64, failure: String?) {
    guard phase != .finished else { return }
    peerBusy[parameters.peer] = false
    inFlight -= 1
    let now = Self.now()
    if let failure {
      if phase == .measuring { statistics.recordError(failure) }
    } else {
      population.commit(parameters)
      if phase == .measuring {
        statistics.recordSuccess(event: parameters.event, nanoseconds: now &- sentAt)
      }
    }
    if phase == .measuring, case .requests(let count) = configuration.stop,
      statistics.completed >= count
    {
      finish(at: now)
      return
    }
    if configuration.rate == nil { pump() }
  }

  func transportHasRoom() {
    if configuration.rate == nil { pump() }
  }

  /// Counts a UDP connect sent (whole run).
  func countUDPConnect() { udpConnects += 1 }

  /// Counts an HTTP connection opened (whole run).
  func countHTTPConnection() { httpConnections += 1 }

  /// Counts a failed connection attempt (whole run).
  func countConnectFailure() { connectFailures += 1 }

  private func finish(at now: UInt64) {
    phase = .finished
    for timer in timers { timer.cancel() }
    timers = []
    statistics.udpConnects = udpConnects
    statistics.httpConnections = httpConnections
    statistics.connectFailures = connectFailures
    let report = statistics.report(
      target: target, transport: configuration.transport,
      seconds: Double(now - phaseStart) / 1e9, cpuSeconds: processCPUSeconds() - cpuAtStart)
    let promise = self.promise
    transport.close().assumeIsolated().whenComplete { [self] _ in
      transport = nil
      promise.succeed(report)
    }
  }

  /// Monotonic nanoseconds.
  static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}

extension Duration {
  /// Whole nanoseconds (saturating at Int64.max).
  var nanoseconds: Int64 {
    let (seconds, attoseconds) = components
    let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    return overflow ? .max : scaled + attoseconds / 1_000_000_000
  }
}
