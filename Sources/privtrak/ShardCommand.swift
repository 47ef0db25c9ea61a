import ArgumentParser
import BitTorrent

extension Privtrak {
  /// `privtrak shard --count N HASH`: the shard that owns a torrent, for a
  /// site handing out per-shard UDP announce URLs and for checking a proxy.
  struct ShardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "shard",
      abstract: "Print the tracker shard (0-based) that owns an info hash.",
      discussion: """
        The shard is CRC-32 (zlib) of the torrent's 20-byte key mod COUNT: \
        the v1 info hash, or the first 20 bytes of a v2-only torrent's hash. \
        A hybrid torrent's shard is its v1 hash's.
        """)

    @Option(help: "How many shards (tracker.shard_count).")
    var count: Int

    @Argument(help: "An info hash: 40 hexadecimal characters (v1), or 64 (v2).")
    var infoHash: String

    func validate() throws {
      guard (1...1024).contains(count) else {
        throw ValidationError("--count must be between 1 and 1024, got \(count)")
      }
      guard key != nil else {
        throw ValidationError(
          "expected 40 (v1) or 64 (v2) hexadecimal characters, got '\(infoHash)'")
      }
    }

    private var key: InfoHash? {
      InfoHash(hex: infoHash) ?? V2InfoHash(hex: infoHash)?.announceHash
    }

    func run() throws {
      print(TrackerShard.owner(of: key!, count: count))
    }
  }
}
