import BitTorrent
import Tracker

/// Derives the user of a request. Anything unique that fits 16 bytes works;
/// an implementation must decide from the request alone (no database, no
/// network: it runs on every announce).
public protocol UserIdentifier: Sendable {
  /// The user of an announce; throws a `.forbidden` ``TrackerFailure`` when
  /// the request does not identify one.
  func identify(_ request: AnnounceRequest) throws(TrackerFailure) -> UserID
  /// The user of a scrape; throws a `.forbidden` ``TrackerFailure`` when
  /// the request does not identify one.
  func identify(_ request: ScrapeRequest) throws(TrackerFailure) -> UserID
}

/// The default identifier: the passkey the frontends extracted from the URL
/// (`/<passkey>/announce`, `/announce/<passkey>`, BEP 41 URL data over UDP),
/// 32 hexadecimal characters read as the 16-byte user id.
public struct PasskeyUserIdentifier: UserIdentifier {
  /// Creates the identifier.
  public init() {}

  public func identify(_ request: AnnounceRequest) throws(TrackerFailure) -> UserID {
    try Self.userID(passkey: request.passkey)
  }

  public func identify(_ request: ScrapeRequest) throws(TrackerFailure) -> UserID {
    try Self.userID(passkey: request.passkey)
  }

  /// The user id of a passkey, or a `.forbidden` failure whose reason says
  /// what is wrong (never echoing the passkey).
  public static func userID(passkey: Substring?) throws(TrackerFailure) -> UserID {
    guard let passkey, !passkey.isEmpty else {
      throw TrackerFailure(
        "missing passkey: use the personal announce URL from your account", kind: .forbidden)
    }
    guard let userID = parse(passkey) else {
      throw TrackerFailure(
        "malformed passkey: expected 32 hexadecimal characters", kind: .forbidden)
    }
    return userID
  }

  /// Reads exactly 32 hex digits (either case) without allocating; nil otherwise.
  public static func parse(_ passkey: Substring) -> UserID? {
    Passkey(hex: passkey)?.asUserID
  }
}
