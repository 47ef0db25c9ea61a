// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
  .swiftLanguageMode(.v6)
]

let package = Package(
  name: "privtrak",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "privtrak", targets: ["privtrak"]),
    .library(name: "BitTorrent", targets: ["BitTorrent"]),
    .library(name: "Tracker", targets: ["Tracker"]),
    .library(name: "Frontends", targets: ["Frontends"]),
    .library(name: "DeltaModel", targets: ["DeltaModel"]),
    .library(name: "Accounting", targets: ["Accounting"]),
    .library(name: "DeltaWire", targets: ["DeltaWire"]),
    .library(name: "FileSink", targets: ["FileSink"]),
    .library(name: "KafkaSink", targets: ["KafkaSink"]),
    .library(name: "Registry", targets: ["Registry"]),
    .library(name: "RegistryKafka", targets: ["RegistryKafka"]),
    .library(name: "Ledger", targets: ["Ledger"]),
    // Shipped like NIOTestUtils: test doubles and bounded waits other packages' tests can reuse.
    .library(name: "PrivtrakTestSupport", targets: ["PrivtrakTestSupport"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
  ],
  targets: [
    .target(
      name: "BitTorrent",
      swiftSettings: strictSettings
    ),
    .target(
      name: "Tracker",
      dependencies: [
        "BitTorrent",
        .product(name: "OrderedCollections", package: "swift-collections"),
        .product(name: "Metrics", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    .target(
      name: "Frontends",
      dependencies: [
        "Tracker",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    // The delta model every producer and consumer of deltas shares: Delta,
    // DeltaBatch, DeltaSink. Wire code, sinks and readers depend on this, not
    // on the accounting middleware.
    .target(
      name: "DeltaModel",
      dependencies: ["BitTorrent"],
      swiftSettings: strictSettings
    ),
    .target(
      name: "Accounting",
      dependencies: [
        "Tracker",
        "DeltaModel",
        .product(name: "DequeModule", package: "swift-collections"),
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    .target(
      name: "DeltaWire",
      dependencies: [
        "BitTorrent",
        "DeltaModel",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: strictSettings
    ),
    .target(
      name: "FileSink",
      dependencies: [
        "BitTorrent",
        "DeltaModel",
        "DeltaWire",
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strictSettings
    ),
    .systemLibrary(
      name: "CRdKafka",
      pkgConfig: "rdkafka",
      providers: [.apt(["librdkafka-dev"])]
    ),
    .target(
      name: "KafkaSink",
      dependencies: [
        "DeltaModel",
        "DeltaWire",
        "CRdKafka",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    // The site registry and the approval pre-hook; the file source. No
    // Kafka client: the Kafka source and publisher are RegistryKafka.
    .target(
      name: "Registry",
      dependencies: [
        "BitTorrent", "Tracker", "DeltaWire",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "Metrics", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    .target(
      name: "RegistryKafka",
      dependencies: [
        "Registry", "KafkaSink", "CRdKafka",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    // The ledger: the delta topic into PostgreSQL exactly once. Its own
    // module because it alone needs a PostgreSQL client.
    .target(
      name: "Ledger",
      dependencies: [
        "DeltaModel", "DeltaWire", "KafkaSink", "BitTorrent",
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    .target(
      name: "PrivtrakService",
      dependencies: [
        "BitTorrent", "Tracker", "Frontends", "DeltaModel", "Accounting", "DeltaWire", "FileSink",
        "KafkaSink", "Registry", "RegistryKafka",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ],
      swiftSettings: strictSettings
    ),
    .executableTarget(
      name: "privtrak",
      dependencies: [
        "PrivtrakService", "FileSink", "KafkaSink", "DeltaWire", "DeltaModel", "Accounting",
        "BitTorrent", "Registry", "RegistryKafka", "Ledger",
        "LoadGenerator",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "SystemPackage", package: "swift-system"),
      ],
      // main.swift holds the @main type; with more than one source file SwiftPM
      // would otherwise compile main.swift as top-level code.
      swiftSettings: strictSettings + [.unsafeFlags(["-parse-as-library"])]
    ),
    .target(
      name: "LoadGenerator",
      dependencies: [
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Histogram", package: "hdrhistogram-swift"),
      ],
      swiftSettings: strictSettings
    ),
    .executableTarget(
      name: "KafkaSinkBench",
      dependencies: [
        "KafkaSink", "DeltaModel", "DeltaWire", "BitTorrent",
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Benchmarks/KafkaSinkBench",
      swiftSettings: strictSettings
    ),
    .executableTarget(
      name: "AccountingBench",
      dependencies: ["Accounting", "DeltaModel"],
      path: "Benchmarks/AccountingBench",
      exclude: ["Support"],
      swiftSettings: strictSettings
    ),
    .executableTarget(
      name: "RegistryBench",
      dependencies: ["Registry", "BitTorrent", "Tracker"],
      path: "Benchmarks/RegistryBench",
      swiftSettings: strictSettings
    ),
    .target(
      name: "PrivtrakTestSupport",
      dependencies: ["Tracker"],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "BitTorrentTests", dependencies: ["BitTorrent"], swiftSettings: strictSettings),
    .testTarget(
      name: "TrackerTests", dependencies: ["Tracker", "PrivtrakTestSupport"],
      swiftSettings: strictSettings),
    .testTarget(
      name: "FrontendsTests",
      dependencies: [
        "Frontends", "Tracker", "BitTorrent", "PrivtrakTestSupport", "Accounting", "DeltaModel",
        "Registry",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "AccountingTests",
      dependencies: [
        "Accounting", "DeltaModel", "Tracker", "BitTorrent", "PrivtrakTestSupport",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "MetricsTestKit", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "DeltaWireTests",
      dependencies: ["DeltaWire", "DeltaModel", "BitTorrent", "PrivtrakTestSupport"],
      resources: [],
      swiftSettings: strictSettings),
    .testTarget(
      name: "FileSinkTests", dependencies: ["FileSink", "DeltaModel", "PrivtrakTestSupport"],
      swiftSettings: strictSettings),
    .testTarget(
      name: "KafkaSinkTests",
      dependencies: [
        "KafkaSink", "DeltaModel", "DeltaWire", "Accounting", "Tracker", "BitTorrent",
        "PrivtrakTestSupport",
      ],
      swiftSettings: strictSettings),
    .testTarget(
      name: "PrivtrakServiceTests",
      dependencies: [
        "PrivtrakService", "PrivtrakTestSupport", "BitTorrent",
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "RegistryTests",
      dependencies: [
        "Registry", "RegistryKafka", "Tracker", "BitTorrent", "DeltaWire", "Frontends",
        "Accounting",
        "DeltaModel", "KafkaSink", "PrivtrakTestSupport",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "MetricsTestKit", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "LedgerTests",
      dependencies: [
        "Ledger", "DeltaModel", "DeltaWire", "KafkaSink", "BitTorrent", "PrivtrakTestSupport",
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "MetricsTestKit", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "LoadGeneratorTests",
      dependencies: [
        "LoadGenerator", "Frontends", "Tracker", "Accounting", "DeltaModel", "BitTorrent",
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strictSettings
    ),
  ]
)
