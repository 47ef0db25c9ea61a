// Memory and approval cost of the site registry. Not a test: it prints figures.
//
//   swift build -c release --product RegistryBench
//   .build/release/RegistryBench [users (default 1000000)] [torrents (default 2000000)]
//
// Builds a registry of `users` users and `torrents` torrents (one in ten
// freeleech, one in a hundred users with a personal factor), reports the
// resident bytes each costs, then times the approval of announces drawn
// from registered passkeys and torrents (the verdict of one announce: parse
// the passkey, one lock acquisition, five hash lookups, the factor rule).

import BitTorrent
import Registry
import Tracker

#if canImport(Glibc)
  import Glibc
#endif

/// Resident set size from /proc/self/statm, in bytes.
func residentBytes() -> Int {
  let descriptor = open("/proc/self/statm", O_RDONLY)
  guard descriptor >= 0 else { return 0 }
  defer { close(descriptor) }
  var buffer = [UInt8](repeating: 0, count: 256)
  let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
  guard count > 0 else { return 0 }
  let fields = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ")
  guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
  return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A deterministic 64-bit mix (splitmix64), so runs are comparable.
func mix(_ value: UInt64) -> UInt64 {
  var z = value &+ 0x9E37_79B9_7F4A_7C15
  z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
  z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
  return z ^ (z >> 31)
}

func passkey(_ index: Int) -> Passkey {
  Passkey(high: mix(UInt64(index) << 1), low: mix(UInt64(index) << 1 | 1))
}

func infoHash(_ index: Int) -> InfoHash {
  var bytes: [UInt8] = []
  for word in 0..<3 {
    let value = mix(UInt64(index) &* 3 &+ UInt64(word) &+ 1_000_000_007)
    bytes += (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
  }
  return InfoHash(bytes.prefix(20))!
}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let userCount = arguments.first ?? 1_000_000
let torrentCount = arguments.dropFirst().first ?? 2_000_000

let registry = Registry()
let empty = residentBytes()
var changes: [RegistryChange] = []
changes.reserveCapacity(10_000)
for index in 0..<userCount {
  let factors = index % 100 == 0 ? FactorOverrides(uploadPercent: 150) : .none
  changes.append(
    .putUser(
      RegisteredUser(
        id: UserID(high: UInt64(index), low: mix(UInt64(index))), passkey: passkey(index),
        factors: factors)))
  if changes.count == 10_000 {
    registry.apply(changes)
    changes.removeAll(keepingCapacity: true)
  }
}
registry.apply(changes)
changes.removeAll(keepingCapacity: true)
let withUsers = residentBytes()
for index in 0..<torrentCount {
  let factors = index % 10 == 0 ? FactorOverrides(downloadPercent: 0) : .none
  changes.append(.putTorrent(RegisteredTorrent(infoHash: infoHash(index), factors: factors)))
  if changes.count == 10_000 {
    registry.apply(changes)
    changes.removeAll(keepingCapacity: true)
  }
}
registry.apply(changes)
let withTorrents = residentBytes()
print("registry: \(userCount) users, \(torrentCount) torrents")
print(
  "memory: \(Double(withUsers - empty) / Double(max(1, userCount))) B/user, "
    + "\(Double(withTorrents - withUsers) / Double(max(1, torrentCount))) B/torrent "
    + "(resident set growth; includes the passkey index and the dictionaries' spare capacity)")

// Announces over registered users and torrents, prepared up front.
let approval = RegistryApproval(
  registry: registry, modes: RegistryModes(users: .registered, torrents: .registered),
  announceInterval: 1800)
let passkeyTexts = (0..<4096).map { index -> String in
  passkey(Int(mix(UInt64(index)) % UInt64(userCount))).hex
}
let requests = (0..<4096).map { index in
  AnnounceRequest(
    infoHash: infoHash(Int(mix(UInt64(index) &+ 77) % UInt64(torrentCount))),
    peerID: PeerID(Array("-TR3000-abcdefghijkl".utf8))!,
    endpoint: PeerEndpoint(address: .v4(0x7F00_0001), port: 6881), uploaded: 1, downloaded: 1,
    left: 0, passkey: passkeyTexts[index][...])
}
var approved = 0
let rounds = 2_000
let clock = ContinuousClock()
let started = clock.now
for round in 0..<rounds {
  for index in 0..<requests.count {
    if case .approved = approval.verdict(for: requests[(index &+ round) & 4095]) { approved += 1 }
  }
}
let elapsed = clock.now - started
let total = rounds * requests.count
let nanoseconds =
  Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
print(
  "approval: \(total) announces, \(approved) approved, "
    + "\(Int((nanoseconds / Double(total)).rounded())) ns per announce (one thread)")
