import BitTorrent

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

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
    // A fixed mixer, not the per-process seeded `Hasher`: a gauge needs no
    // flooding resistance, and a deterministic estimate is testable.
    let hash = Self.mix(userID.high ^ Self.mix(userID.low))
    let register = Int(truncatingIfNeeded: hash >> UInt64(64 - Self.registerBits))
    // A guard bit caps the rank at 64 - registerBits + 1.
    let remainder = hash << UInt64(Self.registerBits) | 1 << UInt64(Self.registerBits - 1)
    let rank = UInt8(remainder.leadingZeroBitCount + 1)
    if rank > registers[register] { registers[register] = rank }
  }

  /// The SplitMix64 finaliser: a bijection that spreads every input bit.
  private static func mix(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
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
