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
/// built into one reused buffer with no formatting calls: the analysis keeps lines only as
/// the slow-exit context, but every sample gets one.
struct PerfScriptLine {
    private(set) var bytes: [UInt8] = []
    private(set) var commRange = 0..<0
    private(set) var eventRange = 0..<0

    mutating func render(_ s: PerfTracepointSample, _ r: KVMTraceRecord, reasonName: String?) {
        bytes.removeAll(keepingCapacity: true)
        if let comm = s.comm { append(comm) } else { append(":"); decimal(Int64(s.tid ?? -1)) }
        commRange = 0..<bytes.count
        append(" "); decimal(Int64(s.tid ?? -1)); append(" [")
        if let cpu = s.cpu { padded(UInt64(cpu), width: 3) } else { append("-") }
        append("] ")
        let t = s.timeNs ?? 0
        decimal(Int64(t / 1_000_000_000)); append("."); padded(t % 1_000_000_000, width: 9); append(": ")
        append(s.event.system); append(":")
        let start = bytes.count
        append(s.event.name)
        eventRange = start..<bytes.count
        append(": ")
        switch r.kind {
        case .exit:
            append("vcpu "); decimal(Int64(r.vcpu)); append(" reason "); append(reasonName ?? "?")
            append(" rip 0x"); hex(r.rip, width: 1); append(" info1 0x"); hex(r.info1, width: 16)
            append(" info2 0x"); hex(r.info2, width: 16); append(" intr_info 0x"); hex(UInt64(r.intrInfo), width: 8)
            append(" error_code 0x"); hex(UInt64(r.errorCode), width: 8)
        case .entry:
            append("vcpu "); decimal(Int64(r.vcpu)); append(", rip 0x"); hex(r.rip, width: 1)
        default:
            for (name, value) in s.fields() where !name.hasPrefix("common_") {
                append(name); append("=")
                switch value {
                case let .number(n): append("0x"); hex(n, width: 1)
                case let .text(t): append(t)
                case let .bytes(b): for x in b { hex(UInt64(x), width: 2) }
                case .outOfRange: append("?")
                }
                append(" ")
            }
        }
    }

    private mutating func append(_ s: String) { bytes.append(contentsOf: s.utf8) }

    private mutating func decimal(_ v: Int64) {
        if v < 0 { bytes.append(0x2D) }
        padded(v.magnitude, width: 1)
    }

    private mutating func padded(_ v: UInt64, width: Int) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0, x = v
        withUnsafeMutableBytes(of: &digits) { d in
            repeat { d[n] = UInt8(x % 10) + 0x30; x /= 10; n += 1 } while x > 0
            while n < width { d[n] = 0x30; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(d[i]) }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func hex(_ v: UInt64, width: Int) {
        let digits = Self.hexDigits
        var n = 16
        while n > width, (v >> UInt64((n - 1) * 4)) & 0xF == 0 { n -= 1 }
        for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(digits[Int((v >> UInt64(i * 4)) & 0xF)]) }
    }

    func withLine<T>(_ body: (LineBytes) -> T) -> T {
        bytes.withUnsafeBufferPointer { body(LineBytes($0)) }
    }
}
