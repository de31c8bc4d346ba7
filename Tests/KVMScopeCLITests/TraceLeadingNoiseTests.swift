import Foundation
import Testing
import KVMScopeTestSupport

/// QEMU's stderr under libvirt starts with warnings before the first trace line: a trace whose
/// first 64 KiB hold no trace event is still read, and refused only if none is found at all.
/// (It used to be refused: "no QEMU trace events found" for a file holding 70 of them.)
@Suite struct TraceLeadingNoiseTests {
    @Test func traceAfterAThousandWarningLinesIsRead() throws {
        let warning = "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.vmx [bit 5]\n"
        let trace = try String(contentsOfFile: LabFixtures.path("write-eio", "trace.log"), encoding: .utf8)
        let input = String(repeating: warning, count: 1000) + trace
        let r = try CLIRunner.run(["trace", "-"], stdin: input, environment: ["NO_COLOR": "1"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.contains("1 failed"))
        let e = try CLIRunner.run(["explain", "--trace", "-"], stdin: input, environment: ["NO_COLOR": "1"])
        #expect(e.status == 1 && e.stdout.contains("VERDICT: the host's storage failed"))
        // Text with no trace line anywhere is still refused, after reading it.
        let none = try CLIRunner.run(["trace", "-"], stdin: String(repeating: warning, count: 1000))
        #expect(none.status == 2 && none.stderr.contains("no QEMU trace events found"))
    }
}
