import BitTorrent
import DeltaModel
import Testing

@testable import Accounting

@Suite("Stats table internals")
struct StatsTableTests {
  @Test("an entry is 80 bytes: 56 bytes of key, 23 of value, 1 of padding")
  func entryLayout() {
    #expect(MemoryLayout<StatsEntry>.size == 80)
    #expect(MemoryLayout<StatsEntry>.stride == 80)
  }

  private func entry(_ number: Int) -> StatsEntry {
    let client = TestClient(user: number % 97, torrent: number % 13, peer: number)
    return StatsEntry(
      userID: client.userID, infoHash: client.infoHash, peerID: client.peerID,
      uploaded: UInt64(number),
      downloaded: 0, lastSeen: UInt32(number))
  }

  private func find(_ entry: StatsEntry, in table: StatsTable) -> Int? {
    table.find(entry.userID, entry.infoHash, entry.peerID, hash: StatsKeyHash.entry(of: entry))
  }

  @Test("random inserts and removals agree with a Dictionary model, through growth and compaction")
  func matchesModel() {
    var table = StatsTable()
    var model: [Int: StatsEntry] = [:]
    var random = SplitMix64(state: 7)
    for step in 0..<40_000 {
      let number = Int(random.next() % 3000)
      let candidate = entry(number)
      if let index = find(candidate, in: table) {
        #expect(model[number] != nil)
        if random.next() % 3 == 0 {
          var updated = table[index]
          updated.downloaded += 1
          table[index] = updated
          model[number]?.downloaded += 1
        } else {
          table.remove(at: index, hash: StatsKeyHash.entry(of: candidate))
          model[number] = nil
        }
      } else {
        #expect(model[number] == nil)
        table.insert(candidate, hash: StatsKeyHash.entry(of: candidate))
        model[number] = candidate
      }
      if step % 5000 == 4999 { table.compact() }
    }
    #expect(table.count == model.count)
    for (_, expected) in model {
      let index = find(expected, in: table)
      #expect(index.map { table[$0] } == expected)
    }
    // Drain everything; the table gives its memory back.
    for (_, expected) in model {
      table.remove(at: find(expected, in: table)!, hash: StatsKeyHash.entry(of: expected))
    }
    table.compact()
    #expect(table.count == 0)
    #expect(table.reservedBytes == 0)
  }

  @Test("entries fill 5 KiB pages: at most one partly filled page of slack")
  func leanGrowth() {
    var table = StatsTable()
    for number in 0..<10_000 {
      let candidate = entry(number)
      table.insert(candidate, hash: StatsKeyHash.entry(of: candidate))
    }
    let perEntry = Double(table.reservedBytes) / 10_000
    // 80 bytes per entry plus 8-byte slots at ≥ 37.5 % load, plus one page.
    #expect(perEntry < 80 + 8 / 0.375 + 1, "reserved \(perEntry) bytes per entry")
    // Removing down to a page boundary keeps one spare page, no more.
    for number in (64..<10_000).reversed() {
      let candidate = entry(number)
      table.remove(at: find(candidate, in: table)!, hash: StatsKeyHash.entry(of: candidate))
    }
    table.compact()
    #expect(table.count == 64)
    // One page of 80-byte entries, 128 index slots, and the page list's
    // own capacity, which compaction leaves alone up to 2 × pages + 4
    // (the allocator may round a 1-page list up to several).
    #expect(table.reservedBytes <= 64 * 80 + 8 * 128 + 8 * (2 * 1 + 4))
  }

  @Test("knows: any client of a user on a torrent")
  func containsUserAndTorrent() {
    var table = StatsTable()
    let candidate = entry(5)
    table.insert(candidate, hash: StatsKeyHash.entry(of: candidate))
    #expect(table.contains(candidate.userID, candidate.infoHash))
    #expect(!table.contains(candidate.userID, entry(6).infoHash))
  }

  @Test(
    "the user-count estimate is close for small and large populations",
    arguments: [1, 3, 100, 20_000])
  func userEstimate(users: Int) {
    var estimator = UserCountEstimator()
    // Every user twice: duplicates must not count.
    for _ in 0..<2 {
      for user in 0..<users { estimator.add(TestClient(user: user, torrent: 0).userID) }
    }
    let error = abs(Double(estimator.estimate - users)) / Double(users)
    #expect(error < 0.05, "estimated \(estimator.estimate) for \(users)")
  }

  @Test("CRC-32 matches the IEEE check value")
  func crcCheckValue() {
    var crc = CRC32()
    crc.update(Array("123456789".utf8))
    #expect(crc.value == 0xCBF4_3926)
  }
}
