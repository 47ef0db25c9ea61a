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
            throw TrackerFailure("missing passkey: use the personal announce URL from your account", kind: .forbidden)
        }
        guard let userID = parse(passkey) else {
            throw TrackerFailure("malformed passkey: expected 32 hexadecimal characters", kind: .forbidden)
        }
        return userID
    }

    /// Reads exactly 32 hex digits (either case) without allocating; nil otherwise.
    public static func parse(_ passkey: Substring) -> UserID? {
        let utf8 = passkey.utf8
        guard utf8.count == 32 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var position = 0
        for character in utf8 {
            guard let nibble = Hex.nibble(character) else { return nil }
            if position < 16 {
                high = high << 4 | UInt64(nibble)
            } else {
                low = low << 4 | UInt64(nibble)
            }
            position += 1
        }
        return UserID(high: high, low: low)
    }
}
