import BitTorrent

/// The entries of one shard: a dense array of ``StatsEntry`` plus an
/// open-addressing index (linear probing, backward-shift deletion, no
/// tombstones).
///
/// Why not `Dictionary`: its load factor swings between 37.5 % and 75 % and
/// it stores keys and values in separate padded arrays, which costs ≈ 170
/// bytes per entry at a million entries. Here the dense array grows by 25 %
/// steps (≈ 90 bytes per entry) and the index costs 8 bytes per slot at a
/// load of at most 75 %.
///
/// Slot layout: high 32 bits = low 32 bits of the entry hash (a fingerprint
/// that also gives the home bucket, so the index can be resized and shifted
/// without rehashing), low 32 bits = entry index + 1 (0 = empty).
struct StatsTable {
    /// The entries, in no particular order.
    private(set) var entries: [StatsEntry] = []
    private var slots: [UInt64] = []

    /// Number of entries.
    var count: Int { entries.count }

    /// Bytes reserved by this table's two arrays (without allocator overhead).
    var reservedBytes: Int {
        entries.capacity * MemoryLayout<StatsEntry>.stride + slots.capacity * MemoryLayout<UInt64>.stride
    }

    /// Reads or replaces the entry at `index` (the key must not change).
    subscript(index: Int) -> StatsEntry {
        get { entries[index] }
        set { entries[index] = newValue }
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
                if entries[index].matches(userID, infoHash, peerID) { return index }
            }
            bucket = (bucket + 1) & mask
        }
    }

    /// Adds an entry whose key is not in the table; `hash` is its entry hash.
    mutating func insert(_ entry: StatsEntry, hash: UInt64) {
        precondition(entries.count < Int(UInt32.max), "a stats shard holds at most 2^32 - 2 entries")
        if (entries.count + 1) * 4 > slots.count * 3 {
            rebuildIndex(slotCount: max(8, slots.count * 2))
        }
        if entries.count == entries.capacity {
            // Grow by 25 % instead of doubling: the dense array dominates memory.
            entries.reserveCapacity(max(4, entries.capacity + entries.capacity / 4))
        }
        entries.append(entry)
        place(slot: Self.fingerprint(hash) << 32 | UInt64(entries.count))
    }

    /// Removes the entry at `index`; `hash` is its entry hash. The last entry
    /// moves into the hole, so indices of other entries may change.
    mutating func remove(at index: Int, hash: UInt64) {
        deleteSlot(at: bucket(ofIndex: index, hash: hash))
        let last = entries.count - 1
        if index != last {
            let movedBucket = bucket(ofIndex: last, hash: StatsKeyHash.entry(of: entries[last]))
            slots[movedBucket] = slots[movedBucket] & 0xffff_ffff_0000_0000 | UInt64(index + 1)
            entries[index] = entries[last]
        }
        entries.removeLast()
    }

    /// Whether any client of `userID` has an entry on `infoHash` (a scan of this shard).
    func contains(_ userID: UserID, _ infoHash: InfoHash) -> Bool {
        entries.contains { $0.infoHash == infoHash && $0.userID == userID }
    }

    /// Gives memory back after many removals (called by GC, never per announce,
    /// so that a shard hovering around a threshold does not thrash).
    mutating func compact() {
        if entries.isEmpty {
            entries = []
            slots = []
            return
        }
        if entries.capacity > 16, entries.count * 2 < entries.capacity {
            var fresh: [StatsEntry] = []
            fresh.reserveCapacity(entries.count + entries.count / 4 + 1)
            fresh.append(contentsOf: entries)
            entries = fresh
        }
        if slots.count > 8, entries.count * 16 < slots.count * 3 {
            var target = 8
            while entries.count * 4 > target * 3 { target <<= 1 }
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
