/// The multipliers a private tracker applies to a user's bytes on a torrent,
/// in percent: 100 credits bytes as they are, 0 not at all (freeleech
/// download), 200 twice (double upload). Resolved once per announce (by the
/// registry's approval hook) and carried in every delta, so consumers never
/// apply today's freeleech to yesterday's bytes.
public struct CreditFactors: Sendable, Hashable, CustomStringConvertible {
  /// Upload factor, percent.
  public var uploadPercent: UInt32
  /// Download factor, percent.
  public var downloadPercent: UInt32

  /// Creates factors.
  public init(uploadPercent: UInt32 = 100, downloadPercent: UInt32 = 100) {
    self.uploadPercent = uploadPercent
    self.downloadPercent = downloadPercent
  }

  /// 100 % both ways: bytes count as they are.
  public static let unit = CreditFactors()

  /// True for ``unit``.
  public var isUnit: Bool { uploadPercent == 100 && downloadPercent == 100 }

  public var description: String { "up \(uploadPercent)% down \(downloadPercent)%" }
}
