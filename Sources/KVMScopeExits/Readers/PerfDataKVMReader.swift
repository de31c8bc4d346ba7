import Foundation
import KVMScopeTracefs

/// `perf record -e kvm:kvm_exit -e kvm:kvm_entry` and `perf kvm stat record` output itself
/// (perf.data, file or pipe mode): told by perf's magic.
struct PerfDataKVMFormat: InputFormat {
    public let name = "perf-data"
    public let kind = InputKind.kvmExits
    public let summary = "perf.data of perf record -e kvm:kvm_exit -e kvm:kvm_entry or perf kvm stat record (file or pipe mode)"
    public init() {}
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool { PerfDataReader.recognizes(sample) }
}

/// Where the kvm_exit / kvm_entry fields are in the records of one kernel, from the formats
/// stored in the perf.data (arch/x86/kvm/trace.h: kvm_exit has exit_reason, guest_rip, isa,
/// info1, info2, intr_info, error_code and, since 5.10, vcpu_id; kvm_entry has vcpu_id and,
/// since 5.8, rip). Only exit_reason, guest_rip and kvm_entry's vcpu_id are required: the
/// others are read when the kernel has them, as the text readers do.
public struct KVMPerfFieldMap: Sendable, Equatable {
    public struct Exit: Sendable, Equatable {
        public let exitReason: TracepointFormat.Field
        public let guestRIP: TracepointFormat.Field
        public let isa: TracepointFormat.Field?
        public let info1: TracepointFormat.Field?
        public let info2: TracepointFormat.Field?
        public let intrInfo: TracepointFormat.Field?
        public let errorCode: TracepointFormat.Field?
        public let vcpuID: TracepointFormat.Field?
    }

    public struct Entry: Sendable, Equatable {
        public let vcpuID: TracepointFormat.Field
        public let rip: TracepointFormat.Field?
    }

    /// kvm_exit's layout, or a one-line reason it is not one kvmscope reads (e.g. arm64's
    /// kvm_exit has esr_ec and vcpu_pc, no exit_reason).
    public static func exit(_ f: TracepointFormat, arch: String?) throws -> Exit {
        func opt(_ n: String) -> TracepointFormat.Field? { f.field(n).flatMap { [1, 2, 4, 8].contains($0.size) ? $0 : nil } }
        guard let reason = opt("exit_reason"), let rip = opt("guest_rip") else {
            throw ExitsPerfDataError(detail: "its kvm_exit format has no exit_reason/guest_rip fields (fields: \(f.fields.filter { !$0.isCommon }.map(\.name).joined(separator: ", "))); recorded on \(arch ?? "an unknown architecture"): kvmscope reads x86 kvm_exit events")
        }
        return Exit(exitReason: reason, guestRIP: rip, isa: opt("isa"), info1: opt("info1"), info2: opt("info2"),
                    intrInfo: opt("intr_info"), errorCode: opt("error_code"), vcpuID: opt("vcpu_id"))
    }

    public static func entry(_ f: TracepointFormat, arch: String?) throws -> Entry {
        guard let v = f.field("vcpu_id"), [1, 2, 4, 8].contains(v.size) else {
            throw ExitsPerfDataError(detail: "its kvm_entry format has no vcpu_id field; recorded on \(arch ?? "an unknown architecture"): kvmscope reads x86 kvm_entry events")
        }
        return Entry(vcpuID: v, rip: f.field("rip").flatMap { [4, 8].contains($0.size) ? $0 : nil })
    }
}

struct ExitsPerfDataError: KVMScopeFailure, Equatable {
    var path = ""
    let detail: String
    var description: String { "'\(path)': perf.data: \(detail)" }
}

/// Reads the kvm samples of a perf.data into the same analysis the text readers feed: each
/// kvm_exit / kvm_entry sample becomes a KVMTraceRecord, and a `perf script`-like line of it
/// is kept for the slow-exit context. Other kvm events (kvm_mmio, kvm_pio, ...) are context.
enum PerfDataKVMReader {
    static func analyze(_ stream: ByteStream, options: ExitAnalysisOptions) throws -> ExitsReport {
        let reasons = ExitReasonInterner()
        let analyzer = ExitLatencyAnalyzer(options: options, reasons: reasons)
        var reader = PerfDataReader()
        let state = State()
        do {
            try reader.read(stream) { sample in
                try state.consume(sample, arch: sample.arch, analyzer: analyzer, reasons: reasons)
            }
        } catch var e as ExitsPerfDataError {
            e.path = stream.name
            throw e
        }
        var lines = state.accounting
        lines.bytes = stream.knownSize ?? 0
        var report = analyzer.report(input: stream.name, format: PerfDataKVMFormat().name, lines: lines)
        report.lost.events += reader.stats.lostEvents + reader.stats.lostSamples
        return report
    }

    final class State {
        var accounting = LineAccounting()
        var exits: [Int: KVMPerfFieldMap.Exit] = [:]
        var entries: [Int: KVMPerfFieldMap.Entry] = [:]
        var record = KVMTraceRecord()
        var line = PerfScriptLine()

