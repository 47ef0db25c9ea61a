import CRdKafka

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Runs a closure on its own OS thread, for librdkafka's blocking calls:
/// they must never occupy Swift's cooperative pool (two threads on a
/// two-core machine).
enum DedicatedThread {
  private final class Entry {
    let name: String
    let body: @Sendable () -> Void
    init(_ name: String, _ body: @escaping @Sendable () -> Void) {
      self.name = name
      self.body = body
    }
  }

  /// Starts `body` on a new detached thread named `name` (15 bytes kept).
  /// Returns false when the thread could not be created.
  static func start(name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
    let context = Unmanaged.passRetained(Entry(name, body)).toOpaque()
    #if canImport(Darwin)
      var thread: pthread_t?
    #else
      var thread = pthread_t()
    #endif
    let result = pthread_create(
      &thread, nil,
      { raw in
        #if canImport(Darwin)
          let entry = Unmanaged<Entry>.fromOpaque(raw).takeRetainedValue()
        #else
          let entry = Unmanaged<Entry>.fromOpaque(raw!).takeRetainedValue()
        #endif
        #if canImport(Darwin)
          _ = pthread_setname_np(entry.name)
        #else
          _ = privtrak_name_current_thread(entry.name)
        #endif
        entry.body()
        return nil
      }, context)
    guard result == 0 else {
      Unmanaged<Entry>.fromOpaque(context).release()
      return false
    }
    #if !canImport(Darwin)
      pthread_detach(thread)
    #else
      if let thread { pthread_detach(thread) }
    #endif
    return true
  }
}
