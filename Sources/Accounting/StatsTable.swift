import BitTorrent

/// The entries of one shard: entries packed in fixed-size pages plus an
/// open-addressing index (linear probing, backward-shift deletion, no
/// tombstones).
///
/// Why not `Dictionary`: its load factor swings between 37.5 % and 75 % and
/// it stores keys and values in separate padded arrays, which costs ≈ 170
/// bytes per entry at a million entries. Why pages rather than one growing
/// array: growing an array copies it and frees the old buffer, and those
/// freed buffers fragment the heap (resident memory ≈ 30 bytes per entry
/// above what is in use). Pages are allocated once and never move; a shard
/// wastes at most one partly filled page. The index costs 8 bytes per slot
/// at a load of at most 75 %.
///
/// Slot layout: high 32 bits = low 32 bits of the entry hash (a fingerprint
/// that also gives the home bucket, so the index can be resized and shifted
/// without rehashing), low 32 bits = entry index + 1 (0 = empty).
struct StatsTable {
  /// Entries per page: 64 × 80 bytes = 5 KiB.
  private static let pageShift = 6
  private static let pageCapacity = 1 << pageShift
  private static let pageMask = pageCapacity - 1

  /// Entries `0..<count`, page by page; a trailing empty page may be kept
  /// as a spare so a shard hovering at a page boundary does not thrash.
  private var pages: [[StatsEntry]] = []
  private var slots: [UInt64] = []

  /// Number of entries.
  private(set) var count = 0

  /// Bytes reserved by this table's arrays (without allocator overhead).
  var reservedBytes: Int {
    pages.count * Self.pageCapacity * MemoryLayout<StatsEntry>.stride
      + pages.capacity * MemoryLayout<[StatsEntry]>.stride
      + slots.capacity * MemoryLayout<UInt64>.stride
  }

  /// Reads or replaces the entry at `index` (the key must not change).
  subscript(index: Int) -> StatsEntry {
    get { pages[index >> Self.pageShift][index & Self.pageMask] }
    set { pages[index >> Self.pageShift][index & Self.pageMask] = newValue }
  }

  /// Appends every entry to `all`.
  func appendEntries(to all: inout [StatsEntry]) {
    for page in pages { all.append(contentsOf: page) }
  }

  @inline(__always)
  private static func fingerprint(_ hash: UInt64) -> UInt64 { hash & 0xffff_ffff }

  /// The index of the entry with this key, or nil.
  func find(_ userID: UserID, _ infoHash: InfoHash, _ peerID: PeerID, hash: UInt64) -> Int? {
    guard !slots.isEmpty else { return nil }
    let mask = slots.count - 1
    let fingerprint = Self.fingerprint(hash)
    var bucket = Int(truncatingIfNeeded: fingerprint) & mask
    while true {
      let slot = slots[bucket]
      if slot == 0 { return nil }
      if slot >> 32 == fingerprint {
        let index = Int(truncatingIfNeeded: slot & 0xffff_ffff) - 1
        if self[index].matches(userID, infoHash, peerID) { return index }
      }
      bucket = (bucket + 1) & mask
    }
  }

  /// Adds an entry whose key is not in the table; `hash` is its entry hash.
  mutating func insert(_ entry: StatsEntry, hash: UInt64) {
    precondition(count < Int(UInt32.max), "a stats shard holds at most 2^32 - 2 entries")
    if (count + 1) * 4 > slots.count * 3 {
      rebuildIndex(slotCount: max(8, slots.count * 2))
    }
    let page = count >> Self.pageShift
    if page == pages.count {
      var fresh: [StatsEntry] = []
      fresh.reserveCapacity(Self.pageCapacity)
      pages.append(fresh)
    }
    pages[page].append(entry)
    count += 1
    place(slot: Self.fingerprint(hash) << 32 | UInt64(count))
  }

  /// Removes the entry at `index`; `hash` is its entry hash. The last entry
  /// moves into the hole, so indices of other entries may change.
  mutating func remove(at index: Int, hash: UInt64) {
    deleteSlot(at: bucket(ofIndex: index, hash: hash))
    let last = count - 1
    if index != last {
      let moved = self[last]
      let movedBucket = bucket(ofIndex: last, hash: StatsKeyHash.entry(of: moved))
      slots[movedBucket] = slots[movedBucket] & 0xffff_ffff_0000_0000 | UInt64(index + 1)
      self[index] = moved
    }
    let lastPage = last >> Self.pageShift
    pages[lastPage].removeLast()
    count -= 1
    // Keep at most one empty page (the spare).
    if pages[lastPage].isEmpty, lastPage + 1 < pages.count {
      pages.removeLast()
    }
  }

  /// Whether any client of `userID` has an entry on `infoHash` (a scan of this shard).
  func contains(_ userID: UserID, _ infoHash: InfoHash) -> Bool {
    pages.contains { page in page.contains { $0.infoHash == infoHash && $0.userID == userID } }
  }

  /// Gives memory back after many removals (called by GC, never per
  /// announce, so that a shard hovering around a threshold does not thrash).
  mutating func compact() {
    if count == 0 {
      pages = []
      slots = []
      return
    }
    if pages.last?.isEmpty == true { pages.removeLast() }
    if pages.capacity > 2 * pages.count + 4 {
      var fresh: [[StatsEntry]] = []
      fresh.reserveCapacity(pages.count)
      fresh.append(contentsOf: pages)
      pages = fresh
    }
    if slots.count > 8, count * 16 < slots.count * 3 {
      var target = 8
      while count * 4 > target * 3 { target <<= 1 }
      rebuildIndex(slotCount: target)
    }
  }

  /// Places a non-empty slot at the first free bucket from its home.
  private mutating func place(slot: UInt64) {
    let mask = slots.count - 1
    var bucket = Int(truncatingIfNeeded: slot >> 32) & mask
    while slots[bucket] != 0 { bucket = (bucket + 1) & mask }
    slots[bucket] = slot
  }

  private mutating func rebuildIndex(slotCount: Int) {
    let old = slots
    slots = [UInt64](repeating: 0, count: slotCount)
    for slot in old where slot != 0 { place(slot: slot) }
  }

  /// The bucket whose slot points at `index`.
  private func bucket(ofIndex index: Int, hash: UInt64) -> Int {
    let mask = slots.count - 1
    let wanted = UInt64(index + 1)
    var bucket = Int(truncatingIfNeeded: Self.fingerprint(hash)) & mask
    while slots[bucket] & 0xffff_ffff != wanted {
      precondition(slots[bucket] != 0, "stats index lost an entry")
      bucket = (bucket + 1) & mask
    }
    return bucket
  }

  /// Backward-shift deletion: pull later members of the probe run into the
  /// hole when their home bucket allows it, so lookups never need tombstones.
  private mutating func deleteSlot(at start: Int) {
    let mask = slots.count - 1
    var hole = start
    var probe = (start + 1) & mask
    while slots[probe] != 0 {
      let home = Int(truncatingIfNeeded: slots[probe] >> 32) & mask
      // The slot may move to the hole when the hole lies in [home, probe) cyclically.
      if (probe &- home) & mask >= (probe &- hole) & mask {
        slots[hole] = slots[probe]
        hole = probe
      }
      probe = (probe + 1) & mask
    }
    slots[hole] = 0
  }
}
