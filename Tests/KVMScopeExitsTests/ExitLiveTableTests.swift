import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeExits

/// The live top view's table: rows per reason, vCPU and VM from kvm_exit/kvm_entry lines as
/// trace_pipe prints them (Linux 5.10+ format), rates over the refresh interval, sorting.
@Suite struct ExitLiveTableTests {
    /// An exit of `reason` on `vcpu` by thread `tid` at `t` s, its entry `ns` later.
    static func pair(_ tid: Int, _ vcpu: Int, _ reason: String, _ t: Double, _ ns: Int) -> [String] {
        let exit = String(format: "qemu-system-x86-%d [001] d.... %.6f: kvm_exit: vcpu %d reason %@ rip 0xffffffff8113b1f9 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000",
                          tid, t, vcpu, reason)
        let entry = String(format: "qemu-system-x86-%d [001] d.... %.6f: kvm_entry: vcpu %d, rip 0xffffffff8113b1f9", tid, t + Double(ns) / 1e9, vcpu)
        return [exit, entry]
    }

    static func feed(_ table: ExitLiveTable, _ lines: [String]) {
        for l in lines { Array(l.utf8).withUnsafeBufferPointer { table.consume(LineBytes($0)) } }
    }

    @Test func rowsPerReasonWithRatesAndPercentiles() {
        let t = ExitLiveTable(grouping: .reason, sort: .count)
        var lines: [String] = []
        for i in 0..<30 { lines += Self.pair(100, 0, "HLT", 1 + Double(i) * 0.01, 50_000) }
        for i in 0..<10 { lines += Self.pair(101, 1, "EPT_VIOLATION", 2 + Double(i) * 0.01, 2_000) }
        Self.feed(t, lines)
        let f1 = t.frame(elapsed: 1, interval: 1, lostEvents: 0)
        #expect(f1.exits == 40 && f1.rows.map(\.key) == ["HLT", "EPT_VIOLATION"])
        #expect(f1.rows[0].count == 30 && f1.rows[0].ratePerSecond == 30 && f1.rows[0].maxNs == 50_000)
        #expect(abs(f1.rows[0].timePercent - 30.0 * 50 / (30 * 50 + 10 * 2) * 100) < 0.01)
        // The next interval: 5 more HLT in 0.5 s → 10/s; EPT_VIOLATION's rate drops to 0.
        var more: [String] = []
        for i in 0..<5 { more += Self.pair(100, 0, "HLT", 3 + Double(i) * 0.01, 40_000) }
        Self.feed(t, more)
        let f2 = t.frame(elapsed: 1.5, interval: 0.5, lostEvents: 7)
        #expect(f2.rows[0].count == 35 && f2.rows[0].ratePerSecond == 10 && f2.rows[1].ratePerSecond == 0)
        #expect(f2.ratePerSecond == 10 && f2.lostEvents == 7)
    }

    @Test func rowsPerVCPUAndVMSortedAsAsked() {
        let names: [Int32: String] = [100: "web (pid 99)", 101: "web (pid 99)", 200: "db (pid 199)"]
        let t = ExitLiveTable(grouping: .vm, sort: .max, vmName: { names[$0] ?? "pid \($0)" })
        var lines: [String] = []
        for i in 0..<20 { lines += Self.pair(100, 0, "HLT", 1 + Double(i) * 0.01, 1_000) }
        for i in 0..<5 { lines += Self.pair(101, 1, "HLT", 1.5 + Double(i) * 0.01, 1_000) }
        lines += Self.pair(200, 0, "MSR_WRITE", 2, 900_000)
        Self.feed(t, lines)
        let f = t.frame(elapsed: 1, interval: 1, lostEvents: 0)
        #expect(f.rows.map(\.key) == ["db (pid 199)", "web (pid 99)"])   // by max: db's one slow exit first
        #expect(f.rows.map(\.count) == [1, 25])
        let byVCPU = ExitLiveTable(grouping: .vcpu, sort: .count, rowLimit: 1)
        Self.feed(byVCPU, lines)
        let v = byVCPU.frame(elapsed: 1, interval: 1, lostEvents: 0)
        #expect(v.rows.map(\.key) == ["vcpu 0"] && v.rows[0].count == 21 && v.rowsNotShown == 1)
    }

