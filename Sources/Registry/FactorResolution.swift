import BitTorrent

/// How the factors that apply to one announce combine (UNIT3D-Announce's
/// rule): the upload factor is the largest any applicable record sets
/// (global event, user, torrent, token), the download factor the smallest;
/// a factor no record sets is 100. So a freeleech token (download 0) wins
/// over a user's 100, and a double-upload torrent (200) over a donor's 150.
public enum FactorResolution {
  /// The factors in force given every applicable record's overrides
  /// (``FactorOverrides/none`` for a record that does not exist).
  public static func resolve(
    global: FactorOverrides, user: FactorOverrides, torrent: FactorOverrides,
    token: FactorOverrides
  ) -> CreditFactors {
    // Four fixed arguments rather than an array: this runs on every announce.
    var resolution = Accumulator()
    resolution.add(global)
    resolution.add(user)
    resolution.add(torrent)
    resolution.add(token)
    return CreditFactors(
      uploadPercent: resolution.upload ?? 100, downloadPercent: resolution.download ?? 100)
  }

  private struct Accumulator {
    var upload: UInt32?
    var download: UInt32?

    mutating func add(_ override: FactorOverrides) {
      if let value = override.uploadPercent { upload = max(upload ?? value, value) }
      if let value = override.downloadPercent { download = min(download ?? value, value) }
    }
  }
}
