import Foundation
import KVMScopeTracefs

/// trace-cmd's binary trace.dat of `trace-cmd record -e kvm:kvm_exit -e kvm:kvm_entry`
/// (v6, v7; zstd/zlib), read without `trace-cmd report`.
struct TraceDatKVMFormat: InputFormat {
    public let name = "trace-dat"
    public let kind = InputKind.kvmExits
    public let summary = "trace-cmd's binary trace.dat (v6, v7; zstd/zlib) of trace-cmd record -e kvm:kvm_exit -e kvm:kvm_entry"
    public init() {}
    public func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool { TraceDatFile.hasMagic(sample) }
}

/// Where kvm_exit's and kvm_entry's fields are in their binary records, from the format
/// descriptions stored in the file (arch/x86/kvm/trace.h: `exit_reason`, `guest_rip`, `isa`,
/// `info1`, `info2`, `intr_info`, `error_code`, and since linux 5.10 `vcpu_id`; kvm_entry:
/// `vcpu_id`, `rip`). Only exit_reason is required: the rest is read when the kernel has it.
public struct KVMRecordFieldMap: Sendable {
    /// A scalar field as plain integers, read per record without touching the format's
    /// Strings; 8 bytes, so that a layout of several is cheap to copy.
    public struct Field: Sendable {
        let offset: Int32
        let size: UInt8
        /// Signed fields sign-extended, as perf reads them (TracepointFieldReader.value);
        /// trace.dat's reader has always read them as unsigned.
        let signExtends: Bool
        init?(_ f: TracepointFormat.Field?, keepingSign: Bool = false) {
            guard let f, f.offset >= 0, f.offset <= Int(Int32.max), [1, 2, 4, 8].contains(f.size) else { return nil }
            offset = Int32(f.offset)
            size = UInt8(f.size)
            signExtends = keepingSign && f.isSigned
        }
        @inline(__always)
        func read(_ p: UnsafeRawBufferPointer) -> UInt64? {
            let offset = Int(offset)
            guard offset <= p.count - Int(size) else { return nil }
            switch size {
            case 8: return p.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            case 4:
                let v = p.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                return signExtends ? UInt64(bitPattern: Int64(Int32(bitPattern: v))) : UInt64(v)
            case 2:
                let v = p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
                return signExtends ? UInt64(bitPattern: Int64(Int16(bitPattern: v))) : UInt64(v)
            default:
                let v = p.load(fromByteOffset: offset, as: UInt8.self)
                return signExtends ? UInt64(bitPattern: Int64(Int8(bitPattern: v))) : UInt64(v)
            }
        }
    }

    public let exitID: Int?
    public let entryID: Int?
    let pid: Field?
    let exitReason: Field?
    let guestRIP: Field?
    let isa: Field?
    let info1: Field?, info2: Field?, intrInfo: Field?, errorCode: Field?
    let exitVCPU: Field?
    let entryVCPU: Field?
    let entryRIP: Field?
    let entryPID: Field?

    public init(exit: TracepointFormat?, entry: TracepointFormat?) {
        exitID = exit.flatMap { Field($0.field("exit_reason")) == nil ? nil : $0.id }
        entryID = entry?.id
        pid = Field(exit?.field("common_pid"))
        exitReason = Field(exit?.field("exit_reason"))
        guestRIP = Field(exit?.field("guest_rip"))
        isa = Field(exit?.field("isa"))
        info1 = Field(exit?.field("info1"))
        info2 = Field(exit?.field("info2"))
        intrInfo = Field(exit?.field("intr_info"))
        errorCode = Field(exit?.field("error_code"))
        exitVCPU = Field(exit?.field("vcpu_id"))
        entryVCPU = Field(entry?.field("vcpu_id"))
        entryRIP = Field(entry?.field("rip"))
        entryPID = Field(entry?.field("common_pid"))
    }

    /// Fills `r` from a kvm_exit or kvm_entry payload; false when it is too short for the layout.
    func decode(type: Int, _ p: UnsafeRawBufferPointer, reasons: ExitReasonInterner, into r: inout KVMTraceRecord) -> Bool {
        if type == exitID {
            guard let code = exitReason?.read(p), let tid = pid?.read(p) else { return false }
            r.kind = .exit
            r.tid = Int32(truncatingIfNeeded: tid)
            // KVM_ISA_VMX = 1, KVM_ISA_SVM = 2 (arch/x86/kvm/trace.h); kernels without the field are VMX-era.
            let which: ExitISA = isa?.read(p) == 2 ? .svm : .vmx
            r.reason = reasons.id(isa: which, exitReason: UInt32(truncatingIfNeeded: code))
            r.rip = guestRIP?.read(p) ?? 0
            r.info1 = info1?.read(p) ?? 0
            r.info2 = info2?.read(p) ?? 0
            r.intrInfo = UInt32(truncatingIfNeeded: intrInfo?.read(p) ?? 0)
            r.errorCode = UInt32(truncatingIfNeeded: errorCode?.read(p) ?? 0)
            r.vcpu = exitVCPU?.read(p).map { Int32(truncatingIfNeeded: $0) } ?? -1
            return true
        }
        guard let tid = entryPID?.read(p) else { return false }
        r.kind = .entry
        r.tid = Int32(truncatingIfNeeded: tid)
        r.reason = -1
        r.vcpu = entryVCPU?.read(p).map { Int32(truncatingIfNeeded: $0) } ?? -1
        r.rip = entryRIP?.read(p) ?? 0
        r.info1 = 0; r.info2 = 0; r.intrInfo = 0; r.errorCode = 0
        return true
    }
}

