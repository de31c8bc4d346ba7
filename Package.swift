// swift-tools-version: 6.0
import PackageDescription

// kvmscope: why did my QEMU/KVM guest see I/O errors?
//
// One target per domain over a small core; the compiler holds the boundaries (README
// "Architecture" has the map, .ci/check-target-graph checks it):
//   KVMScopeCore      byte streams (gzip/xz/zstd decompressed), line splitting, errno table, output helpers, latency accumulator
//   CZlib CLzma CZstd the system decompression libraries, for the core's byte streams
//   KVMScopeTracefs   tracefs instances, trace_pipe, tracepoint formats, ring-buffer pages, kallsyms
//   KVMScopeGuestLog  guest kernel logs          KVMScopeTrace   QEMU trace events
//   KVMScopeQMP       QMP events                 KVMScopeExits   kvm_exit/kvm_entry
//   KVMScopeDrops     skb:kfree_skb, NET_DM      KVMScopeFaults  blkdebug rules, block backends, qemu-io
//   KVMScopeHost      the host's kernel log (host block devices, SAN/NFS/Ceph paths, host filesystems)
//   KVMScopeLive      live VM access: QMP monitors, `record` (attach, trace, restore)
//   CLibvirt          the system libvirt client library    KVMScopeLibvirt  a libvirt domain as a QMP monitor
//   KVMScopeExplain   correlation of guest log, trace and QMP into a verdict
//   KVMScopeExamples  the bundled lab captures   KVMScopeNBD     the NBD server (SwiftNIO)
//   KVMScope          umbrella: re-exports the domains, composes the format registry
//   kvmscope          the CLI: parses arguments, calls one domain, prints
// Swift 6 language mode everywhere but the tests (and their support target), which share mutable state with their
// servers' callbacks the way XCTest-era code did (being rewritten with the per-domain split).
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]
let swift5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "kvmscope",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "kvmscope", targets: ["kvmscope"]),
        .library(name: "KVMScope", targets: ["KVMScope"]),
        .library(name: "KVMScopeNBD", targets: ["KVMScopeNBD"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // `nbd serve --tls`: NBD_OPT_STARTTLS with X.509 certificates (BoringSSL under NIO).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        // `watch`: the Prometheus text format (swift-prometheus's registry; swift-metrics' CoreMetrics comes with it).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `watch --config FILE`: the TOML configuration file (toml++ under a Swift API).
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
    ],
    targets: [
        // The system's decompressors, for gzip/xz/zstd-compressed inputs (rotated logs): the
        // libraries every distribution ships, not a hand-written inflate.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(name: "CLzma", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"]), .brew(["xz"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        // `kvmscope --version` names the git commit: the plugin generates it at build time (Plugins/GitCommit).
        .plugin(name: "GitCommit", capability: .buildTool()),
        .target(name: "KVMScopeCore",
                dependencies: [.product(name: "Histogram", package: "hdrhistogram-swift"), "CZlib", "CLzma", "CZstd"],
                swiftSettings: swift6, plugins: ["GitCommit"]),
        .target(name: "KVMScopeTracefs", dependencies: ["KVMScopeCore"], swiftSettings: swift6),
        .target(name: "KVMScopeGuestLog", dependencies: ["KVMScopeCore"], swiftSettings: swift6),
        .target(name: "KVMScopeTrace", dependencies: ["KVMScopeCore"], swiftSettings: swift6),
        .target(name: "KVMScopeQMP", dependencies: ["KVMScopeCore"], swiftSettings: swift6),
        .target(name: "KVMScopeExits", dependencies: ["KVMScopeCore", "KVMScopeTracefs"], swiftSettings: swift6),
        .target(name: "KVMScopeDrops", dependencies: ["KVMScopeCore", "KVMScopeTracefs"], swiftSettings: swift6),
        .target(name: "KVMScopeFaults", dependencies: ["KVMScopeCore"], swiftSettings: swift6),
        .target(name: "KVMScopeHost", dependencies: ["KVMScopeCore", "KVMScopeGuestLog"], swiftSettings: swift6),
        .target(name: "KVMScopeExplain",
                dependencies: ["KVMScopeCore", "KVMScopeGuestLog", "KVMScopeTrace", "KVMScopeQMP", "KVMScopeHost"],
                swiftSettings: swift6),
        .target(name: "KVMScopeExamples", dependencies: ["KVMScopeCore"], swiftSettings: swift6),
        // Live VM access: QMP monitors, and `record` (trace events on, QEMU's log to a capture).
        .target(name: "KVMScopeLive",
                dependencies: ["KVMScopeCore", "KVMScopeTracefs", "KVMScopeTrace", "KVMScopeHost"],
                swiftSettings: swift6),
        // `record --domain`: a libvirt domain's QEMU monitor reached through libvirt's own API
        // (QMP passthrough and monitor events), never by taking libvirt's monitor socket.
        .systemLibrary(name: "CLibvirt", pkgConfig: "libvirt-qemu", providers: [.apt(["libvirt-dev"]), .brew(["libvirt"])]),
        .target(name: "KVMScopeLibvirt", dependencies: ["KVMScopeCore", "KVMScopeLive", "CLibvirt"], swiftSettings: swift6),
        // `watch`: every VM on a host as Prometheus metrics and a JSON Lines event log (QMP polling,
        // socket discovery, libvirt domains through KVMScopeLibvirt, the /metrics server on NIOHTTP1).
        .target(name: "KVMScopeWatch",
                dependencies: ["KVMScopeCore", "KVMScopeLive", "KVMScopeQMP", "KVMScopeLibvirt",
                               // --host-kernel (the host layer's readers) and --drops (the drops domain's live sources).
                               "KVMScopeHost", "KVMScopeTracefs", "KVMScopeDrops",
                               .product(name: "Prometheus", package: "swift-prometheus"),
                               .product(name: "TOMLKit", package: "TOMLKit"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio")],
                swiftSettings: swift6),
        .target(name: "KVMScope",
                dependencies: ["KVMScopeCore", "KVMScopeTracefs", "KVMScopeGuestLog", "KVMScopeTrace", "KVMScopeQMP",
                               "KVMScopeExits", "KVMScopeDrops", "KVMScopeFaults", "KVMScopeExplain", "KVMScopeExamples",
                               "KVMScopeHost", "KVMScopeLive"],
                swiftSettings: swift6),
        // The NBD server: SwiftNIO codecs + handler over the faults domain's block backends.
        .target(
            name: "KVMScopeNBD",
            dependencies: [
                "KVMScopeFaults",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swift6
        ),
        .executableTarget(
            name: "kvmscope",
            dependencies: [
                "KVMScope", "KVMScopeNBD", "KVMScopeExamples", "KVMScopeLibvirt", "KVMScopeWatch",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swift6
        ),
        .executableTarget(
            name: "kvmscope-bench",
            dependencies: ["KVMScope", "KVMScopeTestSupport"],
            path: "bench/Sources/kvmscope-bench",
            swiftSettings: swift6
        ),
        // Helpers shared by the test targets (running the CLI, fixtures, trace builders); a plain
        // target so every test target can depend on it.
        .target(
            name: "KVMScopeTestSupport",
            dependencies: ["KVMScopeCore", "KVMScopeTracefs", "KVMScopeGuestLog", "KVMScopeTrace", "KVMScopeDrops"],
            path: "Tests/KVMScopeTestSupport",
            swiftSettings: swift5
        ),
        // One test target per domain: each depends on its domain (testable) and the support
        // target; those that check format detection across domains also on the umbrella's
        // FormatRegistry. Targets whose tests also run the
        // CLI binary depend on `kvmscope`, which CLIRunner finds beside the test bundle.
        .testTarget(name: "KVMScopeCoreTests", dependencies: ["KVMScopeCore", "KVMScopeTestSupport"],
                    swiftSettings: swift5),
        .testTarget(name: "KVMScopeTracefsTests",
                    dependencies: ["KVMScopeTracefs", "KVMScopeDrops", "KVMScopeTestSupport"], swiftSettings: swift5),
        .testTarget(name: "KVMScopeGuestLogTests", dependencies: ["KVMScopeGuestLog", "KVMScope", "KVMScopeTestSupport"],
                    swiftSettings: swift5),
        .testTarget(name: "KVMScopeHostTests", dependencies: ["KVMScopeHost", "KVMScopeTestSupport"],
                    swiftSettings: swift5),
        .testTarget(name: "KVMScopeTraceTests", dependencies: ["KVMScopeTrace", "KVMScope", "KVMScopeTestSupport", "kvmscope"],
                    swiftSettings: swift5),
        .testTarget(name: "KVMScopeQMPTests", dependencies: ["KVMScopeQMP", "KVMScope", "KVMScopeTestSupport"],
                    swiftSettings: swift5),
        .testTarget(name: "KVMScopeExitsTests",
                    dependencies: ["KVMScopeExits", "KVMScopeTracefs", "KVMScopeTestSupport", "kvmscope"],
                    swiftSettings: swift5),
        .testTarget(name: "KVMScopeDropsTests",
                    dependencies: ["KVMScopeDrops", "KVMScopeTracefs", "KVMScope", "KVMScopeTestSupport"], swiftSettings: swift5),
        .testTarget(name: "KVMScopeFaultsTests", dependencies: ["KVMScopeFaults", "KVMScopeTestSupport"],
                    swiftSettings: swift5),
        .testTarget(
            name: "KVMScopeNBDTests",
            dependencies: [
                "KVMScopeNBD", "KVMScopeFaults", "KVMScopeTestSupport", "kvmscope",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                // A TLS client of its own for what no real client does (STARTTLS twice).
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swift5
        ),
        .testTarget(name: "KVMScopeLiveTests",
                    dependencies: ["KVMScopeLive", "KVMScope", "KVMScopeTestSupport", "kvmscope"], swiftSettings: swift5),
        .testTarget(name: "KVMScopeLibvirtTests",
                    dependencies: ["KVMScopeLibvirt", "KVMScopeLive", "KVMScopeTestSupport", "kvmscope"], swiftSettings: swift5),
        .testTarget(name: "KVMScopeWatchTests",
                    dependencies: ["KVMScopeWatch", "KVMScopeLive", "KVMScopeQMP", "KVMScopeLibvirt", "KVMScopeHost", "KVMScopeDrops", "KVMScopeTracefs",
                                   "KVMScopeTestSupport", "kvmscope"],
                    swiftSettings: swift5),
        .testTarget(name: "KVMScopeExplainTests",
                    dependencies: ["KVMScopeExplain", "KVMScope", "KVMScopeTestSupport", "kvmscope"], swiftSettings: swift5),
        // The tests that run the `kvmscope` binary as a user would (commands, JSON contract, live runs).
        // KVMScopeFaults directly: ImageSafetyCLITests probes QEMU's lock bytes with
        // QemuImageLock.testLock and JSONContractTests builds an InjectedFault, both internal.
        .testTarget(name: "KVMScopeCLITests",
                    dependencies: ["KVMScope", "KVMScopeFaults", "KVMScopeNBD", "KVMScopeWatch", "KVMScopeTestSupport", "kvmscope",
                                   .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOEmbedded", package: "swift-nio")],
                    swiftSettings: swift5),
    ]
)
