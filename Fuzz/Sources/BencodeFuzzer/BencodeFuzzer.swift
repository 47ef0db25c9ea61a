import BitTorrent

/// libFuzzer entry point for ``BencodeDecoder``.
///
/// Besides "never crash", checks what the strict decoder promises: whatever
/// it accepts is canonical, so re-encoding reproduces the input byte for
/// byte and decodes to the same value; a tighter depth limit only ever
/// rejects with `tooDeep`.
@_cdecl("LLVMFuzzerTestOneInput")
public func bencodeFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  let input = Array(UnsafeBufferPointer(start: data, count: count))
  let decoder = BencodeDecoder(maxDepth: 64, maxStringLength: 1 << 16)
  let value: BencodeValue
  do {
    value = try decoder.decode(input)
  } catch {
    precondition(error.offset >= 0 && error.offset <= input.count, "error offset out of range")
    return 0
  }
  let encoded = value.encoded
  precondition(encoded == input, "accepted non-canonical bencode")
  precondition((try? decoder.decode(encoded)) == value, "re-encoding does not round-trip")
  do {
    _ = try BencodeDecoder(maxDepth: 2).decode(input)
  } catch {
    precondition(error.kind == .tooDeep, "a shallower limit failed with \(error.kind)")
  }
  return 0
}
