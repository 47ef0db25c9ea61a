import Foundation
import Logging
import PrivtrakService
import PrivtrakTestSupport
import Testing

/// The whole server (frontends, accounting, file sink, admin endpoint)
/// against hostile input over real sockets: passkeys never leak into logs,
/// metrics or failure reasons, and a UDP flood with bad connection ids is
/// dropped, counted and not logged per packet.
@Suite struct HostileInputServiceTests {
  /// A real server on ephemeral ports, logging at trace level into `logs`.
  struct RunningServer {
    let server: PrivtrakServer
    let task: Task<Void, any Error>
    let directory: String
    let logs: LogCapture
    let http: Int
    let udp: Int
    let admin: Int

    static func start() async throws -> RunningServer {
      let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("privtrak-hostile-\(UUID().uuidString)").path
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      var configuration = ServiceConfiguration.defaults
      configuration.httpListen = ListenAddress(host: "127.0.0.1", port: 0)
      configuration.udpListen = ListenAddress(host: "127.0.0.1", port: 0)
      configuration.adminListen = ListenAddress(host: "127.0.0.1", port: 0)
      configuration.sink = .file(path: directory + "/deltas.ptdl")
      configuration.snapshotPath = directory + "/snapshot.bin"
      configuration.accounting.flushInterval = .milliseconds(20)
      let logs = LogCapture()
      let server = PrivtrakServer(configuration: configuration, logger: logs.logger(level: .trace))
      let task = Task { try await server.run() }
      let admin = try await poll("the admin endpoint is bound") {
        server.boundAddress(of: "admin")?.port
      }
      _ = try await poll("the server is ready") {
        try await LoopbackClient.offPool { try LoopbackClient.get(port: admin, "/readyz") }.status
          == 200 ? true : nil
      }
      return RunningServer(
        server: server, task: task, directory: directory, logs: logs,
        http: try #require(server.boundAddress(of: "http")?.port),
        udp: try #require(server.boundAddress(of: "udp")?.port), admin: admin)
    }

    func metrics() async throws -> PrometheusText {
      PrometheusText(try await get(admin, "/metrics").body)
    }

    func get(_ port: Int, _ target: String) async throws -> (status: Int, body: String) {
      try await LoopbackClient.offPool { try LoopbackClient.get(port: port, target) }
    }

    func stop() async throws {
      await server.triggerGracefulShutdown()
      try await task.value("task to end")
      try? FileManager.default.removeItem(atPath: directory)
    }
  }

  static let passkey = "d41d8cd98f00b204e9800998ecf8427e"
  /// Passkey-shaped strings a client might send: one non-hex, one too long (it contains `passkey`).
  static let malformed = ["d41d8cd98f00b204e9800998ecf8427z", passkey + "0"]

  static func query(peer: Int, extra: String = "") -> String {
    "info_hash=\(String(repeating: "B", count: 20))&peer_id=-PT0001-\(100_000_000_000 + peer)"
      + "&port=\(7000 + peer)&uploaded=0&downloaded=0&left=100&compact=1" + extra
  }

  @Test func passkeysNeverAppearInLogsMetricsOrFailureReasons() async throws {
    let running = try await RunningServer.start()
    var answers: [String] = []
    do {
      // HTTP: valid, malformed, in both path forms, a failing field, a scrape, an unknown path.
      var targets = [
        "/\(Self.passkey)/announce?" + Self.query(peer: 1),
        "/announce/\(Self.passkey)?" + Self.query(peer: 2),
        "/\(Self.passkey)/announce?" + Self.query(peer: 3, extra: "&event=bogus"),
        "/\(Self.passkey)/announce?info_hash=short",
        "/\(Self.passkey)/scrape?info_hash=" + String(repeating: "B", count: 20),
        "/\(Self.passkey)/stats",
        "/\(Self.passkey)/announce/extra",
      ]
      for key in Self.malformed {
        targets += [
          "/\(key)/announce?" + Self.query(peer: 4), "/\(key)/scrape?info_hash=x", "/\(key)/nope",
        ]
      }
      for target in targets {
        let (status, body) = try await running.get(running.http, target)
        #expect([200, 404].contains(status), "\(target)")
        answers.append(body)
      }
      #expect(answers[0].contains("8:interval"), "the valid passkey was served: \(answers[0])")

      // UDP: the same passkeys as BEP 41 URL data, and a path that is not an announce.
      for path in ["/\(Self.passkey)/announce", "/\(Self.passkey)/nope"]
        + Self.malformed.map({ "/\($0)/announce" })
      {
        let udp = running.udp
        let answer = try await LoopbackClient.offPool {
          try LoopbackClient.udpAnnounce(port: udp) { id in
            Self.udpAnnounce(connectionID: id, path: path)
          }
        }
        answers.append(String(decoding: answer.dropFirst(8), as: UTF8.self))
      }
      #expect(
        answers.contains("malformed passkey: expected 32 hexadecimal characters"),
        "the malformed passkeys were refused for what they are")

      answers.append(try await running.get(running.admin, "/metrics").body)
    } catch {
      try await running.stop()
      throw error
    }
    try await running.stop()

