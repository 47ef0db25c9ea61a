import BitTorrent
import Foundation
import Registry
import Testing

/// The registry file format: what parses, what fails and where.
@Suite struct RegistryFileTests {
  static let sample = """
    # a comment, then a blank line

    {"type":"user","user_id":"0123456789abcdef0123456789abcdef","passkey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","no_leech":true,"upload_factor":150}
    {"type":"user","user_id":"00000000000000000000000000000002","passkey":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","disabled":""}
    {"type":"torrent","info_hash":"0102030405060708090a0b0c0d0e0f1011121314","download_factor":0}
    {"type":"torrent","info_hash":"ffffffffffffffffffffffffffffffffffffffff","state":"pending","reason":"moderation"}
    {"type":"torrent","info_hash":"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1","v2_info_hash":"b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"}
    {"type":"torrent","v2_info_hash":"c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3","state":"active"}
    {"type":"token","user_id":"0123456789abcdef0123456789abcdef","info_hash":"0102030405060708090a0b0c0d0e0f1011121314","download_factor":0}
    {"type":"global","upload_factor":200}
    {"type":"client","peer_id_prefix":"-XL","action":"deny","reason":"Xunlei"}
    """

  @Test func sampleParsesToTheRecordsItNames() throws {
    let contents = try RegistryFile.parse(Self.sample, path: "sample.jsonl")
    let alice = try #require(UserID(hex: "0123456789abcdef0123456789abcdef"))
    #expect(contents.users.count == 2)
    #expect(contents.users[alice]?.canLeech == false)
    #expect(contents.users[alice]?.factors == FactorOverrides(uploadPercent: 150))
    #expect(contents.users[alice]?.passkey == Passkey(hex: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
    #expect(
      contents.users[try #require(UserID(hex: "00000000000000000000000000000002"))]?.disabledReason
        == "")
    #expect(contents.torrents.count == 4)
    let hybridKey = try #require(InfoHash(hex: String(repeating: "a1", count: 20)))
    let hybrid = try #require(contents.torrents[hybridKey])
    #expect(hybrid.v2InfoHash == V2InfoHash(hex: String(repeating: "b2", count: 32)))
    #expect(hybrid.alternateAnnounceHash == InfoHash(hex: String(repeating: "b2", count: 20)))
    let v2OnlyKey = try #require(InfoHash(hex: String(repeating: "c3", count: 20)))
    let v2Only = try #require(contents.torrents[v2OnlyKey])
    #expect(v2Only.v1InfoHash == nil && v2Only.alternateAnnounceHash == nil)
    #expect(v2Only.v2InfoHash == V2InfoHash(hex: String(repeating: "c3", count: 32)))
    #expect(contents.tokens.count == 1)
    #expect(contents.global == FactorOverrides(uploadPercent: 200))
    #expect(contents.clientRules[Array("-XL".utf8)]?.action == .deny)
  }

  @Test func renderThenParseIsTheIdentity() throws {
    let contents = try RegistryFile.parse(Self.sample, path: "sample.jsonl")
    let rendered = RegistryFile.render(contents)
    #expect(try RegistryFile.parse(rendered, path: "rendered") == contents)
    #expect(RegistryFile.render(try RegistryFile.parse(rendered, path: "rendered")) == rendered)
  }

  @Test(arguments: [
    (
      #"{"type":"user","user_id":"01","passkey":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}"#,
      "field user_id"
    ),
    (
      #"{"type":"user","user_id":"0123456789abcdef0123456789abcdef","passkey":"short"}"#,
      "field passkey"
    ),
    (#"{"type":"torrent","info_hash":"0102"}"#, "field info_hash"),
    (#"{"type":"torrent","state":"active"}"#, "a torrent needs info_hash, v2_info_hash or both"),
    (
      #"{"type":"torrent","info_hash":"0102030405060708090a0b0c0d0e0f1011121314","v2_info_hash":"0102"}"#,
      "field v2_info_hash: expected 64 hexadecimal characters"
    ),
    (
      #"{"type":"torrent","info_hash":"0102030405060708090a0b0c0d0e0f1011121314","v2_info_hash":"0102030405060708090a0b0c0d0e0f1011121314151617181920212223242526"}"#,
      "field v2_info_hash: starts with info_hash"
    ),
    (
      #"{"type":"torrent","info_hash":"0102030405060708090a0b0c0d0e0f1011121314","state":"gone"}"#,
      "field state"
    ),
    (
      #"{"type":"torrent","info_hash":"0102030405060708090a0b0c0d0e0f1011121314","dowload_factor":0}"#,
      "unknown field 'dowload_factor'"
    ),
    (#"{"type":"global","upload_factor":-5}"#, "field upload_factor"),
    (#"{"type":"global","upload_factor":1.5}"#, "field upload_factor"),
    (#"{"type":"global","upload_factor":"200"}"#, "field upload_factor"),
    (#"{"type":"client","peer_id_prefix":""}"#, "field peer_id_prefix"),
    (#"{"type":"group"}"#, "field type"),
    (#"{"type":"user""#, "not valid JSON"),
    (#"["user"]"#, "expected a JSON object"),
  ])
  func badLineIsNamedWithFileLineAndField(line: String, problem: String) {
    let text = "# header\n" + #"{"type":"global","download_factor":0}"# + "\n" + line + "\n"
    #expect {
      try RegistryFile.parse(text, path: "/srv/registry.jsonl")
    } throws: { error in
      guard let error = error as? RegistryFileError else { return false }
      return error.path == "/srv/registry.jsonl" && error.line == 3
        && error.problem.contains(problem)
        && error.description.hasPrefix("registry file /srv/registry.jsonl line 3: ")
    }
  }

  @Test func writeIsAtomicAndLoadReadsItBack() throws {
    let directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("privtrak-registry-\(UInt64.random(in: 0...UInt64.max))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("registry.jsonl").path
    let contents = try RegistryFile.parse(Self.sample, path: "sample")
    try RegistryFile.write(contents, to: path)
    #expect(try RegistryFile.load(path: path) == contents)
    #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
    #expect(throws: RegistryFileError.self) { try RegistryFile.load(path: path + ".missing") }
  }
}
