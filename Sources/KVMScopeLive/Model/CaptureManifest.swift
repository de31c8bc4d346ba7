import Foundation
import KVMScopeCore

/// `capture.json`: what `kvmscope record` captured, from when to when and how — the file
/// `explain DIR` reads first, so each capture file gets its role from it, not from a guess.
/// Keys are part of the JSON contract (docs/json.md, "record").
public struct CaptureManifest: Codable, Sendable, Equatable {
    public static let fileName = "capture.json"
    public var schemaVersion = JSONContract.schemaVersion
    public var tool = "kvmscope record"
    public var kvmscopeVersion: String
    public var qmp: String
    public var qemuVersion: String
    @NullEncoded public var qemuPid: Int32?
    /// Wall clock, seconds since the Unix epoch.
    public var startTime: Double
    public var endTime: Double
    /// duration, signal, vm-shutdown, monitor-closed, command-exited, flight-recorder, output-failed, error;
    /// a capture of `watch --auto-record` also watch-stopped, disk-limit.
    public var stopReason: String
    public var stopDetail: String
    public var files: Files
    public var traceEvents: TraceEvents
    /// `qemu`: QEMU stamped its trace lines (`-msg timestamp=on`); `arrival`: QEMU was started
    /// without it and kvmscope stamped each line when it read it (within `arrivalResolutionSeconds`).
    public var traceTimestamps: String
    /// `calibrated`: the host kernel log's stamps were converted with the offset measured on
    /// record's own /dev/kmsg mark (so they are the wall clock QEMU stamps with); `estimated`:
    /// with REALTIME − BOOTTIME, as dmesg does (off by printk's drift); null: none recorded.
    @NullEncoded public var hostKernelClock: String?
    /// The host's block_rq_error tracepoint recording (`files.hostBlockErrors`); null when it
    /// was not recorded (not root, a kernel without it, --no-host-kernel).
    @NullEncoded public var hostBlockTrace: HostBlockTrace?
    public var arrivalResolutionSeconds: Double
    public var counts: Counts
    /// What could not be captured, and why (no permission on /dev/kmsg, …).
    public var missing: [String]
    /// The VM was left as found (events and log file restored).
    public var restored: Bool

    public init(kvmscopeVersion: String, qmp: String, qemuVersion: String, qemuPid: Int32?, startTime: Double, endTime: Double,
                stopReason: String, stopDetail: String, files: Files, traceEvents: TraceEvents, traceTimestamps: String,
                arrivalResolutionSeconds: Double, hostKernelClock: String? = nil, hostBlockTrace: HostBlockTrace? = nil,
                counts: Counts, missing: [String], restored: Bool) {
        self.kvmscopeVersion = kvmscopeVersion; self.qmp = qmp; self.qemuVersion = qemuVersion; self.qemuPid = qemuPid
        self.startTime = startTime; self.endTime = endTime; self.stopReason = stopReason; self.stopDetail = stopDetail
        self.files = files; self.traceEvents = traceEvents; self.traceTimestamps = traceTimestamps
        self.arrivalResolutionSeconds = arrivalResolutionSeconds; self.hostKernelClock = hostKernelClock; self.hostBlockTrace = hostBlockTrace; self.counts = counts; self.missing = missing; self.restored = restored
    }

    public struct HostBlockTrace: Codable, Sendable, Equatable {
        /// block_rq_error records: failed block requests on the host while recording.
        public var records: Int
        /// Records the ring buffer lost (0: the recording lists every failed request).
        public var lostRecords: UInt64
        /// Wall clock (µs since the epoch) minus the trace clock, measured on record's own
        /// trace_marker line; null when the mark was not read back.
        @NullEncoded public var wallOffsetMicroseconds: Int64?
        /// `MAJ:MIN` → the kernel's device name, from /sys/dev/block while recording.
        public var devices: [String: String]
        public init(records: Int, lostRecords: UInt64, wallOffsetMicroseconds: Int64?, devices: [String: String]) {
            self.records = records; self.lostRecords = lostRecords; self.wallOffsetMicroseconds = wallOffsetMicroseconds; self.devices = devices
        }
    }

