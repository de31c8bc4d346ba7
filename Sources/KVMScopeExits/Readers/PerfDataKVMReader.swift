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
/// kvm_exit / kvm_entry sample becomes a KVMTraceRecord. Other kvm events (kvm_mmio,
/// kvm_pio, ...) are context.
enum PerfDataKVMReader {
    static func analyze(_ stream: ByteStream, options: ExitAnalysisOptions) throws -> ExitsReport {
        let reasons = ExitReasonInterner()
        let analyzer = ExitLatencyAnalyzer(options: options, reasons: reasons)
        var reader = PerfDataReader()
        let state = PerfKVMSampleState(reasons: reasons, keepsContext: analyzer.keepsContext)
        analyzer.deferredLineRenderer = { [state] r, tag in state.line(of: r, tag: tag) }
        do {
            try reader.read(stream) { sample in try state.consume(sample, analyzer: analyzer) }
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
}

/// The per-sample side of `PerfDataKVMReader`: what each event is (decided once per format id,
/// samples of one event come in runs), the field layouts as plain offsets, and the names a
/// deferred context line needs. Samples are not rendered as text: a kvm_exit/kvm_entry goes
/// to the analysis with a tag (its event and task name by number) and its `perf script` line
/// is made only if a slow exit shows it; only other events, rare, are rendered as they come
/// (their fields are in the sample's payload, gone after the callback).
/// `@exclusivity(unchecked)`: only `consume` and `line(of:tag:)` touch the fields, never
/// overlapping (the analysis calls `line` between samples), so the run-time check could never fire.
final class PerfKVMSampleState {
    /// kvm_exit's fields as plain offsets (nil: the kernel has no such field).
    struct ExitLayout {
        let exitReason: KVMRecordFieldMap.Field, guestRIP: KVMRecordFieldMap.Field
        let isa: KVMRecordFieldMap.Field?, info1: KVMRecordFieldMap.Field?, info2: KVMRecordFieldMap.Field?
        let intrInfo: KVMRecordFieldMap.Field?, errorCode: KVMRecordFieldMap.Field?, vcpuID: KVMRecordFieldMap.Field?
    }

    struct EntryLayout {
        let vcpuID: KVMRecordFieldMap.Field
        let rip: KVMRecordFieldMap.Field?
    }

    enum Kind {
        case exit(ExitLayout)
        case entry(EntryLayout)
        case other
    }

    /// Tag bits: the task name's number + 1 (0: none), the event's number, whether the sample had a CPU.
    private static let eventShift: UInt64 = 32, cpuPresent: UInt64 = 1 << 63

    let reasons: ExitReasonInterner
    let keepsContext: Bool
    @exclusivity(unchecked) var accounting = LineAccounting()
    /// By format id (`common_type`, a u16 in every kernel): kvm_exit and kvm_entry alternate,
    /// so a one-entry cache would miss on every sample.
    @exclusivity(unchecked) private var kinds: [(kind: Kind, event: UInt64)?] = []
    @exclusivity(unchecked) private var otherKinds: [Int: (kind: Kind, event: UInt64)] = [:]
    /// `system:name` of each event seen, by number.
    @exclusivity(unchecked) private var events: [(system: String, name: String)] = []
    @exclusivity(unchecked) private var comms: [String] = []
    @exclusivity(unchecked) private var commIDs: [String: Int] = [:]
    /// The last task name and its number per thread, by the tid's low bits: vCPU threads take
    /// turns, and a Dictionary lookup hashes the name.
    @exclusivity(unchecked) private var recentComms = [(tid: Int32, comm: String?, tag: UInt64)](repeating: (.min, nil, 0), count: 256)
    @exclusivity(unchecked) private var text = PerfScriptLine()
    /// Apart from `text`: a slow exit's lines are made while the analysis holds `text`'s bytes.
    @exclusivity(unchecked) private var deferredText = PerfScriptLine()

    init(reasons: ExitReasonInterner, keepsContext: Bool) {
        self.reasons = reasons
        self.keepsContext = keepsContext
    }

    func consume(_ s: PerfTracepointSample, analyzer: ExitLatencyAnalyzer) throws {
        accounting.total += 1
        let (kind, event) = try self.kind(of: s)
        var r = KVMTraceRecord()
        r.tid = s.tid ?? -1
        r.cpu = s.cpu.map { Int32(bitPattern: $0) } ?? -1
        r.timestampNs = s.timeNs ?? 0
        let p = s.payload
        switch kind {
        case let .exit(m):
            guard let code = m.exitReason.read(p), let rip = m.guestRIP.read(p) else { accounting.malformedKVM += 1; return }
            let isa: ExitISA = m.isa.flatMap { $0.read(p) } == 2 ? .svm : .vmx
            r.kind = .exit
            r.reason = reasons.id(isa: isa, exitReason: UInt32(truncatingIfNeeded: code))
            r.rip = rip
            r.info1 = m.info1.flatMap { $0.read(p) } ?? 0
            r.info2 = m.info2.flatMap { $0.read(p) } ?? 0
            r.intrInfo = UInt32(truncatingIfNeeded: m.intrInfo.flatMap { $0.read(p) } ?? 0)
            r.errorCode = UInt32(truncatingIfNeeded: m.errorCode.flatMap { $0.read(p) } ?? 0)
            r.vcpu = m.vcpuID.flatMap { $0.read(p) }.map { Int32(truncatingIfNeeded: $0) } ?? -1
            accounting.kvmExit += 1
        case let .entry(m):
            guard let v = m.vcpuID.read(p) else { accounting.malformedKVM += 1; return }
            r.kind = .entry
            r.vcpu = Int32(truncatingIfNeeded: v)
            r.rip = m.rip.flatMap { $0.read(p) } ?? 0
            accounting.kvmEntry += 1
        case .other:
            r.kind = .otherEvent
            accounting.otherEvents += 1
            // Its fields are only in this payload: rendered now, when the context may show it.
            guard keepsContext else { return analyzer.consume(r, deferredTag: 0) }
            text.render(comm: s.comm, tid: r.tid, cpu: s.cpu, timeNs: r.timestampNs,
                        event: events[Int(event)], r, reasonName: nil, fields: s.fields())
            return text.withLine { analyzer.consume(r, line: $0) }
        }
        guard keepsContext else { return analyzer.consume(r, deferredTag: 0) }
        analyzer.consume(r, deferredTag: commTag(s.comm, tid: r.tid) | event << Self.eventShift | (s.cpu == nil ? 0 : Self.cpuPresent))
    }

    /// The `perf script` line of a record fed with a tag.
    func line(of r: KVMTraceRecord, tag: UInt64) -> (bytes: [UInt8], commRange: Range<Int>) {
        let commNumber = Int(tag & 0xFFFF_FFFF)
        let event = events[Int((tag & ~Self.cpuPresent) >> Self.eventShift)]
        deferredText.render(comm: commNumber == 0 ? nil : comms[commNumber - 1], tid: r.tid,
                    cpu: tag & Self.cpuPresent == 0 ? nil : UInt32(bitPattern: r.cpu), timeNs: r.timestampNs,
                    event: event, r, reasonName: r.kind == .exit ? reasons.names[Int(r.reason)] : nil, fields: [])
        return (deferredText.bytes, deferredText.commRange)
    }

    /// The task name's number + 1 (0: none). The name of a thread can change (COMM records),
    /// so the cache is checked against the name, not the tid alone.
    @inline(__always)
    private func commTag(_ comm: String?, tid: Int32) -> UInt64 {
        let slot = Int(UInt32(bitPattern: tid) & 255)
        if recentComms[slot].tid == tid, recentComms[slot].comm == comm { return recentComms[slot].tag }
        var tag: UInt64 = 0
        if let comm {
            let id: Int
            if let known = commIDs[comm] { id = known } else {
                id = comms.count
                comms.append(comm)
                commIDs[comm] = id
            }
            tag = UInt64(id + 1)
        }
        recentComms[slot] = (tid, comm, tag)
        return tag
    }

    @inline(__always)
    private func kind(of s: PerfTracepointSample) throws -> (kind: Kind, event: UInt64) {
        let id = s.formatID
        if id >= 0, id < kinds.count, let known = kinds[id] { return known }
        if let known = otherKinds[id] { return known }
        let made = try newKind(of: s)
        if id >= 0, id <= Int(UInt16.max) {
            if id >= kinds.count { kinds += Array(repeating: nil, count: id + 1 - kinds.count) }
            kinds[id] = made
        } else {
            otherKinds[id] = made
        }
        return made
    }

    private func newKind(of s: PerfTracepointSample) throws -> (kind: Kind, event: UInt64) {
        let e = s.event, f = e.format
        events.append((e.system, e.name))
        let number = UInt64(events.count - 1)
        func at(_ field: TracepointFormat.Field?) -> KVMRecordFieldMap.Field? { KVMRecordFieldMap.Field(field, keepingSign: true) }
        guard e.system == "kvm" else { return (.other, number) }
        if f.name == "kvm_exit" {
            let m = try KVMPerfFieldMap.exit(f, arch: s.arch)
            return (.exit(ExitLayout(exitReason: at(m.exitReason)!, guestRIP: at(m.guestRIP)!, isa: at(m.isa), info1: at(m.info1),
                                     info2: at(m.info2), intrInfo: at(m.intrInfo), errorCode: at(m.errorCode), vcpuID: at(m.vcpuID))), number)
        }
        if f.name == "kvm_entry" {
            let m = try KVMPerfFieldMap.entry(f, arch: s.arch)
            return (.entry(EntryLayout(vcpuID: at(m.vcpuID)!, rip: at(m.rip))), number)
        }
        return (.other, number)
    }
}

/// A `perf script`-shaped line of a sample (`comm tid [cpu] secs.ns: kvm:kvm_exit: fields`),
/// built into one reused buffer with no formatting calls, for the slow-exit context.
struct PerfScriptLine {
    private(set) var bytes: [UInt8] = []
    private(set) var commRange = 0..<0
    private(set) var eventRange = 0..<0

    mutating func render(comm: String?, tid: Int32, cpu: UInt32?, timeNs t: UInt64, event: (system: String, name: String),
                         _ r: KVMTraceRecord, reasonName: String?, fields: [(name: String, value: TracepointFieldReader.Value)]) {
        bytes.removeAll(keepingCapacity: true)
        if let comm { append(comm) } else { append(":"); decimal(Int64(tid)) }
        commRange = 0..<bytes.count
        append(" "); decimal(Int64(tid)); append(" [")
        if let cpu { padded(UInt64(cpu), width: 3) } else { append("-") }
        append("] ")
        decimal(Int64(t / 1_000_000_000)); append("."); padded(t % 1_000_000_000, width: 9); append(": ")
        append(event.system); append(":")
        let start = bytes.count
        append(event.name)
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
            for (name, value) in fields where !name.hasPrefix("common_") {
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
