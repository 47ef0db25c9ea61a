#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import BitTorrent

/// Approximate count of distinct users: a HyperLogLog with 4096 one-byte
/// registers (4 KiB, standard error ≈ 1.6 %). Entries are sharded by
/// (user, torrent), so an exact count would need a per-user index that
/// costs more memory than it is worth for a gauge. Adding a user twice is
/// harmless, which lets GC feed it while it scans.
struct UserCountEstimator: Sendable {
    private static let registerBits = 12
    private var registers = [UInt8](repeating: 0, count: 1 << registerBits)

    /// Notes one user.
    mutating func add(_ userID: UserID) {
        var hasher = Hasher()
        hasher.combine(userID.high)
        hasher.combine(userID.low)
        let hash = UInt64(UInt(bitPattern: hasher.finalize()))
        let register = Int(truncatingIfNeeded: hash >> UInt64(64 - Self.registerBits))
        // A guard bit caps the rank at 64 - registerBits + 1.
        let remainder = hash << UInt64(Self.registerBits) | 1 << UInt64(Self.registerBits - 1)
        let rank = UInt8(remainder.leadingZeroBitCount + 1)
        if rank > registers[register] { registers[register] = rank }
    }

    /// The estimated number of distinct users added.
    var estimate: Int {
        let count = Double(registers.count)
        var sum = 0.0
        var zeros = 0
        for rank in registers {
            sum += Double(sign: .plus, exponent: -Int(rank), significand: 1)
            if rank == 0 { zeros += 1 }
        }
        let alpha = 0.7213 / (1 + 1.079 / count)
        var estimate = alpha * count * count / sum
        if estimate <= 2.5 * count, zeros > 0 {
            // Small cardinalities: linear counting is more accurate.
            estimate = count * log(count / Double(zeros))
        }
        return Int(estimate.rounded())
    }
}
