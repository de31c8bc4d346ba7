import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope
#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite struct ExitsCommandTests {
    /// Three pairs built from the real captured lines (linux 5.10+, Intel).
    static let small = """
    # tracer: nop
     qemu-system-x86-8396    [001] d....  1404.389448: kvm_exit: vcpu 0 reason EXTERNAL_INTERRUPT rip 0xffffffff8113b1f9 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x800000fb error_code 0x00000000
     qemu-system-x86-8396    [001] d....  1404.389456: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9
     qemu-system-x86-8397    [000] d....  1404.389460: kvm_exit: vcpu 1 reason IO_INSTRUCTION rip 0xffffffff81060b7e info1 0x0000000003f80000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000
     qemu-system-x86-8397    [000] .....  1404.389461: kvm_pio: pio_write at 0x3f8 size 1 count 1 val 0x41
     qemu-system-x86-8397    [000] d....  1404.390500: kvm_entry: vcpu 1, rip 0xffffffff81060b80
     qemu-system-x86-8396    [001] d....  1404.391448: kvm_exit: vcpu 0 reason EXTERNAL_INTERRUPT rip 0xffffffff8113b1f9 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x800000fb error_code 0x00000000
     qemu-system-x86-8396    [001] d....  1404.391460: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9
    this line is garbage

    """

    static func write(_ text: String, name: String = "trace.txt") throws -> String {
        let path = NSTemporaryDirectory() + "kvmscope-exits-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// perf kvm stat report's layout (perf 6.4+: 40-column names), computed by hand from
    /// builtin-kvm.c's printf formats:
    /// EXTERNAL_INTERRUPT: 8 us and 12 us → mean 10, stddev 2.828, rse = 2.828/√2/10 = 20%.
    @Test func perfCompatIsPerfsLayout() throws {
        let path = try Self.write(Self.small)
        let r = try CLIRunner.run(["exits", "--perf-compat=6.8", path])
        #expect(r.status == 0)
        let expected = "\n\nAnalyze events for all VMs, all VCPUs:\n\n"
            + "                                 VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time \n\n"
            + "                      EXTERNAL_INTERRUPT          2    66.67%     1.89%      8.00us     12.00us     10.00us ( +-  20.00% )\n"
            + "                          IO_INSTRUCTION          1    33.33%    98.11%   1040.00us   1040.00us   1040.00us ( +-   0.00% )\n"
            + "\nTotal Samples:3, Total events handled time:1060.00us.\n\n"
        #expect(r.stdout == expected)
    }

    @Test func textReportHasTheThreeViews() throws {
        let path = try Self.write(Self.small)
        let r = try CLIRunner.run(["exits", "--top", "2", path], environment: ["NO_COLOR": "1"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("kvmscope exits: \(path) (ftrace, Intel VMX)\n  3 exit->entry pairs over 2.01ms of trace (1404.389448 to 1404.391460), 2 vCPUs\n  no events lost\n"))
        #expect(r.stdout.contains("skipped lines: 1 unrecognized"))
        #expect(r.stdout.contains("EXTERNAL_INTERRUPT              2    66.67%     1.89%    8.00us    8.00us    12.0us    12.0us    12.0us    12.0us    10.0us    2.83us    20.00%"))
        #expect(r.stdout.contains("vCPU 1 (tid 8397)"))
        #expect(r.stdout.contains("  1.   1.04ms  IO_INSTRUCTION  vCPU 1  qemu-system-x86-8397 cpu 0  exit 1404.389460 -> entry 1404.390500"))
        #expect(r.stdout.contains("         qemu-system-x86-8397    [000] .....  1404.389461: kvm_pio: pio_write at 0x3f8 size 1 count 1 val 0x41"))
        #expect(r.stdout.contains("Heatmap: all exits"))
        #expect(!r.stdout.contains("\u{1B}["), "no escape codes with NO_COLOR")
        #expect(r.stdout.allSatisfy { $0.isASCII || $0 == "→" } || !r.stdout.contains("█"))
        let colored = try CLIRunner.run(["exits", "--color", "always", path])
        #expect(colored.stdout.contains("\u{1B}[38;5;"))
        #expect(colored.stdout.contains("█"))
    }

    @Test func jsonKeys() throws {
        let path = try Self.write(Self.small)
        let r = try CLIRunner.run(["exits", "--json", "--reason-heatmaps", "1", path])
        #expect(r.status == 0)
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(Set(j.keys) == ["source", "format", "isa", "input", "pairing", "lost", "firstTimestampNs", "lastTimestampNs",
                                "vcpuFilter", "total", "byReason", "byVCPU", "byReasonAndVCPU", "slowest", "heatmap",
                                "reasonHeatmaps", "recording", "overThreshold", "schemaVersion"])
        #expect(j["format"] as? String == "ftrace" && j["isa"] as? String == "VMX")
        let total = j["total"] as! [String: Any]
        #expect(Set(total.keys) == ["count", "samplesPercent", "timePercent", "totalNs", "minNs", "maxNs", "meanNs", "stddevNs",
                                    "relativeStandardErrorPercent", "p50Ns", "p90Ns", "p99Ns", "p999Ns", "percentilePrecision"])
        #expect(total["count"] as? Int == 3 && total["maxNs"] as? Int == 1_040_000)
        let reasons = j["byReason"] as! [[String: Any]]
        #expect(reasons.map { $0["reason"] as? String } == ["EXTERNAL_INTERRUPT", "IO_INSTRUCTION"])
        let slowest = j["slowest"] as! [[String: Any]]
        #expect(slowest.first?["latencyNs"] as? Int == 1_040_000 && (slowest.first?["rip"] as? NSNumber)?.uint64Value == 0xffff_ffff_8106_0b7e)
        let pairing = j["pairing"] as! [String: Any]
        #expect(pairing["pairs"] as? Int == 3 && pairing["exitsWithoutEntryAtEnd"] as? Int == 0)
        let lines = j["input"] as! [String: Any]
        #expect(lines["unrecognizedLines"] as? Int == 1 && lines["otherEventLines"] as? Int == 1 && lines["kvmExitLines"] as? Int == 3)
        let heat = j["heatmap"] as! [String: Any]
        #expect(Set(heat.keys) == ["startNs", "bucketWidthNs", "firstRow", "rowCount", "counts", "resolutionNs"])
        #expect(heat["resolutionNs"] as? Int == 1000, "a µs text trace")
        #expect((j["reasonHeatmaps"] as? [[String: Any]])?.first?["reason"] as? String == "EXTERNAL_INTERRUPT")
    }

    @Test func stdinAndForcedFormat() throws {
        let r = try CLIRunner.run(["exits", "--json", "--format", "trace-cmd", "-"], stdin: Self.small)
        #expect(r.status == 0)
        #expect(r.stdout.contains("\"format\" : \"trace-cmd\""))
        #expect(r.stdout.contains("\"source\" : \"<stdin>\""))
    }

    @Test func svgIsWrittenAndWellFormed() throws {
        let path = try Self.write(ExitsTraceBuilder.makeTrace(.ftrace510, n: 500).0)
        let svg = path + ".svg"
        let r = try CLIRunner.run(["exits", "--svg", svg, "--reason-heatmaps", "2", "--no-heatmap", path])
        #expect(r.status == 0)
        #expect(r.stderr == "kvmscope: heat map written to \(svg) (3 panels)\n", "where the file went, said once")
        let data = try Data(contentsOf: URL(fileURLWithPath: svg))
        let parser = XMLParser(data: data)
        #expect(parser.parse(), "SVG must be well-formed XML")
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("KVM exit→entry latency over time"))
        #expect(text.contains("All exits (500)"))
        #expect(text.contains("exits per cell"))
        #expect(text.contains("time since first exit"))
    }

    @Test func lostEventsExitStatus1() throws {
        let path = try Self.write(Self.small + "CPU:1 [LOST 42 EVENTS]\n")
        let r = try CLIRunner.run(["exits", "--no-heatmap", path], environment: ["NO_COLOR": "1"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("events were lost: 42 events in 1 [LOST] markers"))
        #expect(r.stderr == "kvmscope: warning: events were lost while tracing: the counts are too low (enlarge --buffer-kb or trace fewer events)\n")
    }

    @Test func badInputs() throws {
        let missing = try CLIRunner.run(["exits", "/nonexistent/trace.txt"])
        #expect(missing.status == 1 && missing.stderr == "kvmscope: cannot open '/nonexistent/trace.txt': No such file or directory\n")
        var junk = [UInt8](repeating: 0, count: 70_000)
        for i in junk.indices { junk[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        let path = NSTemporaryDirectory() + "kvmscope-exits-junk-\(getpid())"
        FileManager.default.createFile(atPath: path, contents: Data(junk))
        let r = try CLIRunner.run(["exits", path])
        #expect(r.status == 2)   // input no reader recognises: refused like a bad flag
        #expect(r.stderr.hasPrefix("kvmscope: '\(path)': no kvm_exit or kvm_entry events in "))
        #expect(r.stderr.split(separator: "\n").count == 1)
        let cut = Self.small.range(of: "1404.389456: kvm_en")!.upperBound   // file cut mid-line
        let truncated = try Self.write(String(Self.small[..<cut]))
        let t = try CLIRunner.run(["exits", "--json", truncated])
        #expect(t.status == 0 && t.stdout.contains("\"exitsWithoutEntryAtEnd\" : 1"))
    }

    @Test func usageErrorsExit2() throws {
        for args in [["exits"], ["exits", "--record", "10s", "x.txt"], ["exits", "--pid", "1", "x.txt"],
                     ["exits", "--format", "nope", "x.txt"], ["exits", "--record", "soon"], ["exits", "--top", "-1", "x"],
                     ["exits", "--json", "--perf-compat", "x"]] {
            let r = try CLIRunner.run(args)
            #expect(r.status == 2, "\(args)")
            #expect(!r.stderr.isEmpty && !r.stderr.contains("Fatal error"), "\(args)")
        }
    }

    @Test func helpShowsExamples() throws {
        let r = try CLIRunner.run(["exits", "--help"])
        #expect(r.status == 0 && r.stdout.contains("kvmscope exits --record 10s --pid"))
    }
}
