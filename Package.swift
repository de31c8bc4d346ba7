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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
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
        .executableTarget(
            name: "kvmscope",
            dependencies: [
                "KVMScope",
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
            dependencies: ["KVMScope", "kvmscope"],
            exclude: ["Fixtures"],   // read by path (#filePath), not compiled or bundled
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
