import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
@testable import KVMScopeExits

/// kvm_exit/kvm_entry from perf.data. The real captures (Fixtures/perf/kvm*.data.xz) hold the
/// kvm formats but no samples (this host's KVM emits no exits); the samples are SYNTHETIC,
/// written with those stored formats (PerfKVMSynthetic), and Fixtures/perf/
/// kvm-synthetic.perf-script.txt is what the real `perf script --ns` printed for that file.
@Suite struct PerfDataKVMTests {
    static func storedFormats(_ name: String) throws -> (exit: PerfTracepoint, entry: PerfTracepoint, arch: String?) {
        var reader = PerfDataReader()
        try reader.read(try FileByteSource(path: PerfFixtures.path("\(name).data.xz"))) { _ in }
        let events = try #require(reader.tracingData?.events.values)
        return (try #require(events.first { $0.fullName == "kvm:kvm_exit" }),
                try #require(events.first { $0.fullName == "kvm:kvm_entry" }), reader.arch)
    }

    static func syntheticFile() throws -> [UInt8] {
        let (exit, entry, _) = try storedFormats("kvm")
        let (writer, samples) = PerfKVMSynthetic.writer(exit: exit, entry: entry)
        return writer.write(samples)
    }

    /// The field mapping on the formats perf stored, from both captures (perf record and perf
    /// kvm stat record): every field the analysis reads is found, at the kernel's offsets.
    @Test(arguments: ["kvm", "kvm-stat"])
    func fieldMappingOnStoredFormats(name: String) throws {
        let (exit, entry, arch) = try Self.storedFormats(name)
        let m = try KVMPerfFieldMap.exit(exit.format, arch: arch)
        #expect(m.exitReason.offset == 8 && m.exitReason.size == 4)
        #expect(m.guestRIP.offset == 16 && m.guestRIP.size == 8)
        #expect(m.isa?.offset == 24)
        #expect(m.info1?.offset == 32 && m.info2?.offset == 40)
        #expect(m.intrInfo?.offset == 48 && m.errorCode?.offset == 52)
        #expect(m.vcpuID?.offset == 56)
        let e = try KVMPerfFieldMap.entry(entry.format, arch: arch)
        #expect(e.vcpuID.offset == 8 && e.rip?.offset == 16)
    }

    /// An arm64 kvm_exit (ret, esr_ec, vcpu_pc: arch/arm64/kvm/trace_arm.h) is refused by name.
    @Test func otherArchitectureKVMExitIsRefused() throws {
        let arm = try TracepointFormat.parse("""
        name: kvm_exit
        ID: 90
        format:
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

        \tfield:int ret;\toffset:8;\tsize:4;\tsigned:1;
        \tfield:unsigned int esr_ec;\toffset:12;\tsize:4;\tsigned:0;
        \tfield:unsigned long vcpu_pc;\toffset:16;\tsize:8;\tsigned:0;

        print fmt: "%s: HSR_EC: 0x%04x, PC: 0x%016lx", REC->ret
        """)
        #expect { try KVMPerfFieldMap.exit(arm, arch: "aarch64") } throws: { "\($0)".contains("aarch64") && "\($0)".contains("esr_ec") }
    }

    /// The committed synthetic file is exactly what the builder writes (so the perf script
    /// text committed with it is of this file).
    @Test func syntheticFileIsTheCommittedOne() throws {
        let bytes = try Self.syntheticFile()
        if let out = ProcessInfo.processInfo.environment["KVMSCOPE_WRITE_PERF_SYNTHETIC"] {
            try Data(bytes).write(to: URL(fileURLWithPath: out))
        }
        let committed = try PerfFixtures.data("kvm-synthetic")
        #expect(bytes == committed)
    }

    /// The binary path equals the text path (perf script's own output of the same file read
    /// by the text readers): every statistic, reason, vCPU and pairing count.
    @Test func binaryEqualsPerfScriptText() throws {
        var options = ExitAnalysisOptions()
        options.top = 5
        let binary = try KVMExitTraceReader.analyze(try FileByteSource(path: PerfFixtures.path("kvm-synthetic.data.xz")), options: options)
        let text = try KVMExitTraceReader.analyze(try FileByteSource(path: PerfFixtures.path("kvm-synthetic.perf-script.txt")), options: options)
        #expect(binary.format == "perf-data")
        #expect(text.format == "perf-script")
        #expect(binary.lines.kvmExit == 128 && binary.lines.kvmEntry == 128)
        #expect(binary.lines.kvmExit == text.lines.kvmExit && binary.lines.kvmEntry == text.lines.kvmEntry)
        #expect(binary.pairing == text.pairing)
        #expect(binary.total == text.total)
        #expect(try json(binary.byReason) == json(text.byReason))
        #expect(try json(binary.byVCPU) == json(text.byVCPU))
        #expect(try json(binary.byReasonAndVCPU) == json(text.byReasonAndVCPU))
        #expect(binary.isa == text.isa)
        #expect(binary.firstTimestampNs == text.firstTimestampNs && binary.lastTimestampNs == text.lastTimestampNs)
        let strip = { (s: [SlowExit]) in s.map { e -> SlowExit in var c = e; c.context = []; return c } }
        #expect(strip(binary.slowest) == strip(text.slowest))
        // Same file streamed (stdin, a pipe): same report.
        let piped = try KVMExitTraceReader.analyze(MemoryByteSource(try PerfFixtures.data("kvm-synthetic"), maxChunk: 1000), options: options)
        #expect(try json(piped.byReason) == json(binary.byReason) && piped.pairing == binary.pairing)
    }

    /// The slow exits' context lines, made from the samples only when shown, are the samples
    /// perf script prints around them: line for line the same thread, CPU, time, event and RIP,
    /// with the same lines marked.
    @Test func slowExitContextIsTheSamplesAroundIt() throws {
        var options = ExitAnalysisOptions()
        options.top = 5
        options.contextLines = 3
        let binary = try KVMExitTraceReader.analyze(try FileByteSource(path: PerfFixtures.path("kvm-synthetic.data.xz")), options: options)
        let text = try KVMExitTraceReader.analyze(try FileByteSource(path: PerfFixtures.path("kvm-synthetic.perf-script.txt")), options: options)
        #expect(binary.slowest.count == 5)
        for (b, t) in zip(binary.slowest, text.slowest) {
            #expect(b.comm == t.comm && b.comm == "CPU \(b.vcpu)/KVM")
            #expect(b.context.count == t.context.count && b.context.count >= 3)
            #expect(b.context.map { Self.sampleKey($0) } == t.context.map { Self.sampleKey($0) })
            #expect(b.context.allSatisfy { Self.sampleKey($0) != nil })
        }
    }

    /// `--than` with `--top 0` still shows each exit's context (the lines are kept for it).
    @Test func thresholdListHasContextWithoutTop() throws {
        var options = ExitAnalysisOptions()
        options.top = 0
        options.thresholdNs = 50_000
        let r = try KVMExitTraceReader.analyze(try FileByteSource(path: PerfFixtures.path("kvm-synthetic.data.xz")), options: options)
        let listed = try #require(r.overThreshold?.exits)
        #expect(!listed.isEmpty && r.slowest.isEmpty)
        for e in listed {
            #expect(e.context.filter { $0.hasPrefix("> ") }.count == 2)
            #expect(e.context.contains { $0.hasPrefix("> ") && $0.contains("kvm:kvm_exit: vcpu \(e.vcpu) reason \(e.reason) rip 0x\(String(e.rip, radix: 16))") })
        }
    }

    /// What identifies a sample in a context line, whoever printed it: marker, tid, CPU, time
    /// (ns), event, vCPU and RIP.
    static func sampleKey(_ line: String) -> String? {
        let marker = line.prefix(2)
        let fields = line.dropFirst(2).split(separator: " ")
        guard let t = fields.firstIndex(where: { $0.hasSuffix(":") && $0.contains(".") }), t >= 2,
              let ev = fields.dropFirst(t + 1).first, let rip = fields.firstIndex(of: "rip"), rip + 1 < fields.count,
              let vcpu = fields.firstIndex(of: "vcpu"), vcpu + 1 < fields.count else { return nil }
        return [String(marker), String(fields[t - 2]), String(fields[t - 1]), String(fields[t]), String(ev),
                String(fields[vcpu + 1].filter { $0 != "," }), String(fields[rip + 1])].joined(separator: "|")
    }

    func json<T: Encodable>(_ v: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return String(decoding: try e.encode(v), as: UTF8.self)
    }
}