    let logs = running.logs.all
    #expect(logs.count > 5, "the capture saw the server's logging")
    #expect(
      logs.contains { $0.hasPrefix("trace") && $0.contains(String(Self.passkey.prefix(4)) + "…") },
      "trace logging names passkeys by their redacted prefix")
    for secret in [Self.passkey] + Self.malformed {
      for line in logs { #expect(!line.contains(secret), "log line leaks a passkey: \(line)") }
      for answer in answers {
        #expect(!answer.contains(secret), "answer or metrics leak a passkey: \(answer.prefix(300))")
      }
    }
  }

  @Test func aUDPFloodWithBadConnectionIDsIsDroppedCountedAndNotLogged() async throws {
    let running = try await RunningServer.start()
    do {
      let rejected = ["protocol": "udp", "reason": "bad_connection_id"]
      let before = try await running.metrics().value("privtrak_requests_rejected_total", rejected)
      let linesBefore = running.logs.all.count
      var connect: [UInt8] = []
      connect.appendBigEndian(UInt64(0x417_2710_1980))
      connect.appendBigEndian(UInt32(0))
      // Bursts small enough for the socket buffers, so every packet arrives.
      for burst in 0..<10 {
        let packets = (0..<50).map { index in
          Self.udpAnnounce(
            connectionID: UInt64(burst * 50 + index + 1) &* 0x9E37_79B9_7F4A_7C15,
            path: "/\(Self.passkey)/announce")
        }
        let transactionID = UInt32(0xF100 + burst)
        let (udp, last) = (running.udp, connect + Self.bigEndian(transactionID))
        let answer = try await LoopbackClient.offPool {
          try LoopbackClient.firstAnswer(port: udp, after: packets, to: last)
        }
        #expect(answer.count == 16, "the first answer is the connect reply, burst \(burst)")
        #expect(Array(answer.prefix(8)) == [0, 0, 0, 0] + Self.bigEndian(transactionID))
      }
      let after = try await running.metrics().value("privtrak_requests_rejected_total", rejected)
      #expect(after - before == 500, "every dropped packet is counted")
      let flood = running.logs.all.dropFirst(linesBefore)
      #expect(flood.count < 20, "no log line per dropped packet: \(flood.prefix(5))")
    } catch {
      try await running.stop()
      throw error
    }
    try await running.stop()
  }

  static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendBigEndian(value)
    return bytes
  }

  /// A BEP 15 announce carrying `path` as BEP 41 URL data.
  static func udpAnnounce(connectionID: UInt64, path: String) -> [UInt8] {
    var packet: [UInt8] = []
    packet.appendBigEndian(connectionID)
    packet.appendBigEndian(UInt32(1))
    packet.appendBigEndian(UInt32(99))
    packet += Array(String(repeating: "B", count: 20).utf8)
    packet += Array("-PT0001-200000000001".utf8)
    packet.appendBigEndian(UInt64(0))  // downloaded
    packet.appendBigEndian(UInt64(100))  // left
    packet.appendBigEndian(UInt64(0))  // uploaded
    packet.appendBigEndian(UInt32(0))  // event: none
    packet.appendBigEndian(UInt32(0))  // ip: the sender's
    packet.appendBigEndian(UInt32(7))  // key
    packet.appendBigEndian(Int32(-1))  // num_want: default
    packet.appendBigEndian(UInt16(7100))
    let bytes = Array(path.utf8)
    packet += [2, UInt8(bytes.count)] + bytes + [0]
    return packet
  }
}
