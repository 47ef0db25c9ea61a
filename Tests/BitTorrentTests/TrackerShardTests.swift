import BitTorrent
import Testing

/// The shard function is a contract with code that is not ours (HAProxy's
/// `crc32`, PHP's and Python's `crc32`): it must be zlib's CRC-32 of the
/// key's 20 bytes in order, mod the shard count.
@Suite struct TrackerShardTests {
  @Test func crc32IsZlibs() {
    var checksum = CRC32()
    checksum.update(Array("123456789".utf8))
    #expect(checksum.value == 0xCBF4_3926, "the CRC-32/ISO-HDLC check value")
  }

  /// References from Python's `zlib.crc32(bytes.fromhex(h)) % n`.
  @Test(
    arguments: [
      ("0123456789abcdef0123456789abcdef01234567", 3, 1),
      ("ffffffffffffffffffffffffffffffffffffffff", 3, 2),
      ("00000000000000000000000000000000000000aa", 3, 0),
      ("0123456789abcdef0123456789abcdef01234567", 7, 2),
      ("a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", 5, 2),
    ])
  func ownerMatchesZlib(hex: String, count: Int, expected: Int) throws {
    let key = try #require(InfoHash(hex: hex))
    #expect(TrackerShard.owner(of: key, count: count) == expected)
  }

  @Test func byteOrderMatters() throws {
    // Reversing the bytes changes the checksum: the function reads them in order.
    let key = try #require(InfoHash(hex: "0102030405060708090a0b0c0d0e0f1011121314"))
    let reversed = try #require(InfoHash(Array(key.bytes.reversed())))
    var forward = CRC32()
    forward.update(key.bytes)
    #expect(TrackerShard.owner(of: key, count: 1 << 20) == Int(forward.value % (1 << 20)))
    #expect(
      TrackerShard.owner(of: key, count: 1 << 20)
        != TrackerShard.owner(of: reversed, count: 1 << 20)
    )
  }

  @Test func everyTorrentHasExactlyOneOwner() {
    var generator = SystemRandomNumberGenerator()
    let shards = (0..<3).map { TrackerShard(index: $0, count: 3)! }
    var perShard = [0, 0, 0]
    for _ in 0..<3000 {
      let key = InfoHash((0..<20).map { _ in UInt8.random(in: 0...255, using: &generator) })!
      let owners = shards.filter { $0.owns(key) }
      #expect(owners.count == 1)
      perShard[owners.first?.index ?? 0] += 1
    }
    // Uniform hashes spread evenly: 1000 ± 200 each (a 9-sigma margin).
    #expect(perShard.allSatisfy { (800...1200).contains($0) }, "\(perShard)")
  }

  @Test func validIndexAndCount() {
    #expect(TrackerShard(index: 0, count: 0) == nil)
    #expect(TrackerShard(index: 3, count: 3) == nil)
    #expect(TrackerShard(index: -1, count: 3) == nil)
    #expect(TrackerShard(index: 2, count: 3)?.description == "shard 2 of 3")
    #expect(TrackerShard.whole.owns(InfoHash(hex: String(repeating: "ab", count: 20))!))
  }
}
