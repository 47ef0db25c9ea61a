import Dispatch

#if canImport(Glibc)
  import Glibc
#endif

/// Minimal blocking clients over real loopback sockets, for talking to a
/// server under test the way an outside client does. Every call has a receive
/// timeout, so a silent server fails the test instead of hanging it.
enum LoopbackClient {
  struct Failure: Error, CustomStringConvertible {
    let description: String
  }

  /// Runs blocking calls (these clients wait in `recv`) on a Dispatch
  /// thread. Called straight from an async test they would hold one of the
  /// few cooperative threads (two on a 2-core machine) that an in-process
  /// server needs to answer, and tests running in parallel would starve it.
  static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
  }

  /// ``get(port:_:)`` off the cooperative pool (see ``offPool(_:)``).
  static func fetch(port: Int, _ target: String) async throws -> (status: Int, body: String) {
    try await offPool { try get(port: port, target) }
  }

  /// ``udpAnnounce(port:_:)`` off the cooperative pool (see ``offPool(_:)``).
  static func udpAnnounceOffPool(
    port: Int, _ announce: @escaping @Sendable (UInt64) -> [UInt8]
  ) async throws -> [UInt8] {
    try await offPool { try udpAnnounce(port: port, announce) }
  }

  /// One HTTP/1.1 GET with `Connection: close`; returns the status and body.
  static func get(port: Int, _ target: String) throws -> (status: Int, body: String) {
    let descriptor = try connectedSocket(type: SOCK_STREAM, port: port)
    defer { close(descriptor) }
    try send(
      descriptor,
      Array("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
      let count = recv(descriptor, &chunk, chunk.count, 0)
      if count == 0 { break }
      guard count > 0 else { throw Failure(description: "recv: errno \(errno)") }
      response += chunk[..<count]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let statusLine = text.split(separator: "\r\n").first,
      let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
      let bodyStart = text.range(of: "\r\n\r\n")
    else { throw Failure(description: "unreadable HTTP response: \(text.prefix(200))") }
    return (status, String(text[bodyStart.upperBound...]))
  }

  /// Sends `packets` one by one from a single UDP socket and returns each answer.
  static func exchange(port: Int, _ packets: [[UInt8]]) throws -> [[UInt8]] {
    let descriptor = try connectedSocket(type: SOCK_DGRAM, port: port)
    defer { close(descriptor) }
    var answers: [[UInt8]] = []
    for packet in packets {
      try send(descriptor, packet)
      var buffer = [UInt8](repeating: 0, count: 2048)
      let count = recv(descriptor, &buffer, buffer.count, 0)
      guard count > 0 else { throw Failure(description: "no UDP answer (errno \(errno))") }
      answers.append(Array(buffer[..<count]))
    }
    return answers
  }

  /// Sends `packets` from one UDP socket without waiting for answers, then
  /// `last`, and returns the first datagram that comes back. When the server
  /// drops `packets` on arrival and answers `last` at once, that is the
  /// answer to `last`: loopback keeps datagram order.
  static func firstAnswer(port: Int, after packets: [[UInt8]], to last: [UInt8]) throws -> [UInt8] {
    let descriptor = try connectedSocket(type: SOCK_DGRAM, port: port)
    defer { close(descriptor) }
    for packet in packets { try send(descriptor, packet) }
    try send(descriptor, last)
    var buffer = [UInt8](repeating: 0, count: 2048)
    let count = recv(descriptor, &buffer, buffer.count, 0)
    guard count > 0 else { throw Failure(description: "no UDP answer (errno \(errno))") }
    return Array(buffer[..<count])
  }

  /// Exchanges a BEP 15 connect, then `announce(connectionID)`; returns the announce answer.
  static func udpAnnounce(port: Int, _ announce: (UInt64) -> [UInt8]) throws -> [UInt8] {
    var connect: [UInt8] = []
    connect.appendBigEndian(UInt64(0x417_2710_1980))
    connect.appendBigEndian(UInt32(0))
    connect.appendBigEndian(UInt32(0x1234))
    let descriptor = try connectedSocket(type: SOCK_DGRAM, port: port)
    defer { close(descriptor) }
    try send(descriptor, connect)
    var buffer = [UInt8](repeating: 0, count: 2048)
    let count = recv(descriptor, &buffer, buffer.count, 0)
    guard count == 16 else { throw Failure(description: "bad connect answer (\(count) bytes)") }
    let connectionID = buffer[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    try send(descriptor, announce(connectionID))
    let answered = recv(descriptor, &buffer, buffer.count, 0)
    guard answered > 0 else { throw Failure(description: "no announce answer (errno \(errno))") }
    return Array(buffer[..<answered])
  }

  private static func connectedSocket(type: __socket_type, port: Int) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(type.rawValue), 0)
    guard descriptor >= 0 else { throw Failure(description: "socket: errno \(errno)") }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(
      descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr = in_addr(s_addr: UInt32(0x7f00_0001).bigEndian)
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard connected == 0 else {
      close(descriptor)
      throw Failure(description: "connect to port \(port): errno \(errno)")
    }
    return descriptor
  }

  private static func send(_ descriptor: Int32, _ bytes: [UInt8]) throws {
    var sent = 0
    while sent < bytes.count {
      let count = bytes[sent...].withUnsafeBytes {
        Glibc.send(descriptor, $0.baseAddress, $0.count, 0)
      }
      guard count > 0 else { throw Failure(description: "send: errno \(errno)") }
      sent += count
    }
  }
}

extension [UInt8] {
  mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
    Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
  }
}
