import NIOCore

#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// How many event-loop threads serve the frontends.
///
/// One per CPU the process may actually run on: NIO's default counts the
/// machine's CPUs (and cgroup quotas) but not the affinity mask, so a
/// tracker pinned with `taskset` or a cpuset would run more loops than
/// cores, and every HTTP connection accepted on one loop and served on
/// another would cost a context switch.
public enum EventLoopThreads {
  /// `configured` when positive, otherwise ``available``.
  public static func resolve(configured: Int) -> Int {
    configured > 0 ? configured : available
  }

  /// CPUs in this process's affinity mask, bounded by NIO's count (which
  /// honours cgroup CPU quotas); at least 1.
  public static var available: Int {
    max(1, min(System.coreCount, affinityCount ?? System.coreCount))
  }

  /// Bits of `Cpus_allowed` in `/proc/self/status` (the affinity mask;
  /// `sched_getaffinity` is not visible to Swift without `_GNU_SOURCE`).
  private static var affinityCount: Int? {
    #if os(Linux)
      guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
      else { return nil }
      let mask = line.dropFirst("Cpus_allowed:".count)
      var count = 0
      for character in mask where character != "," && character != " " && character != "\t" {
        guard let nibble = character.hexDigitValue else { return nil }
        count += nibble.nonzeroBitCount
      }
      return count > 0 ? count : nil
    #else
      return nil
    #endif
  }
}
