import Metrics
import Tracker

/// Request counters and latency of one frontend, labelled with its protocol
/// (`http` or `udp`).
///
/// Every counter and timer is created up front, so serving a request only
/// increments: no label lookup or allocation on the hot path.
///
/// - `privtrak_requests_total{protocol, request, result}`: requests answered,
///   `request` is `announce`, `scrape` or (UDP only) `connect`, `result` is `ok` or a
///   ``TrackerFailure/Kind`` (`bad_request`, `forbidden`, `retry_later`,
///   `wrong_shard`).
/// - `privtrak_request_duration_seconds{protocol, request}`: time spent in
///   the tracker (hooks and peer store) per announce or scrape, including any
///   back-pressure wait.
/// - `privtrak_requests_rejected_total{protocol, reason}`: requests refused
///   before they reach the tracker: `not_found` (HTTP path), `malformed`
///   (unreadable field, method, body, URL length: answered with a failure
///   reason), `bad_connection_id` (UDP: a packet whose connection id is
///   neither the connect magic nor valid for the sender's address — forged,
///   stale or junk — dropped without an answer), `overload` (UDP, too many
///   in flight: no answer).
public struct FrontendMetrics: Sendable {
  /// What a client asked for.
  public enum Request: String, Sendable, CaseIterable {
    case announce, scrape, connect
  }

  /// Why a request was refused before reaching the tracker.
  public enum Rejection: String, Sendable, CaseIterable {
    /// HTTP path other than announce/scrape.
    case notFound = "not_found"
    /// UDP packet whose connection id is neither the connect magic nor valid
    /// for the sender: dropped unanswered.
    case badConnectionID = "bad_connection_id"
    /// UDP request dropped because too many were in flight.
    case overload
    /// A request the frontend could not read (method, body, URL length, header).
    case malformed
  }

  /// The counters and timer of one kind of request.
  private struct PerRequest: Sendable {
    let ok: Counter
    let badRequest: Counter
    let forbidden: Counter
    let retryLater: Counter
    let wrongShard: Counter
    let duration: Timer

    init(protocol name: String, request: Request, factory: any MetricsFactory) {
      func counter(_ result: String) -> Counter {
        Counter(
          label: "privtrak_requests_total",
          dimensions: [("protocol", name), ("request", request.rawValue), ("result", result)],
          factory: factory)
      }
      ok = counter("ok")
      badRequest = counter(TrackerFailure.Kind.badRequest.rawValue)
      forbidden = counter(TrackerFailure.Kind.forbidden.rawValue)
      retryLater = counter(TrackerFailure.Kind.retryLater.rawValue)
      wrongShard = counter(TrackerFailure.Kind.wrongShard.rawValue)
      duration = Timer(
        label: "privtrak_request_duration_seconds",
        dimensions: [("protocol", name), ("request", request.rawValue)],
        preferredDisplayUnit: .seconds, factory: factory)
    }

    func failures(_ kind: TrackerFailure.Kind) -> Counter {
      switch kind {
      case .badRequest: badRequest
      case .forbidden: forbidden
      case .retryLater: retryLater
      case .wrongShard: wrongShard
      }
    }
  }

  private let announce: PerRequest
  private let scrape: PerRequest
  /// UDP only: HTTP has no connect step.
  private let connect: PerRequest?
  private let notFound: Counter
  private let badConnectionID: Counter
  private let overload: Counter
  private let malformed: Counter

  /// Creates the metrics of the frontend speaking `protocol` through `factory`.
  public init(protocol name: String, factory: any MetricsFactory = MetricsSystem.factory) {
    announce = PerRequest(protocol: name, request: .announce, factory: factory)
    scrape = PerRequest(protocol: name, request: .scrape, factory: factory)
    connect =
      name == "udp" ? PerRequest(protocol: name, request: .connect, factory: factory) : nil
    func rejected(_ reason: Rejection) -> Counter {
      Counter(
        label: "privtrak_requests_rejected_total",
        dimensions: [("protocol", name), ("reason", reason.rawValue)], factory: factory)
    }
    notFound = rejected(.notFound)
    badConnectionID = rejected(.badConnectionID)
    overload = rejected(.overload)
    malformed = rejected(.malformed)
  }

  private func metrics(_ request: Request) -> PerRequest? {
    switch request {
    case .announce: announce
    case .scrape: scrape
    case .connect: connect
    }
  }

  /// Counts a request answered successfully, and its time in the tracker.
  func succeeded(_ request: Request, since start: ContinuousClock.Instant? = nil) {
    guard let metrics = metrics(request) else { return }
    metrics.ok.increment()
    if let start { metrics.duration.recordInterval(since: start) }
  }

  /// Counts a request answered with a failure of `kind`, and its time in the tracker.
  func failed(
    _ request: Request, _ kind: TrackerFailure.Kind, since start: ContinuousClock.Instant? = nil
  ) {
    guard let metrics = metrics(request) else { return }
    metrics.failures(kind).increment()
    if let start { metrics.duration.recordInterval(since: start) }
  }

  /// Counts a request refused before reaching the tracker.
  func rejected(_ reason: Rejection) {
    switch reason {
    case .notFound: notFound.increment()
    case .badConnectionID: badConnectionID.increment()
    case .overload: overload.increment()
    case .malformed: malformed.increment()
    }
  }
}

extension Timer {
  fileprivate func recordInterval(since start: ContinuousClock.Instant) {
    let elapsed = start.duration(to: .now)
    let (seconds, attoseconds) = elapsed.components
    recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
  }
}