        func consume(_ s: PerfTracepointSample, arch: String?, analyzer: ExitLatencyAnalyzer, reasons: ExitReasonInterner) throws {
            accounting.total += 1
            let f = s.event.format
            var r = KVMTraceRecord()
            r.tid = s.tid ?? -1
            r.cpu = s.cpu.map { Int32(bitPattern: $0) } ?? -1
            r.timestampNs = s.timeNs ?? 0
            let isKVM = s.event.system == "kvm"
            if isKVM, f.name == "kvm_exit" {
                let m: KVMPerfFieldMap.Exit
                if let known = exits[f.id] { m = known } else { m = try KVMPerfFieldMap.exit(f, arch: arch); exits[f.id] = m }
                guard let code = s.value(m.exitReason), let rip = s.value(m.guestRIP) else { accounting.malformedKVM += 1; return }
                let isa: ExitISA = m.isa.flatMap { s.value($0) } == 2 ? .svm : .vmx
                r.kind = .exit
                r.reason = reasons.id(isa: isa, exitReason: UInt32(truncatingIfNeeded: code))
                r.rip = rip
                r.info1 = m.info1.flatMap { s.value($0) } ?? 0
                r.info2 = m.info2.flatMap { s.value($0) } ?? 0
                r.intrInfo = UInt32(truncatingIfNeeded: m.intrInfo.flatMap { s.value($0) } ?? 0)
                r.errorCode = UInt32(truncatingIfNeeded: m.errorCode.flatMap { s.value($0) } ?? 0)
                r.vcpu = m.vcpuID.flatMap { s.value($0) }.map { Int32(truncatingIfNeeded: $0) } ?? -1
                accounting.kvmExit += 1
            } else if isKVM, f.name == "kvm_entry" {
                let m: KVMPerfFieldMap.Entry
                if let known = entries[f.id] { m = known } else { m = try KVMPerfFieldMap.entry(f, arch: arch); entries[f.id] = m }
                guard let v = s.value(m.vcpuID) else { accounting.malformedKVM += 1; return }
                r.kind = .entry
                r.vcpu = Int32(truncatingIfNeeded: v)
                r.rip = m.rip.flatMap { s.value($0) } ?? 0
                accounting.kvmEntry += 1
            } else {
                r.kind = .otherEvent
                accounting.otherEvents += 1
            }
            line.render(s, r, reasonName: r.kind == .exit ? reasons.names[Int(r.reason)] : nil)
            r.commRange = line.commRange
            r.eventRange = line.eventRange
            line.withLine { analyzer.consume(r, line: $0) }
        }
    }
}

/// A `perf script`-shaped line of a sample (`comm tid [cpu] secs.ns: kvm:kvm_exit: fields`),
/// built into one reused buffer: the analysis keeps lines only as the slow-exit context.
struct PerfScriptLine {
    private(set) var bytes: [UInt8] = []
    private(set) var commRange = 0..<0
    private(set) var eventRange = 0..<0

    mutating func render(_ s: PerfTracepointSample, _ r: KVMTraceRecord, reasonName: String?) {
        bytes.removeAll(keepingCapacity: true)
        let comm = s.comm ?? ":\(s.tid ?? -1)"
        append(comm)
        commRange = 0..<bytes.count
        append(" \(s.tid ?? -1) [\(s.cpu.map { String(format: "%03u", $0) } ?? "-")] ")
        let t = s.timeNs ?? 0
        append("\(t / 1_000_000_000).\(String(format: "%09llu", t % 1_000_000_000)): ")
        let start = bytes.count + s.event.system.utf8.count + 1
        append("\(s.event.fullName): ")
        eventRange = start..<(start + s.event.name.utf8.count)
        switch r.kind {
        case .exit:
            append("vcpu \(r.vcpu) reason \(reasonName ?? "?") rip 0x\(String(r.rip, radix: 16)) info1 0x\(hex16(r.info1)) info2 0x\(hex16(r.info2)) intr_info 0x\(hex8(r.intrInfo)) error_code 0x\(hex8(r.errorCode))")
        case .entry:
            append("vcpu \(r.vcpu), rip 0x\(String(r.rip, radix: 16))")
        default:
            append(s.fields().filter { !$0.name.hasPrefix("common_") }.map { "\($0.name)=\(Self.text($0.value))" }.joined(separator: " "))
        }
    }

    static func text(_ v: TracepointFieldReader.Value) -> String {
        switch v {
        case let .number(n): return "0x" + String(n, radix: 16)
        case let .text(t): return t
        case let .bytes(b): return b.map { String(format: "%02x", $0) }.joined()
        case .outOfRange: return "?"
        }
    }

    private func hex16(_ v: UInt64) -> String { String(format: "%016llx", v) }
    private func hex8(_ v: UInt32) -> String { String(format: "%08x", v) }

    private mutating func append(_ s: String) { bytes.append(contentsOf: s.utf8) }

    func withLine<T>(_ body: (LineBytes) -> T) -> T {
        bytes.withUnsafeBufferPointer { body(LineBytes($0)) }
    }
}
