/// The ordering id of a delta: unique across every tracker process, so any
/// consumer can deduplicate on it.
public struct DeltaOrigin: Sendable, Hashable, Comparable {
  /// Identifies one tracker process (random per start, unless configured).
  public var instance: UInt64
  /// Increases by one per delta within an instance, starting at 1.
  public var sequence: UInt64

  /// Creates an ordering id.
  public init(instance: UInt64, sequence: UInt64) {
    self.instance = instance
    self.sequence = sequence
  }

  public static func < (lhs: DeltaOrigin, rhs: DeltaOrigin) -> Bool {
    (lhs.instance, lhs.sequence) < (rhs.instance, rhs.sequence)
  }
}
