import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
@testable import KVMScopeExits

/// `kvmscope exits trace.dat`. This host's KVM (under TCG) emits no kvm_exit, so the real
/// trace-cmd files (Tests/Fixtures/tracedat/kvm-*.dat) hold the kvm formats and no records:
/// they test the field mapping. The records come from a SYNTHETIC file built here with those
/// formats, which the real `trace-cmd report` also read (its text is committed next to it).
@Suite struct TraceDatKVMTests {
    static func fixture(_ name: String) -> String { TestFixtures.path("tracedat/" + name) }

    static func open(_ name: String) throws -> TraceDatFile {
        try TraceDatFile.read(TraceDatInput(stream: MemoryByteSource([1]), regularFilePath: fixture(name)))
    }

    @Test(arguments: ["kvm-v6.dat", "kvm-v7-zstd.dat"])
    func realFilesMapTheStoredKVMFormats(_ name: String) throws {
        let f = try Self.open(name)
        let exit = try #require(f.format(system: "kvm", name: "kvm_exit"))
        let entry = try #require(f.format(system: "kvm", name: "kvm_entry"))
        let map = KVMRecordFieldMap(exit: exit, entry: entry)
        #expect(map.exitID == exit.id && map.entryID == entry.id)
        // linux 6.18's layout (arch/x86/kvm/trace.h), as the kernel wrote it into the file.
        #expect(map.exitReason?.offset == 8 && map.exitReason?.size == 4)
        #expect(map.guestRIP?.offset == 16 && map.isa?.offset == 24 && map.info1?.offset == 32 && map.info2?.offset == 40)
        #expect(map.intrInfo?.offset == 48 && map.errorCode?.offset == 52 && map.exitVCPU?.offset == 56)
        #expect(map.entryVCPU?.offset == 8 && map.entryRIP?.offset == 16)
        // The file has the formats but no records: the report says there were none.
        let report = try KVMExitTraceReader.analyze(FileByteSource(path: Self.fixture(name)))
        #expect(report.format == "trace-dat")
        #expect(report.lines.kvmExit == 0 && report.lines.kvmEntry == 0)
    }

