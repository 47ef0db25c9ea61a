internal import SystemPackage

extension FileDescriptor {
  /// Everything from the current offset to the end of the file. SystemPackage
  /// retries reads a signal interrupted (EINTR), so a short count is only EOF.
  func readToEnd() throws(Errno) -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let count: Int
      do {
        count = try chunk.withUnsafeMutableBytes { try read(into: $0) }
      } catch {
        throw Errno(error)
      }
      if count == 0 { return bytes }
      bytes.append(contentsOf: chunk[0..<count])
    }
  }
}

extension Errno {
  /// The `Errno` SystemPackage threw (its operations throw nothing else).
  init(_ error: any Error) {
    self = error as? Errno ?? .ioError
  }
}
