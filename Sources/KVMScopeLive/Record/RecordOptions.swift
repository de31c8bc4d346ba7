import Foundation
import KVMScopeCore
import KVMScopeTrace

/// How `kvmscope record` records (the CLI's flags, checked there).
public struct RecordOptions: Sendable {
    public var outputDirectory: String
    /// Stop after this long; nil: until Ctrl-C/SIGTERM, the VM's shutdown or the command's end.
    public var duration: Double?
    /// `--rotate SIZE,COUNT`: trace segments of SIZE bytes, the last COUNT kept.
    public var rotateBytes: Int?
    public var rotateKeep: Int?
    /// `--flight-recorder SIZE`: only the last SIZE of trace is kept until the first failure,
    /// then `afterSeconds` more are recorded and recording stops.
    public var flightRecorderBytes: Int?
    public var afterSeconds: Double = 30
    /// `query-blockstats` snapshot interval.
    public var statsInterval: Double = 1
    /// Also record the host kernel's messages (/dev/kmsg).
    public var hostKernel = true
    public var kmsgPath = "/dev/kmsg"
    /// Feed the trace to the request tracker as it is recorded and report each failure.
    public var live = false
    /// Trace events to turn on: every event `trace` and `explain` read.
    public var events: Set<String> = TraceSession.analysedEventNames
    /// SIGINT/SIGTERM stop the recording (`record`); false where the caller owns those signals
    /// and stops the recording through `shouldStop` (`watch --auto-record`).
    public var handlesSignals = true
    public init(outputDirectory: String) { self.outputDirectory = outputDirectory }
}

/// What `record` reports as it goes (rendered by RecordRenderer, text or JSON Lines).
public enum RecordNotice {
    /// Attached: what was found and turned on.
    case attached(qemu: String, pid: Int32?, devices: [String], turnedOn: Int, alreadyOn: Int, timestamps: String, missing: [String])
    /// A request failed, as the trace showed it.
    case failure(VirtioBlkRequestTracker.Notice)
    /// A QMP event worth a line (BLOCK_IO_ERROR, STOP, RESUME, SHUTDOWN, …): the event and its wall time.
    case event(name: String, time: Double?, data: [String: String])
    /// Something the user must know about what is (not) being captured.
    case warning(String)
    /// Every second: trace lines and failures so far.
    case status(seconds: Double, traceLines: Int64, failures: Int, blockIOErrors: Int)
    /// Recording ended and the VM was restored (or could not be).
    case stopped(CaptureManifest)
}

extension RecordNotice {
    /// The line for a QMP event: its name, QEMU's timestamp, its scalar data fields.
    public static func qmpEvent(_ m: QMPMessage) -> RecordNotice {
        var time: Double?
        if let ts = m.object["timestamp"] as? [String: Any], let s = ts["seconds"] as? Int, let us = ts["microseconds"] as? Int {
            time = Double(s) + Double(us) / 1e6
        }
        var data: [String: String] = [:]
        for (k, v) in m.data where !(v is [Any]) && !(v is [String: Any]) { data[k] = "\(v)" }
        return .event(name: m.eventName ?? "?", time: time, data: data)
    }
}
