// swift-tools-version: 6.1
// libFuzzer harnesses for privtrak's parsers. A separate package so the main
// build never links libFuzzer; built by `scripts/fuzz` into `.build-fuzz`.
import PackageDescription

let settings: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  // The harness defines `LLVMFuzzerTestOneInput`; libFuzzer provides `main`.
  .unsafeFlags(["-parse-as-library"]),
]

let package = Package(
  name: "privtrak-fuzz",
  platforms: [.macOS(.v15)],
  dependencies: [
    .package(name: "privtrak", path: ".."),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
  ],
  targets: [
    .executableTarget(
      name: "BencodeFuzzer",
      dependencies: [.product(name: "BitTorrent", package: "privtrak")],
      swiftSettings: settings),
    .executableTarget(
      name: "HTTPRequestFuzzer",
      dependencies: [
        .product(name: "BitTorrent", package: "privtrak"),
        .product(name: "Frontends", package: "privtrak"),
        .product(name: "Tracker", package: "privtrak"),
      ],
      swiftSettings: settings),
    .executableTarget(
      name: "UDPPacketFuzzer",
      dependencies: [
        .product(name: "BitTorrent", package: "privtrak"),
        .product(name: "Frontends", package: "privtrak"),
        .product(name: "Tracker", package: "privtrak"),
        .product(name: "NIOCore", package: "swift-nio"),
      ],
      swiftSettings: settings),
  ]
)
