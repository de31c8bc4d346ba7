// swift-tools-version: 6.0
import PackageDescription

// kvmscope: why did my QEMU/KVM guest see I/O errors?
//
// Shape of the code (see README "Architecture"):
//   KVMScope   — the library: Input (byte streams) → Readers (one per format) → Model (value types)
//                → Analyses (pure, streaming) → Renderers (text, JSON, SVG); Live sources at the edge.
//   kvmscope   — the thin CLI: arguments in, one library call, output.
//   kvmscope-bench — benchmarks (`swift run -c release kvmscope-bench`), never timed assertions in tests.
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
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        .target(
            name: "KVMScope",
            dependencies: [
                .product(name: "Collections", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // The NBD server: SwiftNIO codecs + handler over KVMScope's BlockBackend. A separate
        // target so that the main library (readers, analyses) stays free of NIO.
        .target(
            name: "KVMScopeNBD",
            dependencies: [
                "KVMScope",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "kvmscope",
            dependencies: [
                "KVMScope",
                "KVMScopeNBD",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "kvmscope-bench",
            dependencies: ["KVMScope"],
            path: "bench/Sources/kvmscope-bench",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "KVMScopeTests",
            dependencies: [
                "KVMScope", "KVMScopeNBD", "kvmscope",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            exclude: ["Fixtures"],   // read by path (#filePath), not compiled or bundled
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
