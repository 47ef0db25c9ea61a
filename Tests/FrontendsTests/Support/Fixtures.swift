import BitTorrent
import Frontends
import Logging
import PrivtrakTestSupport
import Synchronization
import Tracker

/// A logger that stays quiet unless a test needs to look at output.
let testLogger: Logger = {
  var logger = Logger(label: "privtrak.frontends.tests")
  logger.logLevel = .critical
  return logger
}()

/// An info hash whose 20 bytes are `seed, seed+1, …` — includes bytes that
/// must be percent-encoded (0x00, 0x25 '%', 0xff, …).
func makeInfoHash(_ seed: UInt8) -> InfoHash {
  InfoHash((0..<20).map { seed &+ UInt8($0) &* 13 })!
}

/// A peer id with a client prefix and a distinguishing tail.
func makePeerID(_ number: Int) -> PeerID {
  let prefix = Array("-TS0001-".utf8)
  var tail = Array(String(number).utf8)
  while tail.count < 12 { tail.insert(UInt8(ascii: "0"), at: 0) }
  return PeerID(prefix + tail.suffix(12))!
}

/// Percent-encodes every byte outside the URL-unreserved set.
func percentEncode(_ bytes: some Sequence<UInt8>) -> String {
  let hex = Array("0123456789ABCDEF".utf8)
  var out = [UInt8]()
  for byte in bytes {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
      UInt8(ascii: "_"),
      UInt8(ascii: "~"):
      out.append(byte)
    default:
      out.append(UInt8(ascii: "%"))
      out.append(hex[Int(byte >> 4)])
      out.append(hex[Int(byte & 0x0f)])
    }
  }
  return String(decoding: out, as: UTF8.self)
}

/// The query of a well-formed announce; `overrides` replace or (with nil) remove parameters.
func announceQuery(
  infoHash: InfoHash, peerID: PeerID, port: UInt16, left: UInt64, event: String? = nil,
  extra: [(String, String?)] = []
) -> String {
  var parameters: [(String, String?)] = [
    ("info_hash", percentEncode(infoHash.bytes)), ("peer_id", percentEncode(peerID.bytes)),
    ("port", String(port)), ("uploaded", "0"), ("downloaded", "0"), ("left", String(left)),
    ("event", event), ("compact", "1"),
  ]
  for (name, value) in extra {
    if let index = parameters.firstIndex(where: { $0.0 == name }) {
      parameters[index].1 = value
    } else {
      parameters.append((name, value))
    }
  }
  return parameters.compactMap { name, value in value.map { "\(name)=\($0)" } }.joined(
    separator: "&")
}

/// A pre-hook that remembers what reached the hook chain.
final class RecordingPreHook: PreHook {
  struct Seen: Sendable {
    var passkey: String?
    var endpoint: PeerEndpoint?
    var transport: TransportProtocol
    var isScrape: Bool
  }

  private let seen = Mutex<[Seen]>([])

  var all: [Seen] { seen.withLock { $0 } }

  func beforeAnnounce(_ request: inout AnnounceRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    let entry = Seen(
      passkey: request.passkey.map(String.init), endpoint: request.endpoint,
      transport: request.transport,
      isScrape: false)
    seen.withLock { $0.append(entry) }
  }

  func beforeScrape(_ request: inout ScrapeRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    let entry = Seen(
      passkey: request.passkey.map(String.init), endpoint: nil, transport: request.transport,
      isScrape: true)
    seen.withLock { $0.append(entry) }
  }
}

/// A pre-hook that refuses announces for one torrent with a retry hint, the
/// way the accounting hook refuses when its sink is saturated.
struct RefusingPreHook: PreHook {
  var refused: InfoHash

  func beforeAnnounce(_ request: inout AnnounceRequest, context: inout HookContext)
    async throws(TrackerFailure)
  {
    if request.infoHash == refused {
      throw TrackerFailure("tracker busy, retry later", kind: .retryLater, retryInMinutes: 5)
    }
  }
}
