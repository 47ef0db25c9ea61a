import DeltaModel

/// What a `DeltaBatch` message carries besides its deltas. Both values are
/// informational; on the wire an absent value is 0.
public struct DeltaBatchMetadata: Sendable, Hashable {
  /// The tracker process that sealed the batch.
  public var producerInstance: UInt64?
  /// When the batch was sealed, ms since the Unix epoch.
  public var sealedAtMilliseconds: Int64?

  /// Creates metadata.
  public init(producerInstance: UInt64? = nil, sealedAtMilliseconds: Int64? = nil) {
    self.producerInstance = producerInstance
    self.sealedAtMilliseconds = sealedAtMilliseconds
  }

  /// Metadata for `batch`: the producer is the deltas' common instance (nil
  /// when the batch is empty or mixes instances).
  public init(deriving batch: DeltaBatch, sealedAtMilliseconds: Int64? = nil) {
    let instance = batch.deltas.first?.origin.instance
    let uniform = batch.deltas.allSatisfy { $0.origin.instance == instance }
    self.init(
      producerInstance: uniform ? instance : nil, sealedAtMilliseconds: sealedAtMilliseconds)
  }

  /// Reads the metadata of a wire batch (0 becomes nil).
  public init(wire message: Privtrak_V1_DeltaBatch) {
    self.init(
      producerInstance: message.producerInstance == 0 ? nil : message.producerInstance,
      sealedAtMilliseconds: message.sealedAtMs == 0 ? nil : message.sealedAtMs
    )
  }
}
