import CRdKafka

/// A librdkafka release, as `rd_kafka_version()` reports it (`0xMMmmrrpp`).
public struct LibrdkafkaVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
  /// Major version.
  public var major: Int
  /// Minor version.
  public var minor: Int
  /// Revision (patch) version.
  public var revision: Int

  /// Creates a version from its parts.
  public init(major: Int, minor: Int, revision: Int) {
    self.major = major
    self.minor = minor
    self.revision = revision
  }

  /// Decodes `rd_kafka_version()`'s hex encoding, e.g. `0x020200ff` is 2.2.0
  /// (the low byte is the pre-release id, 0xff for a final release).
  public init(packed: Int32) {
    let bits = UInt32(bitPattern: packed)
    self.init(
      major: Int(bits >> 24 & 0xff), minor: Int(bits >> 16 & 0xff), revision: Int(bits >> 8 & 0xff))
  }

  /// The oldest release that talks to every broker privtrak supports.
  /// Before it, librdkafka's shared tag-skipping code skipped one byte too
  /// few (librdkafka #4278): "Read underflow" on the ApiVersions reply of
  /// brokers that send several tagged fields (Tansu among them).
  public static let minimumSupported = LibrdkafkaVersion(major: 2, minor: 2, revision: 0)
  /// Releases before this one lack idempotent-producer fixes.
  public static let recommended = LibrdkafkaVersion(major: 2, minor: 5, revision: 0)

  /// The library loaded at run time (which may differ from the headers the
  /// build used: `LD_LIBRARY_PATH` can put another `librdkafka.so.1` first).
  public static var runtime: LibrdkafkaVersion { LibrdkafkaVersion(packed: rd_kafka_version()) }

  public var description: String { "\(major).\(minor).\(revision)" }

  public static func < (lhs: LibrdkafkaVersion, rhs: LibrdkafkaVersion) -> Bool {
    (lhs.major, lhs.minor, lhs.revision) < (rhs.major, rhs.minor, rhs.revision)
  }
}

/// Whether a librdkafka release may be used.
public enum LibrdkafkaVersionAssessment: Sendable, Equatable {
  /// Recent enough.
  case supported
  /// Usable, but older than recommended; the message says why and how to upgrade.
  case supportedWithWarning(String)
  /// Too old; the message says why and how to fix it.
  case unsupported(String)

  /// Assesses `version` against `LibrdkafkaVersion.minimumSupported` and `.recommended`.
  public init(_ version: LibrdkafkaVersion) {
    if version < LibrdkafkaVersion.minimumSupported {
      self = .unsupported(
        "librdkafka \(version) is too old: privtrak needs librdkafka >= \(LibrdkafkaVersion.minimumSupported). "
          + "Before 2.2.0 librdkafka skips tagged protocol fields one byte short (librdkafka #4278) and fails "
          + "with \"Read underflow\" on the ApiVersions reply of brokers that send several tagged fields "
          + "(Tansu among them; Debian 12 ships 2.0.2). Fix: run `scripts/setup` and `. scripts/env.sh` "
          + "(puts a newer librdkafka.so.1 first on LD_LIBRARY_PATH), or install librdkafka >= 2.2 "
          + "(>= \(LibrdkafkaVersion.recommended) recommended).")
    } else if version < LibrdkafkaVersion.recommended {
      self = .supportedWithWarning(
        "librdkafka \(version) is older than the recommended \(LibrdkafkaVersion.recommended), "
          + "which fixes idempotent-producer bugs; upgrade it (`scripts/setup` provides a newer runtime)."
      )
    } else {
      self = .supported
    }
  }
}
