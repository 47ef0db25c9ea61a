import CRdKafka

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// One dedicated OS thread for librdkafka's blocking calls (init, commit,
/// abort, flush, metadata, destroy), so they never occupy Swift's cooperative
/// pool. Runs jobs one at a time in submission order; while idle it runs the
/// idle job every `idleIntervalMilliseconds` (to serve `rd_kafka_poll`).
///
/// The thread owns a `Context` (the producer engine): created on the thread
/// by `start`, handed to each job as its argument and dropped when the
/// thread exits. The context need not be `Sendable`: it never leaves the
/// thread, since nothing but the thread's own loop holds it.
final class ProducerThread<Context>: @unchecked Sendable {
  // @unchecked: every mutable field below is guarded by `mutex`, which
  // `pthread_cond_timedwait` needs as a pthread mutex (no Synchronization.Mutex).
  typealias Job = @Sendable (Context) -> Void

  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  private var jobs: [Job] = []
  private var head = 0
  private var accepting = true
  private var exitJob: Job?
  private var idleJob: Job?
  private let idleIntervalNanoseconds: Int64
  private let name: String

  /// Prepares the thread; `start` launches it. Jobs submitted before wait for it.
  /// - Parameter name: the OS thread name (at most 15 bytes are kept).
  init(name: String, idleIntervalMilliseconds: Int) {
    self.name = name
    self.idleIntervalNanoseconds = Int64(max(1, idleIntervalMilliseconds)) * 1_000_000
    pthread_mutex_init(mutex, nil)
    var attributes = pthread_condattr_t()
    pthread_condattr_init(&attributes)
    #if !canImport(Darwin)
      // Timed waits must not jump with the wall clock.
      pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
    #endif
    pthread_cond_init(condition, &attributes)
    pthread_condattr_destroy(&attributes)
  }

  /// Launches the thread, which first calls `makeContext` to create the context its jobs get.
  func start(makeContext: @escaping @Sendable () -> Context) throws(KafkaSinkError) {
    let entry = ThreadEntry { self.run(makeContext()) }
    let context = Unmanaged.passRetained(entry).toOpaque()
    #if canImport(Darwin)
      var thread: pthread_t?
    #else
      var thread = pthread_t()
    #endif
    let result = pthread_create(
      &thread, nil,
      { context in
        Unmanaged<ThreadEntry>.fromOpaque(context!).takeRetainedValue().body()
        return nil
      }, context)
    guard result == 0 else {
      Unmanaged<ThreadEntry>.fromOpaque(context).release()
      throw .startupFailed(
        setting: "kafka", detail: "cannot start the producer thread (pthread_create: \(result))")
    }
    #if canImport(Darwin)
      pthread_detach(thread!)
    #else
      pthread_detach(thread)
    #endif
  }

  deinit {
    pthread_cond_destroy(condition)
    pthread_mutex_destroy(mutex)
    condition.deallocate()
    mutex.deallocate()
  }

  /// Sets the job run periodically while no other job is queued.
  func setIdleJob(_ job: Job?) {
    locked { idleJob = job }
  }

  /// Queues `job`; false once `stop` was called.
  @discardableResult
  func submit(_ job: @escaping Job) -> Bool {
    let accepted = locked { () -> Bool in
      guard accepting else { return false }
      jobs.append(job)
      return true
    }
    if accepted { pthread_cond_signal(condition) }
    return accepted
  }

  /// Refuses further jobs, runs the queued ones, then `finally`, then the thread exits.
  func stop(finally: @escaping Job) {
    locked {
      guard accepting else { return }
      accepting = false
      exitJob = finally
    }
    pthread_cond_signal(condition)
  }

  /// The thread's loop. `context` lives here only, so only jobs run by this loop see it.
  private func run(_ context: Context) {
    name.withCString { _ = setCurrentThreadName($0) }
    var lastIdle = monotonicNanoseconds()
    pthread_mutex_lock(mutex)
    while true {
      if head < jobs.count {
        let job = jobs[head]
        head += 1
        if head == jobs.count {
          jobs.removeAll(keepingCapacity: true)
          head = 0
        }
        pthread_mutex_unlock(mutex)
        job(context)
        pthread_mutex_lock(mutex)
        continue
      }
      if !accepting {
        let finalJob = exitJob
        exitJob = nil
        pthread_mutex_unlock(mutex)
        finalJob?(context)
        return
      }
      let now = monotonicNanoseconds()
      if now - lastIdle >= idleIntervalNanoseconds, let idle = idleJob {
        lastIdle = now
        pthread_mutex_unlock(mutex)
        idle(context)
        pthread_mutex_lock(mutex)
        continue
      }
      let wakeAt = lastIdle + idleIntervalNanoseconds
      #if canImport(Darwin)
        var relative = timespec(tv_sec: 0, tv_nsec: Int(max(0, wakeAt - now)))
        pthread_cond_timedwait_relative_np(condition, mutex, &relative)
      #else
        var deadline = timespec()
        deadline.tv_sec = Int(wakeAt / 1_000_000_000)
        deadline.tv_nsec = Int(wakeAt % 1_000_000_000)
        pthread_cond_timedwait(condition, mutex, &deadline)
      #endif
    }
  }

  private func locked<T>(_ body: () -> T) -> T {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return body()
  }
}

/// What a new thread runs: a C start routine gets one pointer and cannot
/// capture context, let alone generic parameters.
private final class ThreadEntry: Sendable {
  let body: @Sendable () -> Void
  init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Nanoseconds of the monotonic clock (the clock the condition variable waits on).
func monotonicNanoseconds() -> Int64 {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

private func setCurrentThreadName(_ name: UnsafePointer<CChar>) -> Int32 {
  #if canImport(Darwin)
    return pthread_setname_np(name)
  #else
    return privtrak_name_current_thread(name)
  #endif
}
