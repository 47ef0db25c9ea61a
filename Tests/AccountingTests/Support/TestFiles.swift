#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A fresh directory under /tmp, removed (with its files) by ``remove()``.
struct TemporaryDirectory {
  let path: String

  init() {
    var template = Array("/tmp/privtrak-accounting-XXXXXX".utf8CString)
    let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    path = String(cString: created!)
  }

  func file(_ name: String) -> String { path + "/" + name }

  func remove() {
    if let directory = opendir(path) {
      while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
          String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != ".", name != ".." { unlink(file(name)) }
      }
      closedir(directory)
    }
    rmdir(path)
  }
}

/// The bytes of a file (empty if it cannot be read).
func readFile(_ path: String) -> [UInt8] {
  let descriptor = open(path, O_RDONLY)
  guard descriptor >= 0 else { return [] }
  defer { close(descriptor) }
  var bytes: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 65536)
  while true {
    let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
    if count <= 0 { break }
    bytes.append(contentsOf: chunk[0..<count])
  }
  return bytes
}

/// Replaces a file's content.
func writeFile(_ path: String, _ bytes: [UInt8]) {
  let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
  precondition(descriptor >= 0, "cannot write \(path)")
  defer { close(descriptor) }
  var written = 0
  while written < bytes.count {
    let count = bytes.withUnsafeBytes {
      write(descriptor, $0.baseAddress! + written, $0.count - written)
    }
    precondition(count > 0, "short write to \(path)")
    written += count
  }
}

/// Whether a file exists.
func fileExists(_ path: String) -> Bool {
  access(path, F_OK) == 0
}

/// The permission bits of a file.
func permissions(_ path: String) -> UInt32 {
  var info = stat()
  guard stat(path, &info) == 0 else { return 0 }
  return UInt32(info.st_mode) & 0o777
}

/// The names in a directory (without `.` and `..`).
func listDirectory(_ path: String) -> [String] {
  guard let handle = opendir(path) else { return [] }
  defer { closedir(handle) }
  var names: [String] = []
  while let item = readdir(handle) {
    let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
      String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
    }
    if name != ".", name != ".." { names.append(name) }
  }
  return names
}
