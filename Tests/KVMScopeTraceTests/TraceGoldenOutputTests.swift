import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTrace

/// `kvmscope trace`'s output on every lab capture, byte for byte as the readers made it before
/// they were rewritten for speed (issue 19): the `--json` report with the bundled definitions
/// and with installed-style definitions (Tests/Fixtures/trace/lab.trace-events, the captures'
/// events from QEMU 7.2's trace-events-all), and the `--events-only --json` dump of every
/// event. The golden files were written by this test (KVMSCOPE_RECORD_GOLDEN=1) on main
/// 8d64d68, before any reader change; any field that changes, appears or disappears fails.
@Suite struct TraceGoldenOutputTests {
    static let fixtures = TraceTestData.repoRoot.appendingPathComponent("Tests/Fixtures/trace")
    static let golden = fixtures.appendingPathComponent("golden")
    static var recording: Bool { ProcessInfo.processInfo.environment["KVMSCOPE_RECORD_GOLDEN"] == "1" }

    /// Every lab scenario that has a QEMU trace, plus the simpletrace fixture.
    static var inputs: [String] {
        let dir = TraceTestData.repoRoot.appendingPathComponent("lab/scenarios")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().filter {
            FileManager.default.fileExists(atPath: dir.appendingPathComponent("\($0)/trace.log").path)
        }.map { "lab/scenarios/\($0)/trace.log" } + ["Tests/Fixtures/trace/simpletrace-v4.bin"]
    }

    static func bytes(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: TraceTestData.repoRoot.appendingPathComponent(relative)))
    }

    /// The definitions as `trace` loads them when QEMU is installed: a trace-events file, then
    /// the bundled set (origin names fixed so the report's `definitions` do not hold paths).
    static func installedStyleCatalog(for input: String) throws -> TraceEventCatalog {
        let file = input.hasSuffix(".bin") ? "Tests/Fixtures/trace/simpletrace-v4.trace-events"
                                           : "Tests/Fixtures/trace/lab.trace-events"
        let text = String(decoding: try bytes(file), as: UTF8.self)
        return TraceEventCatalog(sources: [(text, file), (BundledTraceEvents.text, BundledTraceEvents.origin)])
    }

    /// The golden file's name for an input and a variant.
    static func goldenURL(_ input: String, _ variant: String) -> URL {
        let stem = input.replacingOccurrences(of: "lab/scenarios/", with: "")
            .replacingOccurrences(of: "Tests/Fixtures/trace/", with: "")
            .replacingOccurrences(of: "/", with: "-")
        return golden.appendingPathComponent("\(stem).\(variant)")
    }

    static func check(_ output: String, _ input: String, _ variant: String) throws {
        let url = goldenURL(input, variant)
        if recording {
            try FileManager.default.createDirectory(at: golden, withIntermediateDirectories: true)
            try Data(output.utf8).write(to: url)
            return
        }
        let expected = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        if output == expected { return }
        // Name the first line that differs: a field changed, appeared or disappeared.
        let got = output.split(separator: "\n", omittingEmptySubsequences: false)
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let i = (0..<min(got.count, want.count)).first { got[$0] != want[$0] } ?? min(got.count, want.count)
        Issue.record("""
            \(input) \(variant) differs from \(url.lastPathComponent) at line \(i + 1):
              golden: \(i < want.count ? String(want[i]) : "<end>")
              now:    \(i < got.count ? String(got[i]) : "<end>")
            """)
    }

    static func report(_ input: String, catalog: TraceEventCatalog) throws -> String {
        let report = try TraceSession.analyse(MemoryByteSource(try bytes(input), name: input), catalog: catalog)
        return try TraceReportRenderer.json(report)
    }

    @Test(arguments: inputs) func reportWithBundledDefinitions(input: String) throws {
        try Self.check(try Self.report(input, catalog: .bundled), input, "bundled.json")
    }

    @Test(arguments: inputs) func reportWithInstalledDefinitions(input: String) throws {
        try Self.check(try Self.report(input, catalog: try Self.installedStyleCatalog(for: input)), input, "installed.json")
    }

    /// Small reads (7 bytes) put every line across read boundaries: the same report.
    @Test(arguments: inputs) func reportFromSmallReads(input: String) throws {
        guard !Self.recording else { return }
        let stream = MemoryByteSource(try Self.bytes(input), name: input, maxChunk: 7)
        let report = try TraceSession.analyse(stream, catalog: try Self.installedStyleCatalog(for: input))
        try Self.check(try TraceReportRenderer.json(report), input, "installed.json")
    }

    @Test(arguments: inputs) func eventDump(input: String) throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("kvmscope-golden-\(getpid())-\(input.hashValue).jsonl").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        defer { unlink(path) }
        let out = BufferedOutput(fd: fd)
        let result = try TraceSession.dump(MemoryByteSource(try Self.bytes(input), name: input),
                                           catalog: try Self.installedStyleCatalog(for: input),
                                           style: .jsonLines, output: out)
        close(fd)
        var text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        text += "printed \(result.printed)\n"
        try Self.check(text, input, "events-only.jsonl")
    }
}
