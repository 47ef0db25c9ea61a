import NIOCore
import Synchronization

/// Counts and remembers open connections so the frontend can refuse those
/// past its limit and quiesce the rest on shutdown.
final class ConnectionRegistry: Sendable {
  /// Thrown from the child initializer so NIO closes a refused connection at once.
  struct LimitReached: Error {}

  let limit: Int
  private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

  init(limit: Int) {
    self.limit = limit
  }

  /// Registers `channel` unless the limit is reached; registered channels
  /// leave the registry when they close.
  func admit(_ channel: any Channel) -> Bool {
    let id = ObjectIdentifier(channel)
    let admitted = channels.withLock { channels in
      guard channels.count < limit else { return false }
      channels[id] = channel
      return true
    }
    if admitted {
      channel.closeFuture.whenComplete { [self] _ in
        _ = channels.withLock { $0.removeValue(forKey: id) }
      }
    }
    return admitted
  }

  /// Open connections now.
  var count: Int { channels.withLock { $0.count } }

  /// The open connections now.
  func snapshot() -> [any Channel] { channels.withLock { Array($0.values) } }
}
