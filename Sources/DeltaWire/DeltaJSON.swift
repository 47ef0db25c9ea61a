import BitTorrent
import DeltaModel

/// One-line JSON rendering of a delta, for `privtrak tail --json`.
///
/// Field names are the proto field names, in field-number order. Ids are
/// lower-case hex (`instance` too, as 16 hex characters, since a random
/// 64-bit value does not survive JSON numbers in most parsers), `event` is a
/// word (`none`, `started`, `completed`, `stopped`, `expired`), `client_ip` is
/// textual. Absent optional fields are omitted; the credit factors, like on
/// the wire, are shown only when not 100 (absent = 100). Example:
///
///     {"user_id":"5f4d…","info_hash":"c12f…","uploaded":1048576,"downloaded":0,
///      "event":"none","reported_at_ms":1764061200123,"seeding":true,"interval_s":1800,
///      "reset":false,"instance":"8f3a2c1d5e6b7a90","sequence":42,
///      "upload_factor_percent":100,"download_factor_percent":0}
public enum DeltaJSON {
  /// The JSON object for `delta`, without a trailing newline.
  public static func render(_ delta: Delta) -> String {
    var writer = JSONObjectWriter()
    writer.field("user_id", string: delta.userID.hex)
    writer.field("info_hash", string: delta.infoHash.description)
    writer.field("uploaded", number: String(delta.uploaded))
    writer.field("downloaded", number: String(delta.downloaded))
    writer.field("event", string: delta.event.description)
    writer.field("reported_at_ms", number: String(delta.reportedAtMilliseconds))
    writer.field("seeding", number: delta.seeding ? "true" : "false")
    writer.field("interval_s", number: String(delta.intervalSeconds))
    writer.field("reset", number: delta.reset ? "true" : "false")
    writer.field("instance", string: hex(delta.origin.instance))
    writer.field("sequence", number: String(delta.origin.sequence))
    if let clientIP = delta.clientIP { writer.field("client_ip", string: clientIP.description) }
    if let peerID = delta.peerID { writer.field("peer_id", string: peerID.description) }
    if delta.factors.uploadPercent != 100 {
      writer.field("upload_factor_percent", number: String(delta.factors.uploadPercent))
    }
    if delta.factors.downloadPercent != 100 {
      writer.field("download_factor_percent", number: String(delta.factors.downloadPercent))
    }
    return writer.finish()
  }

  /// 16 lower-case hex characters, big-endian.
  static func hex(_ value: UInt64) -> String {
    Hex.encode((0..<8).map { UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * $0)) })
  }
}

/// Builds one JSON object as UTF-8, escaping every string it is given.
struct JSONObjectWriter {
  private var utf8: [UInt8] = [UInt8(ascii: "{")]

  /// Adds `"name":"value"` with `value` escaped.
  mutating func field(_ name: String, string value: String) {
    key(name)
    Self.appendString(value, to: &utf8)
  }

  /// Adds `"name":literal`; `literal` must already be a JSON number or literal.
  mutating func field(_ name: String, number literal: String) {
    key(name)
    utf8.append(contentsOf: literal.utf8)
  }

  /// Closes the object and returns its text.
  mutating func finish() -> String {
    utf8.append(UInt8(ascii: "}"))
    return String(decoding: utf8, as: UTF8.self)
  }

  private mutating func key(_ name: String) {
    if utf8.count > 1 { utf8.append(UInt8(ascii: ",")) }
    Self.appendString(name, to: &utf8)
    utf8.append(UInt8(ascii: ":"))
  }

  /// Appends `text` as a quoted JSON string (RFC 8259 escapes; other
  /// characters pass through as UTF-8).
  static func appendString(_ text: String, to utf8: inout [UInt8]) {
    let hexDigits = Array("0123456789abcdef".utf8)
    utf8.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\""): utf8.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
      case UInt8(ascii: "\\"): utf8.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
      case 0x0a: utf8.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
      case 0x0d: utf8.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
      case 0x09: utf8.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
      case 0x00..<0x20:
        utf8.append(contentsOf: Array("\\u00".utf8))
        utf8.append(hexDigits[Int(byte >> 4)])
        utf8.append(hexDigits[Int(byte & 0x0f)])
      default: utf8.append(byte)
      }
    }
    utf8.append(UInt8(ascii: "\""))
  }
}