    /// The synthetic file: two vCPU threads on two CPUs, VMX exits of four reasons with
    /// latencies from 1 µs to 3 ms, all on whole microseconds so trace-cmd report's µs text
    /// carries the same times.
    static func synthetic() throws -> [UInt8] {
        var b = try TraceDatBuilder.withFixtureHeaders()
        let exitText = try String(contentsOfFile: TestFixtures.path("exits/linux-6.18.44-kvm_exit.format"), encoding: .utf8)
        let entryText = try String(contentsOfFile: TestFixtures.path("exits/linux-6.18.44-kvm_entry.format"), encoding: .utf8)
        let exit = try TracepointFormat.parse(exitText), entry = try TracepointFormat.parse(entryText)
        b.systems = [("kvm", [exitText, entryText])]
        b.cmdlines = "5001 CPU 0/KVM\n5002 CPU 1/KVM\n"
        let reasons: [UInt64] = [30, 12, 48, 1]     // IO_INSTRUCTION, HLT, EPT_VIOLATION, EXTERNAL_INTERRUPT
        let latenciesUs: [UInt64] = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584]
        for cpu in 0..<2 {
            var events: [TraceDatBuilder.Event] = []
            var t: UInt64 = 41_000_000_000_000 + UInt64(cpu) * 7_000
            let tid = UInt64(5001 + cpu)
            for i in 0..<40 {
                let lat = latenciesUs[(i * 7 + cpu) % latenciesUs.count] * 1000
                let reason = reasons[(i + cpu) % reasons.count]
                events.append(.init(timestamp: t, payload: b.record(size: exit.recordSize, [
                    (0, 2, UInt64(exit.id)), (4, 4, tid), (8, 4, reason), (16, 8, 0xffff_ffff_8100_0000 + UInt64(i) * 16),
                    (24, 4, 1), (32, 8, UInt64(i)), (40, 8, 0), (48, 4, 0), (52, 4, 0), (56, 4, UInt64(cpu))])))
                t += lat
                events.append(.init(timestamp: t, payload: b.record(size: entry.recordSize, [
                    (0, 2, UInt64(entry.id)), (4, 4, tid), (8, 4, UInt64(cpu)), (16, 8, 0xffff_ffff_8100_0000 + UInt64(i) * 16)])))
                t += 11_000
            }
            b.cpus.append(events)
        }
        return b.build()
    }

    @Test func syntheticFileIsTheCommittedOne() throws {
        let built = try Self.synthetic()
        if ProcessInfo.processInfo.environment["KVMSCOPE_WRITE_SYNTHETIC"] == "1" {
            try Data(built).write(to: URL(fileURLWithPath: Self.fixture("synthetic-kvm-v6.dat")))
        }
        let committed = Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixture("synthetic-kvm-v6.dat"))))
        #expect(built == committed, "the committed synthetic file is what TraceDatBuilder writes")
    }

    /// The binary read equals the text path (trace-cmd report's text read by the existing text
    /// reader) in every statistic, pairing count and slow exit.
    @Test(arguments: ["synthetic-kvm-v6.report.txt", "synthetic-kvm-v6.report-plugin.txt"])
    func binaryEqualsTraceCmdReportText(_ textName: String) throws {
        var options = ExitAnalysisOptions()
        options.top = 5
        let binary = try KVMExitTraceReader.analyze(FileByteSource(path: Self.fixture("synthetic-kvm-v6.dat")), options: options)
        let text = try KVMExitTraceReader.analyze(FileByteSource(path: Self.fixture(textName)), options: options)
        #expect(binary.format == "trace-dat")
        #expect(binary.lines.kvmExit == 80 && binary.lines.kvmEntry == 80)
        #expect(binary.lines.kvmExit == text.lines.kvmExit && binary.lines.kvmEntry == text.lines.kvmEntry)
        #expect(binary.pairing == text.pairing)
        #expect(binary.total == text.total)
        #expect(binary.byReason.map(\.reason) == text.byReason.map(\.reason))
        #expect(binary.byReason.map(\.stats) == text.byReason.map(\.stats))
        #expect(binary.byVCPU.map(\.stats) == text.byVCPU.map(\.stats))
        #expect(binary.byReasonAndVCPU.map(\.stats) == text.byReasonAndVCPU.map(\.stats))
        #expect(binary.firstTimestampNs == text.firstTimestampNs && binary.lastTimestampNs == text.lastTimestampNs)
        #expect(binary.slowest.map(\.latencyNs) == text.slowest.map(\.latencyNs))
        #expect(binary.slowest.map(\.reason) == text.slowest.map(\.reason))
        #expect(binary.slowest.map(\.vcpu) == text.slowest.map(\.vcpu))
        #expect(binary.slowest.map(\.tid) == text.slowest.map(\.tid))
    }

    /// `--than` with `--top 0`: each listed exit comes with its context (this used to trap:
    /// the lines were not kept unless --top asked for them).
    @Test func thresholdListHasContextWithoutTop() throws {
        var options = ExitAnalysisOptions()
        options.top = 0
        options.thresholdNs = 1_000_000
        let r = try KVMExitTraceReader.analyze(FileByteSource(path: Self.fixture("synthetic-kvm-v6.dat")), options: options)
        let listed = try #require(r.overThreshold?.exits)
        #expect(listed.count == 9 && r.slowest.isEmpty)
        for e in listed {
            #expect(e.context.count >= 2)
            #expect(e.context.allSatisfy { $0.count > 2 && $0.contains("KVM-\(e.tid) [") })
            #expect(e.context.contains { $0.hasPrefix("> ") && $0.contains("kvm_exit: vcpu \(e.vcpu) reason \(e.reason) rip 0x\(String(e.rip, radix: 16))") })
        }
        options.top = 9
        let withTop = try KVMExitTraceReader.analyze(FileByteSource(path: Self.fixture("synthetic-kvm-v6.dat")), options: options)
        #expect(withTop.overThreshold?.exits.map(\.context) == listed.map(\.context))
    }

    @Test func bigEndianFileReadsTheSame() throws {
        let little = try Self.synthetic()
        var analyses: [ExitsReport] = []
        for bytes in [little, try Self.syntheticBigEndian()] {
            analyses.append(try KVMExitTraceReader.analyze(MemoryByteSource(bytes, name: "synthetic.dat")))
        }
        #expect(analyses[0].total == analyses[1].total)
        #expect(analyses[0].byReason.map(\.stats) == analyses[1].byReason.map(\.stats))
        #expect(analyses[1].lines.kvmExit == 80)
    }

    /// The same records in a big-endian file (a trace from s390x or ppc64).
    static func syntheticBigEndian() throws -> [UInt8] {
        // The little-endian file's records, decoded, rewritten through `record` in big-endian order.
        var b = try TraceDatBuilder.withFixtureHeaders()
        b.bigEndian = true
        let exitText = try String(contentsOfFile: TestFixtures.path("exits/linux-6.18.44-kvm_exit.format"), encoding: .utf8)
        let entryText = try String(contentsOfFile: TestFixtures.path("exits/linux-6.18.44-kvm_entry.format"), encoding: .utf8)
        let exit = try TracepointFormat.parse(exitText), entry = try TracepointFormat.parse(entryText)
        b.systems = [("kvm", [exitText, entryText])]
        b.cmdlines = "5001 CPU 0/KVM\n5002 CPU 1/KVM\n"
        let little = try TraceDatFile.read(TraceDatInput(stream: MemoryByteSource(try synthetic()), regularFilePath: nil))
        let events = TraceDatEventReader(file: little, input: try TraceDatInput(stream: MemoryByteSource(try synthetic()), regularFilePath: nil))
        var perCPU: [[TraceDatBuilder.Event]] = [[], []]
        try events.forEach { e in
            let format = e.type == exit.id ? exit : entry
            let fields = format.fields.filter { [2, 4, 8].contains($0.size) }.map { f -> (Int, Int, UInt64) in
                var v: UInt64 = 0
                for k in (0..<f.size).reversed() { v = v << 8 | UInt64(e.payload[f.offset + k]) }
                return (f.offset, f.size, v)
            }
            perCPU[e.cpu].append(.init(timestamp: e.timestamp, payload: b.record(size: e.payload.count, fields)))
        }
        b.cpus = perCPU
        return b.build()
    }
}
