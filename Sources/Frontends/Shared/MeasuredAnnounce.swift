import BitTorrent
import Tracker

/// An announce taken through the tracker as far as it goes without
/// suspending, with its request metrics (result and time in the tracker)
/// recorded once it has an outcome. Both frontends answer from this, so
/// they only turn the outcome into their own bytes.
enum MeasuredAnnounce: Sendable {
  /// The tracker answered (or refused) on the caller's thread.
  case finished(Result<AnnounceResponse, TrackerFailure>)
  /// A hook must wait: call this off the event loop for the outcome.
  case pending(@Sendable () async -> Result<AnnounceResponse, TrackerFailure>)
}

extension FrontendMetrics {
  /// Runs `request` through `tracker` without suspending where it can.
  func announce(_ request: AnnounceRequest, through tracker: Tracker) -> MeasuredAnnounce {
    let start = ContinuousClock.now
    let outcome: AnnounceOutcome
    do throws(TrackerFailure) {
      outcome = try tracker.announceWithoutSuspending(request)
    } catch {
      return .finished(recorded(.failure(error), since: start))
    }
    switch outcome {
    case .answered(let response):
      return .finished(recorded(.success(response), since: start))
    case .pending(let pending):
      return .pending {
        do throws(TrackerFailure) {
          return recorded(.success(try await pending.response()), since: start)
        } catch {
          return recorded(.failure(error), since: start)
        }
      }
    }
  }

  private func recorded(
    _ result: Result<AnnounceResponse, TrackerFailure>, since start: ContinuousClock.Instant
  ) -> Result<AnnounceResponse, TrackerFailure> {
    switch result {
    case .success: succeeded(.announce, since: start)
    case .failure(let error): failed(.announce, error.kind, since: start)
    }
    return result
  }
}
