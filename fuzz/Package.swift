// swift-tools-version: 6.0
import PackageDescription

// libFuzzer targets for every kvmscope reader and the NBD server, one executable each.
// A package of its own so that `swift build` / `swift test` of the root package never see them.
// Build and run with bench/fuzz (it passes the sanitizer flags:
//   swift build -c release --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library).
let targets = [
    "guest-log", "trace-log", "trace-stap", "simpletrace", "qmp-raw", "qmp-virsh", "exits",
    "drops-text", "ring-pages", "netdm", "blkdebug", "decompress", "host-log", "qemu-cmdline", "host-mounts",
    "qmp-monitor", "capture", "trace-dat", "perf-data",
]
let nbdTargets = ["nbd-handshake", "nbd-requests"]

let v5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "kvmscope-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "kvmscope", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        .target(name: "FuzzSupport",
                dependencies: [.product(name: "KVMScope", package: "kvmscope")],
                swiftSettings: v5),
        .target(name: "FuzzNBD",
                dependencies: [
                    .product(name: "KVMScope", package: "kvmscope"),
                    .product(name: "KVMScopeNBD", package: "kvmscope"),
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOEmbedded", package: "swift-nio"),
                ],
                swiftSettings: v5),
    ]
    + targets.map { .executableTarget(name: "fuzz-\($0)", dependencies: ["FuzzSupport"], swiftSettings: v5) }
    + nbdTargets.map { .executableTarget(name: "fuzz-\($0)", dependencies: ["FuzzNBD"], swiftSettings: v5) }
)