    public struct Files: Codable, Sendable, Equatable {
        /// QEMU's trace, in order (several with --rotate or --flight-recorder).
        public var trace: [String]
        public var qmpEvents: String
        @NullEncoded public var hostKernelLog: String?
        /// The host's block_rq_error tracepoint lines, as trace_pipe printed them.
        @NullEncoded public var hostBlockErrors: String?
        public var blockStats: String
        public var queryBlock: String
        @NullEncoded public var qemuCommandLine: String?
        public init(trace: [String], qmpEvents: String, hostKernelLog: String?, hostBlockErrors: String? = nil,
                    blockStats: String, queryBlock: String, qemuCommandLine: String?) {
            self.trace = trace; self.qmpEvents = qmpEvents; self.hostKernelLog = hostKernelLog; self.hostBlockErrors = hostBlockErrors
            self.blockStats = blockStats; self.queryBlock = queryBlock; self.qemuCommandLine = qemuCommandLine
        }
    }

    public struct TraceEvents: Codable, Sendable, Equatable {
        public var turnedOn: [String]
        public var alreadyOn: [String]
        /// Events kvmscope reads that this QEMU does not have (another version, compiled out).
        public var notInThisQEMU: [String]
        public init(turnedOn: [String], alreadyOn: [String], notInThisQEMU: [String]) {
            self.turnedOn = turnedOn; self.alreadyOn = alreadyOn; self.notInThisQEMU = notInThisQEMU
        }
    }

    public struct Counts: Codable, Sendable, Equatable {
        public var traceLines: Int64 = 0
        public var traceBytesDropped: Int64 = 0
        public var qmpEvents = 0
        public var blockIOErrors = 0
        public var hostKernelMessages = 0
        public var blockStatsSnapshots = 0
        public init() {}
    }

    public static func load(directory: String) throws -> CaptureManifest? {
        let path = (directory as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try decode(data, path: path)
    }

    /// A manifest from its bytes: refused with one line when it is not one, or of a newer schema.
    public static func decode(_ data: Data, path: String) throws -> CaptureManifest {
        struct Header: Decodable { var schemaVersion: Int; var tool: String }
        guard let header = try? JSONDecoder().decode(Header.self, from: data), header.tool == "kvmscope record" else {
            throw KVMScopeError.unsupportedFormat(path: path, detail: "not a kvmscope capture manifest")
        }
        guard header.schemaVersion <= JSONContract.schemaVersion else {
            throw KVMScopeError.unsupportedFormat(path: path, detail: "capture schema \(header.schemaVersion) is newer than this kvmscope reads (\(JSONContract.schemaVersion))")
        }
        let m: CaptureManifest
        do { m = try JSONDecoder().decode(CaptureManifest.self, from: data) } catch {
            throw KVMScopeError.unsupportedFormat(path: path, detail: "not a kvmscope capture manifest (\(error))")
        }
        // Every file is one in the capture directory: a name, never a path out of it.
        let f = m.files
        let names = f.trace + [f.qmpEvents, f.blockStats, f.queryBlock] + [f.hostKernelLog, f.hostBlockErrors, f.qemuCommandLine].compactMap { $0 }
        guard f.trace.count <= 100_000, (m.hostBlockTrace?.devices.count ?? 0) <= 65_536, names.allSatisfy({ !$0.isEmpty && !$0.contains("/") && $0 != "." && $0 != ".." && !$0.contains("\0") }) else {
            throw KVMScopeError.unsupportedFormat(path: path, detail: "a capture manifest naming files outside its directory")
        }
        return m
    }

    /// Written when recording starts (`stopReason` "recording": a capture whose record was
    /// killed says so) and rewritten in place at the end (ReservedFile).
    public func save(directory: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try ReservedFile.write(try enc.encode(self), to: (directory as NSString).appendingPathComponent(Self.fileName), reserve: 64 << 10)
    }

    static func now() -> Double {
        var ts = timespec(); clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec / 1000) / 1e6
    }
}