    /// Entries whose exit the kernel filtered out (another reason) are counted apart, never paired.
    @Test func entriesWithoutTheirExitAreNotExits() {
        let t = ExitLiveTable(grouping: .reason, sort: .count)
        Self.feed(t, ["qemu-system-x86-100 [001] d.... 1.000000: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9",
                      "qemu-system-x86-100 [001] d.... 1.000100: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9"] + Self.pair(100, 0, "HLT", 2, 10))
        let f = t.frame(elapsed: 1, interval: 1, lostEvents: 0)
        #expect(f.exits == 1 && f.entriesWithoutExit == 2)
        #expect(ExitLiveRenderer.text(f, header: "h").contains("2 entries without their exit"))
    }

    @Test func kernelFilterForReasonNames() throws {
        #expect(try KVMExitLiveSession.reasonFilter([]) == nil)
        #expect(try KVMExitLiveSession.reasonFilter(["hlt"]) == "(isa == 1 && exit_reason == 12) || (isa == 2 && exit_reason == 120)")
        #expect(try KVMExitLiveSession.reasonFilter(["EPT_VIOLATION", "npf"]) == "(isa == 1 && exit_reason == 48) || (isa == 2 && exit_reason == 1024)")
        #expect(throws: ExitLiveError.unknownReason("FOO")) { try KVMExitLiveSession.reasonFilter(["FOO"]) }
    }

    @Test func linesSplitAcrossReadsAndOverlongOnes() {
        var lines = IncrementalLines(limit: 16)
        var got: [String] = []
        let text = Array("abc\ndef".utf8), rest = Array("gh\n\(String(repeating: "x", count: 40))\nend\n".utf8)
        lines.feed(text[...]) { got.append($0.string) }
        lines.feed(rest[...]) { got.append($0.string) }
        #expect(got == ["abc", "defgh", "end"])
    }

    @Test func qemuNamesFromItsCommandLine() {
        #expect(ExitLiveProcessNames.qemuName("guest=web01,debug-threads=on") == "web01")
        #expect(ExitLiveProcessNames.qemuName("db") == "db")
        #expect(ExitLiveProcessNames.qemuName("debug-threads=on") == nil)
        // This process is not QEMU: named by its comm and pid.
        let me = ExitLiveProcessNames.name(thread: getpid(), procRoot: "/proc")
        #expect(me.hasSuffix("(pid \(getpid()))"))
    }

    /// The real tracefs here: KVM emits no kvm_exit (TCG guests), so each frame says so; the
    /// frame per refresh, as JSON Lines (the instance's removal is TracefsRecorderTests').
    @Test func liveOnTheRealTracefs() throws {
        guard RealTracefs.usable(for: "exits --live") else { return }
        let r = try CLIRunner.run(["exits", "--live", "--duration", "2s", "--refresh", "1s", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let frames = r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(frames.count >= 2 && frames.allSatisfy { $0["type"] as? String == "exitsFrame" })
        #expect((frames.last?["note"] as? String)?.contains("no KVM") == true)
    }

    @Test func usageErrors() throws {
        for (args, message) in [(["--live", "--by", "host"], "--by must be reason, vcpu or vm"),
                                (["--live", "--sort", "p50"], "--sort must be"),
                                (["--live", "--reason", "FOO"], "no exit reason 'FOO'"),
                                (["--live", "trace.txt"], "not with a FILE")] {
            let r = try CLIRunner.run(["exits"] + args)
            #expect(r.status == 2 && r.stderr.contains(message), "\(args): \(r.stderr)")
        }
    }
}
