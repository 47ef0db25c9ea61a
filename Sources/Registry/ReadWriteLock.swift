#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A value behind a reader-writer lock: every event loop's announces read
/// the registry at the same time (a `Mutex` would serialise them on one
/// lock), while writes (a source applying records) are rare and exclusive.
final class ReadWriteLocked<Value>: @unchecked Sendable {
  // @unchecked: `value` is only touched between pthread_rwlock_* calls on
  // `lock` (shared for reads, exclusive for writes); Synchronization has no
  // reader-writer lock.
  private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
  private var value: Value

  init(_ value: Value) {
    self.value = value
    pthread_rwlock_init(lock, nil)
  }

  deinit {
    pthread_rwlock_destroy(lock)
    lock.deallocate()
  }

  /// Runs `body` with shared access; other readers run alongside.
  func read<Result>(_ body: (borrowing Value) throws -> Result) rethrows -> Result {
    pthread_rwlock_rdlock(lock)
    defer { pthread_rwlock_unlock(lock) }
    return try body(value)
  }

  /// Runs `body` with exclusive access.
  func write<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
    pthread_rwlock_wrlock(lock)
    defer { pthread_rwlock_unlock(lock) }
    return try body(&value)
  }
}
