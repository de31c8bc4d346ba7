import Foundation
import KVMScopeCore
import KVMScopeTracefs

/// `kvmscope exits --live`: kvm_exit/kvm_entry from a private tracefs instance, a table per
/// reason, vCPU or VM refreshed every interval — what `perf kvm stat live` and kvm_stat show,
/// with percentiles. Filters run in the kernel (tracefs event filters, like perf's --filter):
/// the process's threads by `common_pid`, a vCPU by `vcpu_id` (both events have it), reasons by
/// `exit_reason` and `isa` on kvm_exit only — so the entries of other reasons arrive unpaired
/// and are counted apart (`entriesWithoutExit`), never as exits.
public final class KVMExitLiveSession {
    public struct Options: Sendable {
        public var recorder = KVMExitRecorder.Options()
        public var refreshSeconds: Double = 1
        /// Stop after this long; nil: until SIGINT/SIGTERM.
        public var durationSeconds: Double?
        public var vcpu: UInt32?
        /// Exit reason names (VMX or SVM, case-insensitive), each turned into its codes.
        public var reasons: [String] = []
        public var grouping: ExitLiveGrouping = .reason
        public var sort: ExitLiveSort = .count
        public var rowLimit = 40
        public init() {}
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    /// The kvm_exit filter for `reasons`: `(isa == 1 && exit_reason == 30) || …`. Throws the
    /// names no table has, with the table's names to choose from.
    public static func reasonFilter(_ names: [String]) throws -> String? {
        guard !names.isEmpty else { return nil }
        var terms: [String] = []
        for name in names {
            let vmx = ExitReasonTable.vmx.filter { $0.value.caseInsensitiveCompare(name) == .orderedSame }.map(\.key)
            let svm = ExitReasonTable.svm.filter { $0.value.caseInsensitiveCompare(name) == .orderedSame }.map(\.key)
            guard !vmx.isEmpty || !svm.isEmpty else { throw ExitLiveError.unknownReason(name) }
            terms += vmx.sorted().map { "(isa == 1 && exit_reason == \($0))" }
            terms += svm.sorted().map { "(isa == 2 && exit_reason == \($0))" }
        }
        return terms.joined(separator: " || ")
    }

    /// Records until the duration ends or a signal comes; `onFrame` gets one frame per refresh
    /// and the last one. Throws before creating anything when recording is impossible.
    public func run(onFrame: (ExitLiveFrame) -> Void) throws {
        let recorder = KVMExitRecorder(options: options.recorder)
        let (fs, threads) = try recorder.preflight()
        let reasonTerms = try Self.reasonFilter(options.reasons)
        StopSignals.install()
        for stale in TracefsInstance.staleInstances(in: fs, procRoot: options.recorder.procRoot) {
            rmdir(fs.path("instances/\(stale)"))
        }
        let instance = try TracefsInstance(in: fs)
        defer { try? instance.remove() }
        try instance.setBufferSize(kilobytes: options.recorder.bufferKB)
        var common: [String] = []
        if let p = KVMExitRecorder.pidFilter(threads) {
            if p.count > KVMExitRecorder.maxFilterLength {
                try instance.write("set_event_pid", threads.map(String.init).joined(separator: " "))
            } else {
                common.append("(\(p))")
            }
        }
        if let v = options.vcpu { common.append("vcpu_id == \(v)") }
        func joined(_ parts: [String]) -> String? { parts.isEmpty ? nil : parts.joined(separator: " && ") }
        try instance.enable("kvm/kvm_exit", filter: joined(common + (reasonTerms.map { ["(\($0))"] } ?? [])))
        try instance.enable("kvm/kvm_entry", filter: joined(common))
        // Context events prove guests ran where kvm_exit never fires (the note says which).
        let context = options.recorder.contextEvents.filter { e in
            let p = e.split(separator: "/")
            return fs.hasEvent(String(p[0]), String(p[1]))
        }
        for e in context { try instance.enable(e, filter: options.recorder.pid == nil ? nil : KVMExitRecorder.pidFilter(threads)) }
        try instance.setTracingOn(true)

        let names = ExitLiveProcessNames(procRoot: options.recorder.procRoot)
        let table = ExitLiveTable(grouping: options.grouping, sort: options.sort, rowLimit: options.rowLimit,
                                  vmName: { names.vmName(thread: $0) })
        let pipePath = instance.file("trace_pipe")
        let fd = open(pipePath, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw TracefsError.io(path: pipePath, reason: String(cString: strerror(errno))) }
        defer { close(fd) }

        let start = Self.now()
        var lastFrame = start
        var nextFrame = start + options.refreshSeconds
        var splitter = IncrementalLines(limit: 64 << 10)
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        func emit(_ t: Double) {
            let note = table.exitRecords == 0 && t - start >= 1
                ? KVMExitRecorder.noEventsNote(contextEvents: table.otherRecords, pid: options.recorder.pid) : nil
            onFrame(table.frame(elapsed: t - start, interval: t - lastFrame, lostEvents: instance.lostEvents(), note: note))
            lastFrame = t
        }
        while true {
            let now = Self.now()
            let stopping = StopSignals.requested || options.durationSeconds.map { now - start >= $0 } == true
            if stopping {
                try? instance.setTracingOn(false)
                drain(fd, &buffer, &splitter, table)
                emit(Self.now())
                return
            }
            if now >= nextFrame {
                emit(now)
                nextFrame = now + options.refreshSeconds
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let wait = max(0, min(nextFrame, start + (options.durationSeconds ?? .infinity)) - Self.now())
            _ = poll(&p, 1, Int32(min(wait, 0.2) * 1000))
            drain(fd, &buffer, &splitter, table)
        }
    }

    /// Reads what the pipe has now (non-blocking) and feeds its complete lines to the table.
    private func drain(_ fd: Int32, _ buffer: inout [UInt8], _ lines: inout IncrementalLines, _ table: ExitLiveTable) {
        for _ in 0..<64 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            lines.feed(buffer[..<n]) { table.consume($0) }
        }
    }

