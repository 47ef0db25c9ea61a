import ArgumentParser
import Ledger
import Logging
import Metrics
import PrivtrakService
import Prometheus
import UnixSignals

extension Privtrak {
  /// `privtrak ledger`: the delta topic into PostgreSQL, exactly once.
  struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "ledger",
      abstract:
        "Apply the delta topic to PostgreSQL exactly once (user totals, per-torrent history, seed time, hit-and-run and cheat views).",
      discussion: """
        Flags override the file's ledger.* keys; PRIVTRAK_LEDGER_* environment variables override \
        the file too (the password: PRIVTRAK_LEDGER_PASSWORD, never logged). SIGTERM or SIGINT \
        lets the transaction in flight commit, then exits 0.
        """)

    @Option(name: .long, help: "YAML configuration file (its ledger.* and kafka.properties apply).")
    var config: String?

    @Option(
      name: .long, help: "The delta topic: kafka://HOST:PORT[,HOST:PORT]/TOPIC (ledger.from).")
    var from: String?

    @Option(
      name: .long, help: "The database: postgresql://USER[:PASSWORD]@HOST:PORT/DB (ledger.to).")
    var to: String?

    @Option(
      name: .long,
      help: "Admin listen address for /metrics, /healthz, /readyz, or 'off' (ledger.admin).")
    var admin: String?

    @Option(
      name: .long,
      help:
        "Split the partitions with the other ledgers of this Kafka consumer group (ledger.group; excludes ledger.partitions)."
    )
    var group: String?

    func run() async throws {
      var overrides: [String: String] = [:]
      if let from { overrides["PRIVTRAK_LEDGER_FROM"] = from }
      if let to { overrides["PRIVTRAK_LEDGER_TO"] = to }
      if let admin { overrides["PRIVTRAK_LEDGER_ADMIN"] = admin }
      if let group { overrides["PRIVTRAK_LEDGER_GROUP"] = group }
      let service: ServiceConfiguration
      do {
        service = try loadConfiguration(path: config, overriding: overrides)
      } catch let error as ConfigurationError {
        FileHandleStandardError.write(error.description)
        throw ExitCode(2)
      }
      let settings = service.ledger
      let file = config ?? "(built-in defaults)"
      guard let source = LedgerSource(parsing: settings.from) else {
        FileHandleStandardError.write(
          "configuration error in \(file): ledger.from: expected kafka://HOST:PORT[,HOST:PORT]/TOPIC, got '\(settings.from)'"
        )
        throw ExitCode(2)
      }
      guard var destination = LedgerDestination(parsing: settings.to) else {
        // The URL may hold a password: never echo it.
        FileHandleStandardError.write(
          "configuration error in \(file): ledger.to: expected postgresql://USER[:PASSWORD]@HOST:PORT/DB"
        )
        throw ExitCode(2)
      }
      if !settings.password.isEmpty { destination.password = settings.password }

      var logger = Logger(label: "privtrak.ledger")
      logger.logLevel = Logger.Level(rawValue: service.logLevel) ?? .info
      let registry = PrometheusCollectorRegistry()
      var configuration = LedgerConfiguration(
        source: source, destination: destination,
        partitions: settings.partitions.isEmpty ? nil : settings.partitions,
        group: settings.group.isEmpty ? nil : settings.group,
        maxBatchRecords: settings.maxBatchRecords, kafkaProperties: service.kafka.properties)
      configuration.applyTimeout = settings.applyTimeout
      let runner = LedgerRunner(
        configuration: configuration, logger: logger,
        metricsFactory: PrometheusMetricsFactory(registry: registry))
      var adminServer: AdminServer?
      if let listen = settings.adminListen {
        let readiness = Readiness {
          let status = runner.status
          if status.running { return [] }
          return [status.lastError.map { "not applying: \($0)" } ?? "starting"]
        }
        let server = AdminServer(
          host: listen.host, port: listen.port, registry: registry, readiness: readiness,
          logger: logger)
        let address = try await server.start()
        logger.info("ledger admin listening on \(address)")
        adminServer = server
      }
      let work = Task { try await runner.run() }
      let signals = Task {
        for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
          logger.info("ledger: \(signal): finishing the transaction in flight")
          work.cancel()
          break
        }
      }
      defer { signals.cancel() }
      do {
        try await work.value
      } catch let error as LedgerStoreError {
        await adminServer?.shutdown()
        FileHandleStandardError.write("privtrak ledger: \(error)")
        throw ExitCode(1)
      }
      await adminServer?.shutdown()
      let status = runner.status
      logger.info(
        "ledger stopped: \(status.applied) deltas applied, \(status.duplicates) duplicates skipped, \(status.rejected) records rejected, \(status.transactions) transactions"
      )
    }
  }
}
