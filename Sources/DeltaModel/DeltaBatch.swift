/// A sealed, ordered group of deltas published atomically.
public struct DeltaBatch: Sendable, Hashable {
  /// The deltas, in the order they were produced.
  public var deltas: [Delta]

  /// Creates a batch.
  public init(deltas: [Delta]) {
    self.deltas = deltas
  }

  /// Sum of the deltas' estimated sizes.
  public var estimatedSize: Int { deltas.reduce(0) { $0 + $1.estimatedSize } }
}
