import Foundation
import KVMScopeCore
import KVMScopeGuestLog

/// Shared helpers for the `kvmscope guest` tests.
public enum GuestFixtures {
    public static let root = LabFixtures.repoRoot

    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    public static func fixture(_ name: String) -> String { TestFixtures.path("guest/\(name)") }

    public static func lab(_ scenario: String) -> String { path("lab/scenarios/\(scenario)/console.log") }

    /// All events of a text, in order.
    public static func events(_ text: String, deduplicate: Bool = true) throws -> (events: [GuestLogEvent], stats: GuestLogInputStats) {
        var reader = GuestLogReader(deduplicate: deduplicate)
        var sink = GuestLogEventCollector()
        try reader.read(MemoryByteSource(text), into: &sink)
        return (sink.events, reader.stats)
    }

    public static func report(_ stream: ByteStream, detailLimit: Int = 10_000, rangeLimit: Int = 4096) throws -> GuestDiskReport {
        var reader = GuestLogReader()
        var analysis = GuestDiskAnalysis(detailLimit: detailLimit, rangeLimit: rangeLimit)
        try reader.read(stream, into: &analysis)
        return analysis.report(source: stream.name, input: reader.stats)
    }

    public static func report(_ text: String, detailLimit: Int = 10_000) throws -> GuestDiskReport {
        try report(MemoryByteSource(text), detailLimit: detailLimit)
    }

    public static func report(file: String) throws -> GuestDiskReport {
        try report(FileByteSource(path: file))
    }

    /// The single event a one-line text produces.
    public static func event(_ line: String) throws -> GuestLogEvent? {
        let r = try events(line + "\n")
        return r.events.count == 1 ? r.events[0] : nil
    }

    public static func block(_ line: String) throws -> BlockErrorEvent? {
        if case .blockError(let e)? = try event(line) { return e }
        return nil
    }

    public static func buffer(_ line: String) throws -> BufferErrorEvent? {
        if case .bufferError(let e)? = try event(line) { return e }
        return nil
    }

    public static func filesystem(_ line: String) throws -> FilesystemEvent? {
        if case .filesystem(let e)? = try event(line) { return e }
        return nil
    }

    public static func scsi(_ line: String) throws -> SCSIEvent? {
        if case .scsi(let e)? = try event(line) { return e }
        return nil
    }

    /// Parses one line's prefix.
    public static func prefix(_ text: String, previousWasKmsg: Bool = false) -> KernelLinePrefixParser.Result {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { KernelLinePrefixParser.parse(LineBytes($0), previousWasKmsg: previousWasKmsg) }
    }

    public static func device(_ report: GuestDiskReport, _ name: String) -> GuestDeviceReport? {
        report.devices.first { $0.name == name }
    }
}
