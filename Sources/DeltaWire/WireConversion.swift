import BitTorrent
import DeltaModel
import SwiftProtobuf

#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

extension Privtrak_V1_Delta {
  /// The wire message for an accounting delta. Optional fields are set only
  /// when the delta carries them.
  public init(_ delta: Delta) {
    self.init()
    userID = Data(delta.userID.bytes)
    infoHash = Data(delta.infoHash.bytes)
    uploaded = delta.uploaded
    downloaded = delta.downloaded
    event = Event(delta.event)
    reportedAtMs = delta.reportedAtMilliseconds
    seeding = delta.seeding
    intervalS = delta.intervalSeconds
    reset = delta.reset
    instance = delta.origin.instance
    sequence = delta.origin.sequence
    if let clientIP = delta.clientIP { clientIp = Data(clientIP.bytes) }
    if let peerID = delta.peerID { self.peerID = Data(peerID.bytes) }
    // Absent means 100: unit factors cost no bytes.
    if delta.factors.uploadPercent != 100 { uploadFactorPercent = delta.factors.uploadPercent }
    if delta.factors.downloadPercent != 100 {
      downloadFactorPercent = delta.factors.downloadPercent
    }
  }
}

extension Privtrak_V1_Delta.Event {
  /// The wire value of an accounting event (same numbers as `DeltaEvent`).
  public init(_ event: DeltaEvent) {
    switch event {
    case .none: self = .none
    case .started: self = .started
    case .completed: self = .completed
    case .stopped: self = .stopped
    case .expired: self = .expired
    }
  }
}

extension DeltaEvent {
  /// The accounting event of a wire value.
  /// - Throws: `DeltaWireError.unknownEvent` for a value added by a newer schema.
  public init(wire event: Privtrak_V1_Delta.Event) throws(DeltaWireError) {
    switch event {
    case .none: self = .none
    case .started: self = .started
    case .completed: self = .completed
    case .stopped: self = .stopped
    case .expired: self = .expired
    case .UNRECOGNIZED(let rawValue): throw .unknownEvent(rawValue: rawValue)
    }
  }
}

extension Delta {
  /// The accounting delta a wire message describes. Unknown fields (added by
  /// newer schemas) are ignored.
  /// - Throws: `DeltaWireError.invalidLength` when an id or address has the
  ///   wrong size (a missing `user_id` or `info_hash` has size 0),
  ///   `DeltaWireError.unknownEvent` for an event this decoder does not know.
  public init(wire message: Privtrak_V1_Delta) throws(DeltaWireError) {
    guard let userID = UserID(message.userID) else {
      throw .invalidLength(field: "user_id", expected: "16", actual: message.userID.count)
    }
    guard let infoHash = InfoHash(message.infoHash) else {
      throw .invalidLength(field: "info_hash", expected: "20", actual: message.infoHash.count)
    }
    var clientIP: IPAddress?
    if message.hasClientIp {
      guard let address = IPAddress(bytes: message.clientIp) else {
        throw .invalidLength(
          field: "client_ip", expected: "4 or 16", actual: message.clientIp.count)
      }
      clientIP = address
    }
    var peerID: PeerID?
    if message.hasPeerID {
      guard let id = PeerID(message.peerID) else {
        throw .invalidLength(field: "peer_id", expected: "20", actual: message.peerID.count)
      }
      peerID = id
    }
    self.init(
      userID: userID,
      infoHash: infoHash,
      uploaded: message.uploaded,
      downloaded: message.downloaded,
      event: try DeltaEvent(wire: message.event),
      reportedAtMilliseconds: message.reportedAtMs,
      seeding: message.seeding,
      intervalSeconds: message.intervalS,
      reset: message.reset,
      origin: DeltaOrigin(instance: message.instance, sequence: message.sequence),
      clientIP: clientIP,
      peerID: peerID,
      factors: CreditFactors(
        uploadPercent: message.hasUploadFactorPercent ? message.uploadFactorPercent : 100,
        downloadPercent: message.hasDownloadFactorPercent ? message.downloadFactorPercent : 100)
    )
  }
}

extension Privtrak_V1_DeltaBatch {
  /// The wire message for a batch, with its metadata.
  public init(_ batch: DeltaBatch, metadata: DeltaBatchMetadata) {
    self.init()
    deltas = batch.deltas.map(Privtrak_V1_Delta.init)
    producerInstance = metadata.producerInstance ?? 0
    sealedAtMs = metadata.sealedAtMilliseconds ?? 0
  }
}

extension DeltaBatch {
  /// The accounting batch a wire message describes.
  /// - Throws: `DeltaWireError.invalidDeltaInBatch` naming the first invalid delta.
  public init(wire message: Privtrak_V1_DeltaBatch) throws(DeltaWireError) {
    var deltas: [Delta] = []
    deltas.reserveCapacity(message.deltas.count)
    for (index, wireDelta) in message.deltas.enumerated() {
      do {
        deltas.append(try Delta(wire: wireDelta))
      } catch {
        throw .invalidDeltaInBatch(index: index, error: error)
      }
    }
    self.init(deltas: deltas)
  }
}
