import BitTorrent
import DeltaModel
import Foundation

/// The golden vectors of `schemas/testdata/`: each binary file with the model
/// its readable `.json` description names.
enum GoldenVectors {
  static let directory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // DeltaWireTests
    .deletingLastPathComponent()  // Tests
    .deletingLastPathComponent()  // repository root
    .appendingPathComponent("schemas/testdata")

  /// One delta as a description lists it (the `privtrak tail --json` shape).
  struct DeltaDescription: Decodable, Equatable {
    var user_id: String
    var info_hash: String
    var uploaded: Int64
    var downloaded: Int64
    var event: String
    var reported_at_ms: Int64
    var seeding: Bool
    var interval_s: UInt32
    var reset: Bool
    var instance: String
    var sequence: UInt64
    var client_ip: String?
    var peer_id: String?
    var upload_factor_percent: UInt32?
    var download_factor_percent: UInt32?

    /// The model this description denotes; fails the test run loudly if the description is malformed.
    var model: Delta {
      get throws {
        guard let userID = UserID(hex: user_id), let infoHash = InfoHash(hex: info_hash),
          let event = DeltaEvent.allCases.first(where: { $0.description == event }),
          instance.utf8.count == 16, let instance = UInt64(instance, radix: 16)
        else { throw DescriptionError(text: "bad ids or event in \(user_id)") }
        var clientIP: IPAddress?
        if let client_ip {
          guard let address = IPAddress(client_ip) else { throw DescriptionError(text: client_ip) }
          clientIP = address
        }
        var peerID: PeerID?
        if let peer_id {
          guard let bytes = Hex.decode(peer_id), let id = PeerID(bytes) else {
            throw DescriptionError(text: peer_id)
          }
          peerID = id
        }
        return Delta(
          userID: userID, infoHash: infoHash, uploaded: uploaded, downloaded: downloaded,
          event: event,
          reportedAtMilliseconds: reported_at_ms, seeding: seeding, intervalSeconds: interval_s,
          reset: reset,
          origin: DeltaOrigin(instance: instance, sequence: sequence), clientIP: clientIP,
          peerID: peerID,
          factors: CreditFactors(
            uploadPercent: upload_factor_percent ?? 100,
            downloadPercent: download_factor_percent ?? 100))
      }
    }
  }

  /// A vector's description file.
  struct Description: Decodable {
    var file: String
    var type: String
    var description: String
    var delta: DeltaDescription?
    var producer_instance: String?
    var sealed_at_ms: Int64?
    var deltas: [DeltaDescription]?
  }

  struct DescriptionError: Error { var text: String }

  static func description(_ name: String) throws -> Description {
    let data = try Data(contentsOf: directory.appendingPathComponent(name + ".json"))
    return try JSONDecoder().decode(Description.self, from: data)
  }

  static func bytes(of description: Description) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: directory.appendingPathComponent(description.file)))
  }

  /// Every vector description in the folder, by name without extension.
  static func names(ofType type: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path)
      .filter { $0.hasSuffix(".json") }
      .map { String($0.dropLast(5)) }
      .filter { try description($0).type == type }
      .sorted()
  }

  /// The JSON object of one delta inside a description file, for comparing
  /// `DeltaJSON` output (parsed) with it.
  static func rawDeltaObjects(_ name: String) throws -> [[String: Any]] {
    let data = try Data(contentsOf: directory.appendingPathComponent(name + ".json"))
    let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    if let delta = object["delta"] as? [String: Any] { return [delta] }
    return object["deltas"] as? [[String: Any]] ?? []
  }
}
