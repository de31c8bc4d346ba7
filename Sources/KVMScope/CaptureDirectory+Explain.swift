import Foundation

extension ExplainSession {
    /// The inputs of a `kvmscope record` capture: each file in the role its capture.json gives
    /// it (never guessed from content, so block-stats snapshots are never taken for QMP events),
    /// trace segments read in order as one trace. Empty files are left out with a note.
    public static func addInputs(ofCapture manifest: CaptureManifest, directory: String, to inputs: inout Inputs) throws {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        func size(_ name: String) -> Int64 {
            ((try? FileManager.default.attributesOfItem(atPath: path(name)))?[.size] as? NSNumber)?.int64Value ?? 0
        }
        // A file capture.json names that is not there (deleted, not copied with the rest) is not
        // "recorded nothing": say so, whatever its role.
        let named = manifest.files.trace + [manifest.files.qmpEvents] + [manifest.files.hostKernelLog, manifest.files.hostBlockErrors,
                                                                         manifest.files.qemuCommandLine].compactMap { $0 }
        for n in named where !FileManager.default.fileExists(atPath: path(n)) {
            inputs.notes.append("\(path(n)): named in \(CaptureManifest.fileName) but missing from the capture directory: not read")
        }
        let segments = manifest.files.trace.filter { size($0) > 0 }
        if !segments.isEmpty, inputs.trace == nil {
            let first = path(segments[0])
            let name = segments.count == 1 ? first : "\(first) (+\(segments.count - 1) segments)"
            inputs.trace = ConcatenatedByteStream(name: name, knownSize: segments.map(size).reduce(0, +),
                                                  parts: segments.map { s in { try FileByteSource(path: path(s)) } })
            inputs.foundInDirectory.insert(name)
        } else if segments.isEmpty, manifest.files.trace.contains(where: { FileManager.default.fileExists(atPath: path($0)) }) {
            inputs.notes.append("\(path(manifest.files.trace.first ?? "trace.log")): no trace lines were recorded (no disk I/O on the VM while recording)")
        }
        if inputs.qmp == nil, size(manifest.files.qmpEvents) > 0 {
            inputs.qmp = try FileByteSource(path: path(manifest.files.qmpEvents))
        }
        if inputs.hostLog == nil, let h = manifest.files.hostKernelLog, size(h) > 0 {
            inputs.hostLog = try FileByteSource(path: path(h))
            inputs.foundInDirectory.insert(path(h))
            inputs.hostLogOnQEMUClock = manifest.hostKernelClock == "calibrated"
        }
        // The tracepoint's recording counts even when empty: with nothing lost, no failed host
        // block request is evidence too.
        if inputs.hostBlockTrace == nil, let b = manifest.files.hostBlockErrors, let t = manifest.hostBlockTrace,
           FileManager.default.fileExists(atPath: path(b)), t.wallOffsetMicroseconds == nil {
            // Its stamps are the trace clock's; the host log's are the wall clock: not joined by guess.
            inputs.notes.append("\(path(b)): record could not calibrate its trace clock (its trace_marker line was not read back): not used")
        } else if inputs.hostBlockTrace == nil, let b = manifest.files.hostBlockErrors, let t = manifest.hostBlockTrace,
           FileManager.default.fileExists(atPath: path(b)) {
            inputs.hostBlockTrace = BlockTracepointRecording(
                stream: try FileByteSource(path: path(b)),
                context: BlockTracepointContext(deviceNames: t.devices, wallOffsetMicroseconds: t.wallOffsetMicroseconds),
                complete: t.lostRecords == 0)
            inputs.foundInDirectory.insert(path(b))
        }
        if inputs.qemuCommandLine == nil, let c = manifest.files.qemuCommandLine, size(c) > 0 {
            inputs.qemuCommandLine = try FileByteSource(path: path(c))
        }
        if manifest.traceTimestamps == "arrival" {
            inputs.notes.append("\(path(CaptureManifest.fileName)): QEMU ran without -msg timestamp=on; record stamped its trace lines when it read them (within \(Int(manifest.arrivalResolutionSeconds * 1000)) ms)")
        }
        if inputs.isEmpty {
            throw KVMScopeError.unsupportedFormat(path: directory, detail: "this capture recorded no trace lines and no QMP events (\(manifest.stopReason): \(manifest.stopDetail)): nothing to explain")
        }
    }
}
