/// SipHash-2-4 with a 64-bit tag (Aumasson and Bernstein, 2012): a keyed
/// pseudo-random function designed for short inputs, the MAC of BEP 15
/// connection ids. About a tenth of HMAC-SHA256's cost on the 24-byte
/// message an id covers, and a tag the size of the id, so nothing is
/// truncated. swift-crypto has no SipHash and the standard library's
/// `Hasher` cannot be keyed, hence this one.
struct SipHash24: Sendable {
  private let k0: UInt64
  private let k1: UInt64

  /// Keys the function with 16 bytes, read as two little-endian words.
  init<Key: Collection<UInt8>>(key: Key) {
    precondition(key.count == 16, "SipHash keys are 16 bytes")
    let bytes = Array(key)
    self.k0 = Self.littleEndianWord(bytes, at: 0)
    self.k1 = Self.littleEndianWord(bytes, at: 8)
  }

  /// The tag of a message of three whole 8-byte words (24 bytes, the
  /// connection-id case), without touching memory.
  func tag(_ m0: UInt64, _ m1: UInt64, _ m2: UInt64) -> UInt64 {
    var state = State(k0: k0, k1: k1)
    state.compress(m0)
    state.compress(m1)
    state.compress(m2)
    return state.finalize(lastWord: 24 << 56)
  }

  /// The tag of any byte string (the reference algorithm).
  func tag<Message: Collection<UInt8>>(_ message: Message) -> UInt64 {
    let bytes = Array(message)
    var state = State(k0: k0, k1: k1)
    let whole = bytes.count / 8 * 8
    for offset in stride(from: 0, to: whole, by: 8) {
      state.compress(Self.littleEndianWord(bytes, at: offset))
    }
    var last = UInt64(truncatingIfNeeded: bytes.count) << 56
    for (index, byte) in bytes[whole...].enumerated() {
      last |= UInt64(byte) << (8 * UInt64(index))
    }
    return state.finalize(lastWord: last)
  }

  private static func littleEndianWord(_ bytes: [UInt8], at offset: Int) -> UInt64 {
    (0..<8).reduce(0) { word, index in word | UInt64(bytes[offset + index]) << (8 * index) }
  }

  private struct State {
    var v0: UInt64
    var v1: UInt64
    var v2: UInt64
    var v3: UInt64

    init(k0: UInt64, k1: UInt64) {
      v0 = k0 ^ 0x736f_6d65_7073_6575
      v1 = k1 ^ 0x646f_7261_6e64_6f6d
      v2 = k0 ^ 0x6c79_6765_6e65_7261
      v3 = k1 ^ 0x7465_6462_7974_6573
    }

    mutating func round() {
      v0 &+= v1
      v1 = v1.rotatedLeft(13) ^ v0
      v0 = v0.rotatedLeft(32)
      v2 &+= v3
      v3 = v3.rotatedLeft(16) ^ v2
      v0 &+= v3
      v3 = v3.rotatedLeft(21) ^ v0
      v2 &+= v1
      v1 = v1.rotatedLeft(17) ^ v2
      v2 = v2.rotatedLeft(32)
    }

    /// Two compression rounds per message word.
    mutating func compress(_ word: UInt64) {
      v3 ^= word
      round()
      round()
      v0 ^= word
    }

    /// The length-tagged last word, then four finalization rounds.
    mutating func finalize(lastWord: UInt64) -> UInt64 {
      compress(lastWord)
      v2 ^= 0xff
      round()
      round()
      round()
      round()
      return v0 ^ v1 ^ v2 ^ v3
    }
  }
}

extension UInt64 {
  fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
    self << count | self >> (64 - count)
  }
}