enum TraceDatKVMReader {
    static func analyze(_ stream: ByteStream, source: ByteStream, options: ExitAnalysisOptions) throws -> ExitsReport {
        let input = try TraceDatInput(stream: stream, source: source)
        let file: TraceDatFile
        do { file = try TraceDatFile.read(input) } catch let e as TraceDatError {
            throw KVMScopeError.unsupportedFormat(path: source.name, detail: e.description)
        }
        let exit = file.format(system: "kvm", name: "kvm_exit")
        let entry = file.format(system: "kvm", name: "kvm_entry")
        guard exit != nil || entry != nil else {
            let systems = Set(file.systems.values).subtracting(["ftrace"]).sorted()
            throw KVMScopeError.unsupportedFormat(path: source.name, detail:
                "this trace.dat has no kvm:kvm_exit or kvm:kvm_entry events (its formats: \(systems.isEmpty ? "none" : systems.joined(separator: ", "))); record with: trace-cmd record -e kvm:kvm_exit -e kvm:kvm_entry")
        }
        let map = KVMRecordFieldMap(exit: exit, entry: entry)
        let reasons = ExitReasonInterner()
        let analyzer = ExitLatencyAnalyzer(options: options, reasons: reasons)
        var accounting = LineAccounting()
        var record = KVMTraceRecord()
        // A record's line is made only when a slow exit shows it, from the record and its
        // event type (the tag): its comm comes from the file's saved cmdlines, which do not change.
        var line = TraceDatContextLine()
        analyzer.deferredLineRenderer = { r, type in
            line.render(r, event: file.formats[Int(truncatingIfNeeded: type)]?.name ?? "event \(type)", comm: file.comms[r.tid],
                        reasons: reasons)
            return (line.bytes, line.commRange)
        }
        let events = TraceDatEventReader(file: file, input: input)
        do {
            try events.forEach { e in
                accounting.total += 1
                record.cpu = Int32(e.cpu)
                record.timestampNs = e.timestamp
                if e.type == map.exitID || e.type == map.entryID {
                    guard map.decode(type: e.type, e.payload, reasons: reasons, into: &record) else {
                        accounting.malformedKVM += 1
                        return
                    }
                    if record.kind == .exit { accounting.kvmExit += 1 } else { accounting.kvmEntry += 1 }
                } else {
                    record.kind = .otherEvent
                    record.tid = e.payload.count >= 8 ? e.payload.loadUnaligned(fromByteOffset: 4, as: Int32.self) : -1
                    accounting.otherEvents += 1
                }
                analyzer.consume(record, deferredTag: UInt64(truncatingIfNeeded: e.type))
            }
        } catch let e as TraceDatError {
            throw KVMScopeError.unsupportedFormat(path: source.name, detail: e.description)
        }
        accounting.bytes = Int64(clamping: input.size)
        var report = analyzer.report(input: source.name, format: TraceDatKVMFormat().name, lines: accounting)
        let p = events.stats.pages
        if p.pagesAfterLoss > 0 {
            report.lost.markerLines += p.pagesAfterLoss
            report.lost.events += p.lostEvents
        }
        return report
    }
}

/// The text a slow exit's context shows for one binary record, in the kernel's own ≥5.10
/// layout (`comm-tid [cpu] secs: kvm_exit: vcpu 0 reason HLT rip 0x...`), rendered only when
/// a slow exit shows it.
struct TraceDatContextLine {
    private(set) var bytes: [UInt8] = []
    private(set) var commRange = 0..<0
    private(set) var eventRange = 0..<0

    mutating func render(_ r: KVMTraceRecord, event: String, comm: String?, reasons: ExitReasonInterner) {
        var s = ""
        s.reserveCapacity(160)
        let c = comm ?? (r.tid == 0 ? "<idle>" : "<...>")
        s += c
        let commEnd = c.utf8.count
        s += "-\(r.tid) [\(String(format: "%03d", r.cpu))] "
        s += String(format: "%llu.%06llu: ", r.timestampNs / 1_000_000_000, (r.timestampNs % 1_000_000_000) / 1000)
        let eventStart = s.utf8.count
        s += event
        let eventEnd = s.utf8.count
        s += ":"
        switch r.kind {
        case .exit:
            let name = r.reason >= 0 && Int(r.reason) < reasons.names.count ? reasons.names[Int(r.reason)] : "?"
            s += " vcpu \(r.vcpu) reason \(name) rip 0x\(String(r.rip, radix: 16)) info1 0x\(String(r.info1, radix: 16)) info2 0x\(String(r.info2, radix: 16)) intr_info 0x\(String(r.intrInfo, radix: 16)) error_code 0x\(String(r.errorCode, radix: 16))"
        case .entry:
            s += " vcpu \(r.vcpu), rip 0x\(String(r.rip, radix: 16))"
        default: break
        }
        bytes = Array(s.utf8)
        commRange = 0..<commEnd
        eventRange = eventStart..<eventEnd
    }
}
