/// A bounded wait ran out: the condition the test waited for never held.
public struct WaitTimedOut: Error, CustomStringConvertible {
  /// What the test waited for, and where.
  public var description: String
}

/// Polls a real condition until it holds, throwing ``WaitTimedOut`` after
/// `timeout`. Only to synchronise with other tasks, threads or processes: a
/// passing run never depends on the timeout, which is generous so that a
/// loaded machine does not fail a correct test.
public func waitUntil(
  _ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(2),
  fileID: String = #fileID, line: Int = #line,
  _ condition: () async throws -> Bool
) async throws {
  _ = try await poll(what, timeout: timeout, every: interval, fileID: fileID, line: line) {
    try await condition() ? () : nil
  }
}

/// Polls `value` until it returns something, throwing ``WaitTimedOut``
/// after `timeout`; the bounded form of "wait for the server to say X".
public func poll<T>(
  _ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(2),
  fileID: String = #fileID, line: Int = #line,
  _ value: () async throws -> T?
) async throws -> T {
  let deadline = ContinuousClock.now + timeout
  while true {
    if let result = try await value() { return result }
    if ContinuousClock.now >= deadline {
      throw WaitTimedOut(
        description: "\(fileID):\(line): timed out after \(timeout) waiting until \(what)")
    }
    try await Task.sleep(for: interval)  // polling a real condition, bounded above
  }
}