    static func now() -> Double {
        var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Lines from chunks that may split them: a partial line waits for the next chunk; one longer
/// than `limit` is dropped (no trace_pipe record is that long).
struct IncrementalLines {
    let limit: Int
    private var partial: [UInt8] = []
    private var dropping = false
    init(limit: Int) { self.limit = limit }

    mutating func feed(_ chunk: ArraySlice<UInt8>, _ body: (LineBytes) -> Void) {
        var start = chunk.startIndex
        while let nl = chunk[start...].firstIndex(of: 0x0A) {
            if dropping {
                dropping = false
            } else if partial.count + (nl - start) > limit {
                // Too long for a record: dropped whole.
            } else if partial.isEmpty {
                chunk.withUnsafeBufferPointer { p in
                    body(LineBytes(UnsafeBufferPointer(rebasing: p[(start - chunk.startIndex)..<(nl - chunk.startIndex)])))
                }
            } else {
                partial += chunk[start..<nl]
                partial.withUnsafeBufferPointer { body(LineBytes($0)) }
            }
            partial.removeAll(keepingCapacity: true)
            start = nl + 1
        }
        guard !dropping else { return }
        partial += chunk[start...]
        if partial.count > limit { partial.removeAll(); dropping = true }
    }
}

/// vCPU thread → its VM's name: the thread's process (/proc/TID/status `Tgid:`), named by
/// QEMU's `-name` (`guest=NAME,…` or `NAME`) from /proc/TGID/cmdline, else by its comm.
final class ExitLiveProcessNames {
    let procRoot: String
    private var byThread: [Int32: String] = [:]
    static let limit = 65_536
    init(procRoot: String) { self.procRoot = procRoot }

    func vmName(thread: Int32) -> String {
        if let n = byThread[thread] { return n }
        let name = Self.name(thread: thread, procRoot: procRoot)
        if byThread.count >= Self.limit { byThread.removeAll() }
        byThread[thread] = name
        return name
    }

    static func name(thread: Int32, procRoot: String) -> String {
        guard let status = try? String(contentsOfFile: "\(procRoot)/\(thread)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Tgid:") }),
              let tgid = Int32(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) else { return "thread \(thread)" }
        let raw = FileManager.default.contents(atPath: "\(procRoot)/\(tgid)/cmdline") ?? Data()
        let args = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        if let i = args.firstIndex(of: "-name"), i + 1 < args.count, let n = qemuName(args[i + 1]) { return "\(n) (pid \(tgid))" }
        let comm = (try? String(contentsOfFile: "\(procRoot)/\(tgid)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return comm.isEmpty ? "pid \(tgid)" : "\(comm) (pid \(tgid))"
    }

    /// QEMU's `-name` value: `guest=NAME,debug-threads=on` or a bare NAME (qemu-options.hx).
    static func qemuName(_ value: String) -> String? {
        for part in value.split(separator: ",") {
            if part.hasPrefix("guest=") { return String(part.dropFirst(6)) }
            if !part.contains("=") { return String(part) }
        }
        return nil
    }
}

/// Why a live view cannot start, beyond the recorder's reasons.
public enum ExitLiveError: KVMScopeFailure, Equatable {
    /// `--reason NAME` that neither the VMX nor the SVM table has (arch/x86/include/uapi/asm/vmx.h, svm.h).
    case unknownReason(String)
    public var description: String {
        switch self {
        case let .unknownReason(n):
            return "no exit reason '\(n)' in the VMX or SVM tables (e.g. HLT, IO_INSTRUCTION, EPT_VIOLATION, MSR_WRITE; AMD: hlt, io, npf, msr)"
        }
    }
}
