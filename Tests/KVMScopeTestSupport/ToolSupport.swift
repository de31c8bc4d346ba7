import Foundation
import Testing

/// Real QEMU tools (Debian's qemu-utils) for side-by-side and client tests. Missing tools fail
/// the test with a clear message: CI installs them (lab/setup), so skipping would hide a gap.
public enum QemuTools {
    public static func path(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// The tool's path, or a recorded failure saying how to get it.
    public static func require(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        if let p = path(name) { return p }
        Issue.record("\(name) not found in PATH: install Debian's qemu-utils (apt-get install -y qemu-utils; CI does it via lab/setup)",
                     sourceLocation: sourceLocation)
        return nil
    }
}

/// QEMU 10's qemu-io, qemu-img and qemu-nbd from Debian's bookworm-backports, unpacked beside
/// the system's QEMU 7.2 by lab/setup-qemu-backports (CI runs it): the NBD peers that speak
/// NBD_OPT_EXTENDED_HEADERS, which QEMU 7.2 and libnbd 1.14 predate.
public enum QemuBackportsTools {
    public static var directory: String {
        (ProcessInfo.processInfo.environment["KVMSCOPE_QEMU_BACKPORTS"] ?? "/opt/kvmscope-peers/qemu-backports") + "/usr/bin"
    }

    public static func require(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        let p = directory + "/" + name
        if FileManager.default.isExecutableFile(atPath: p) { return p }
        Issue.record("\(p) not found: run lab/setup-qemu-backports (CI does) to unpack QEMU 10's qemu-utils from bookworm-backports",
                     sourceLocation: sourceLocation)
        return nil
    }
}

/// A temporary directory removed when the value goes away.
public final class TempDir {
    public let path: String
    /// `under`: another parent than $TMPDIR (a test that needs tmpfs uses /dev/shm).
    public init(under parent: String? = nil) {
        path = (parent.map { $0 + "/" } ?? NSTemporaryDirectory()) + "kvmscope-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    public func file(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    /// A raw image of `size` bytes; `fill` gives each 4 KiB block a distinct byte pattern.
    public func image(_ name: String, size: Int, fill: Bool = false) -> String {
        let p = path + "/" + name
        var bytes = [UInt8](repeating: 0, count: size)
        if fill { for i in 0..<size { bytes[i] = UInt8(truncatingIfNeeded: (i / 4096) &* 31 &+ i % 7) } }
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }
}
