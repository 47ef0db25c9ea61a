import Metrics
import NIOCore
import Synchronization

/// Counts and remembers open connections so the frontend can refuse those
/// past its limit and quiesce the rest on shutdown.
final class ConnectionRegistry: Sendable {
  /// Thrown from the child initializer so NIO closes a refused connection at once.
  struct LimitReached: Error {}

  let limit: Int
  private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
  /// `privtrak_http_connections`: open connections, set on every change.
  private let openConnections: Gauge?

  init(limit: Int, openConnections: Gauge? = nil) {
    self.limit = limit
    self.openConnections = openConnections
  }

  /// Registers `channel` unless the limit is reached; registered channels
  /// leave the registry when they close.
  func admit(_ channel: any Channel) -> Bool {
    let id = ObjectIdentifier(channel)
    let admitted: Int? = channels.withLock { channels in
      guard channels.count < limit else { return nil }
      channels[id] = channel
      return channels.count
    }
    guard let admitted else { return false }
    openConnections?.record(admitted)
    channel.closeFuture.whenComplete { [self] _ in
      let remaining = channels.withLock { channels in
        channels.removeValue(forKey: id)
        return channels.count
      }
      openConnections?.record(remaining)
    }
    return true
  }

  /// Open connections now.
  var count: Int { channels.withLock { $0.count } }

  /// The open connections now.
  func snapshot() -> [any Channel] { channels.withLock { Array($0.values) } }
}
