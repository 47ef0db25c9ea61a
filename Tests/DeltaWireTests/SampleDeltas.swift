import BitTorrent
import DeltaModel

/// Deltas shaped like the accounting produces them.
enum SampleDeltas {
  static let user = UserID(hex: "5f4dcc3b5aa765d61d8327deb882cf99")!
  static let otherUser = UserID(hex: "a3f1c2d4e5b60718293a4b5c6d7e8f90")!
  static let torrent = InfoHash(hex: "c12fe1c06bba254a9dc9f519b335aa7c1367a88a")!
  static let instance: UInt64 = 0x8f3a_2c1d_5e6b_7a90

  /// A seeder's regular announce: 50 MiB up, nothing down, half an hour after the previous one.
  static func typical(sequence: UInt64 = 1_234_567, user: UserID = user) -> Delta {
    Delta(
      userID: user, infoHash: torrent, uploaded: 50 << 20, downloaded: 0, event: .none,
      reportedAtMilliseconds: 1_764_061_200_123, seeding: true, intervalSeconds: 1800, reset: false,
      origin: DeltaOrigin(instance: instance, sequence: sequence))
  }

  static let peerID = PeerID(Array("-TR4060-k8hj0wgej6ch".utf8))!
}
