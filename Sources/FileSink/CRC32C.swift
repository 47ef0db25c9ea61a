import BitTorrent

/// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, initial value and
/// final xor 0xFFFFFFFF), the record checksum of the delta log. Chosen over
/// CRC-32 (zlib) for its better error detection on storage-sized records;
/// computed in software, slicing eight bytes per step.
enum CRC32C {
  private static let engine = SlicingBy8CRC(reflectedPolynomial: 0x82F6_3B78)

  /// The checksum of `bytes`.
  static func checksum(_ bytes: some ContiguousBytes) -> UInt32 {
    bytes.withUnsafeBytes { checksum($0) }
  }

  /// The checksum of the bytes in `buffer`.
  static func checksum(_ buffer: UnsafeRawBufferPointer) -> UInt32 {
    engine.update(0xffff_ffff, with: buffer) ^ 0xffff_ffff
  }
}

/// Byte containers whose storage can be read in place.
protocol ContiguousBytes {
  func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result
}

extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
