/// Routes a tracker URL path to its action and the credential it carries.
///
/// Accepted forms: `/announce`, `/<passkey>/announce`, `/announce/<passkey>`
/// and the same three for `scrape`. Used by the HTTP frontend and for BEP 41
/// URL data over UDP, so both frontends agree on what a path means.
public enum TrackerPath {
  /// What a path asks for.
  public enum Action: Sendable, Equatable {
    /// An announce.
    case announce
    /// A scrape.
    case scrape
  }

  /// A routed path: the action and the passkey segment, if the path had one.
  public struct Route: Sendable, Equatable {
    /// What the path asks for.
    public var action: Action
    /// The credential segment, not validated beyond its shape.
    public var passkey: Substring?

    /// Creates a route.
    public init(action: Action, passkey: Substring?) {
      self.action = action
      self.passkey = passkey
    }
  }

  /// Longest passkey segment accepted; anything longer is an absurd path.
  public static let maxPasskeyLength = 128

  /// Routes `path` (without query). Returns nil for unknown paths and for
  /// absurd credentials (empty, too long, or with characters outside the
  /// URL-unreserved set), which keeps junk away from the hooks and the logs.
  public static func route(_ path: Substring) -> Route? {
    let utf8 = path.utf8
    guard utf8.first == UInt8(ascii: "/") else { return nil }
    let afterSlash = utf8.index(after: utf8.startIndex)
    guard let secondSlash = utf8[afterSlash...].firstIndex(of: UInt8(ascii: "/")) else {
      // One segment: `/announce` or `/scrape`.
      guard let action = action(path[afterSlash...]) else { return nil }
      return Route(action: action, passkey: nil)
    }
    let first = path[afterSlash..<secondSlash]
    let second = path[utf8.index(after: secondSlash)...]
    guard !second.utf8.contains(UInt8(ascii: "/")) else { return nil }
    if let action = action(second) {
      // `/<passkey>/announce` takes precedence over `/announce/<passkey>`.
      guard isPlausiblePasskey(first) else { return nil }
      return Route(action: action, passkey: first)
    }
    if let action = action(first) {
      // A trailing slash (`/announce/`) is the same as no passkey.
      if second.isEmpty { return Route(action: action, passkey: nil) }
      guard isPlausiblePasskey(second) else { return nil }
      return Route(action: action, passkey: second)
    }
    return nil
  }

  /// Compares bytes: `Substring ==` compares Unicode-canonically, which
  /// costs far more and means nothing for ASCII path segments.
  private static func action(_ segment: Substring) -> Action? {
    if segment.utf8.elementsEqual("announce".utf8) { return .announce }
    if segment.utf8.elementsEqual("scrape".utf8) { return .scrape }
    return nil
  }

  /// 1…128 characters from `A-Z a-z 0-9 - . _ ~`.
  static func isPlausiblePasskey(_ segment: Substring) -> Bool {
    let utf8 = segment.utf8
    guard !utf8.isEmpty, utf8.count <= maxPasskeyLength else { return false }
    for byte in utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "_"),
        UInt8(ascii: "~"):
        continue
      default:
        return false
      }
    }
    return true
  }
}
