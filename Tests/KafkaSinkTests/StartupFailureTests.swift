import Foundation
import Testing

@testable import KafkaSink

#if canImport(Glibc)
  import Glibc
#endif

@Suite struct StartupFailureTests {
  /// A loopback port nothing listens on: bound once by the kernel's choice, then released.
  private func unusedPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
        bind(descriptor, socketAddress, length) == 0
          && getsockname(descriptor, socketAddress, &length) == 0
      }
    }
    guard bound else { throw TestKafkaError("could not bind a probe socket") }
    return Int(UInt16(bigEndian: address.sin_port))
  }

  /// Starts a sink expected to fail; a sink that starts is closed and reported.
  private func startFailure(_ configuration: KafkaSinkConfiguration) async throws -> KafkaSinkError?
  {
    let sink: KafkaSink
    do {
      sink = try await KafkaSink.start(configuration: configuration)
    } catch {
      return error
    }
    try await sink.close()
    Issue.record("start succeeded for \(configuration.bootstrap)/\(configuration.topic)")
    return nil
  }

  @Test func unreachableBootstrapFailsWithinTheStartupTimeoutNamingTheSetting() async throws {
    let bootstrap = "127.0.0.1:\(try unusedPort())"
    var configuration = KafkaSinkConfiguration.test(
      topic: "privtrak-unreachable", bootstrap: bootstrap)
    configuration.startupTimeoutMilliseconds = 1_500
    let started = ContinuousClock.now
    guard let error = try await startFailure(configuration) else { return }
    let elapsed = ContinuousClock.now - started
    guard case .bootstrapUnreachable(let setting, let reported, _) = error else {
      Issue.record("expected bootstrapUnreachable, got \(error)")
      return
    }
    #expect(setting == "kafka.bootstrap")
    #expect(reported == bootstrap)
    #expect(error.description.contains("kafka.bootstrap") && error.description.contains(bootstrap))
    // Bounded: the start-up timeout plus teardown, not librdkafka's minutes of retries.
    #expect(elapsed < .seconds(10), "start-up took \(elapsed)")
  }

  @Test func unknownTopicFailsNamingTheSettingAndIsNotCreated() async throws {
    let topic = TestKafka.uniqueName("privtrak-missing")
    let started = ContinuousClock.now
    let error = try await startFailure(.test(topic: topic))
    #expect(error == .unknownTopic(setting: "kafka.topic", topic: topic))
    #expect(
      error?.description.contains("kafka.topic") == true
        && error?.description.contains(topic) == true)
    #expect(ContinuousClock.now - started < .seconds(15))
    #expect(
      try await TestKafka.partitionCount(of: topic) == 0,
      "the producer must not auto-create the topic")
  }

  @Test func autoCreationWhenAllowedCreatesTheTopic() async throws {
    let topic = TestKafka.uniqueName("privtrak-autocreate")
    var configuration = KafkaSinkConfiguration.test(topic: topic)
    configuration.allowTopicAutoCreation = true
    let sink = try await KafkaSink.start(configuration: configuration)
    var source = TestDeltaSource()
    try await sink.publish(source.batch(of: 2))
    try await sink.close()
    #expect(try await TestKafka.partitionCount(of: topic) > 0)
  }

  @Test func invalidPassthroughPropertyNamesItsSetting() async throws {
    var configuration = KafkaSinkConfiguration.test(topic: "privtrak-any")
    configuration.properties = ["socket.timeout.ms": "not-a-number"]
    await #expect {
      try await KafkaSink.start(configuration: configuration)
    } throws: { error in
      (error as? KafkaSinkError)?.setting == "kafka.properties.socket.timeout.ms"
    }
  }
}
