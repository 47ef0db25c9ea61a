import Synchronization

extension Task {
  /// The task's value, waiting at most `timeout` for it to end; throws
  /// ``WaitTimedOut`` naming `what` otherwise.
  ///
  /// `await task.value` hangs the whole test run when the code under test
  /// never ends a task (a loop that ignores cancellation, a lost wake-up);
  /// this fails the one test instead. The outcome is handed over by a
  /// watcher task and read with a bounded ``poll(_:timeout:every:fileID:line:_:)``.
  public func value(
    within timeout: Duration = .seconds(60), _ what: String, fileID: String = #fileID,
    line: Int = #line
  ) async throws -> Success {
    let outcome = Mutex<Result<Success, Failure>?>(nil)
    let watcher = Task<Void, Never> {
      let result = await self.result
      outcome.withLock { $0 = result }
    }
    do {
      let result = try await poll(what, timeout: timeout, fileID: fileID, line: line) {
        outcome.withLock { $0 }
      }
      return try result.get()
    } catch let timedOut as WaitTimedOut {
      watcher.cancel()
      throw timedOut
    }
  }
}
