import BitTorrent
import DeltaModel
import Testing

@testable import DeltaWire

@Suite struct DeltaJSONTests {
  @Test func rendersOneLineWithHexIdsAndEventWord() {
    var delta = SampleDeltas.typical(sequence: 42)
    delta.event = .completed
    #expect(
      DeltaJSON.render(delta)
        == #"{"user_id":"5f4dcc3b5aa765d61d8327deb882cf99","info_hash":"c12fe1c06bba254a9dc9f519b335aa7c1367a88a","#
        + #""uploaded":52428800,"downloaded":0,"event":"completed","reported_at_ms":1764061200123,"#
        + #""seeding":true,"interval_s":1800,"reset":false,"instance":"8f3a2c1d5e6b7a90","sequence":42}"#
    )
  }

  @Test func optionalFieldsAppearOnlyWhenSet() {
    var delta = SampleDeltas.typical()
    delta.instance = 1
    delta.clientIP = IPAddress("203.0.113.7")
    delta.peerID = SampleDeltas.peerID
    let rendered = DeltaJSON.render(delta)
    #expect(rendered.contains(#""instance":"0000000000000001""#))
    #expect(
      rendered.hasSuffix(
        #","client_ip":"203.0.113.7","peer_id":"2d5452343036302d6b38686a307767656a366368"}"#))
  }

  @Test func stringsAreEscaped() {
    var utf8: [UInt8] = []
    JSONObjectWriter.appendString("a\"b\\c\nd\u{01}\té", to: &utf8)
    #expect(String(decoding: utf8, as: UTF8.self) == #""a\"b\\c\nd\u0001\té""#)
  }
}

extension Delta {
  /// Shorthand for tests.
  fileprivate var instance: UInt64 {
    get { origin.instance }
    set { origin.instance = newValue }
  }
}
