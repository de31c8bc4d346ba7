import Foundation
import KVMScopeCore
import KVMScopeTrace

/// `record`'s live output: one line per failed request or VM event as it happens, a status
/// line each second (terminal only), and what was captured at the end; or the same as JSON
/// Lines (`--json`, one object per notice, `type` saying which).
public enum RecordRenderer {
    public static func text(_ notice: RecordNotice, style: TerminalStyle) -> String? {
        switch notice {
        case let .attached(qemu, pid, devices, on, already, stamps, missing):
            var s = "attached to QEMU \(qemu)\(pid.map { " (pid \($0))" } ?? ""): disks \(devices.isEmpty ? "none" : devices.joined(separator: ", ")); "
                + "\(on) trace events turned on, \(already) already on\n"
            if stamps == "arrival" {
                s += "note: QEMU runs without -msg timestamp=on, so its trace lines carry no time: kvmscope stamps each line when it reads it (within \(Int(VMRecorder.tick * 1000)) ms)\n"
            }
            for m in missing { s += style.yellow("not captured: \(m)") + "\n" }
            return s
        case let .failure(.failure(f)):
            // time, device, operation, sector+count, the errno decoded, what the guest was told.
            var line = "\(clock(f.time))  FAILED  \(f.operation.words)"
            if let sector = f.sector { line += " sector \(sector)+\(f.sectors ?? 0)" }
            line += " on device \(f.device): "
            if let name = f.errnoName { line += "\(name) \(f.errno.map(String.init) ?? "") \(f.errnoMessage ?? "")" } else { line += f.cause.rawValue }
            line += " → guest told \(f.guestStatus ?? "nothing yet") [\(f.cause.rawValue)]"
            return style.red(line) + "\n"
        case let .failure(.vmPaused(at, waiting)):
            var line = "\(clock(at))  VM PAUSED on an I/O error (werror/rerror=stop)"
            if !waiting.isEmpty { line += "; QEMU holds \(waiting.count) request\(waiting.count == 1 ? "" : "s") for a retry on `cont`" }
            return style.yellow(line) + "\n"
        case let .failure(.vmResumed(at, seconds)):
            return "\(clock(at))  VM RESUMED" + (seconds.map { String(format: " after %.3f s", $0) } ?? "") + "\n"
        case let .event(name, time, data):
            var line = "\(clock(time))  QMP \(name)"
            if name == "BLOCK_IO_ERROR" {
                let dev = data["device"].flatMap { $0.isEmpty ? nil : $0 } ?? data["node-name"] ?? "?"
                line += " \(dev) \(data["operation"] ?? "?")"
                if let reason = data["reason"] { line += ": " + (ErrnoTable.standard.entry(message: reason).map { "\($0.name) \($0.number) " } ?? "") + reason }
                line += ", action \(data["action"] ?? "?")"
                if data["nospace"] == "1" || data["nospace"] == "true" { line += " [no space]" }
                return style.red(line) + "\n"
            }
            if let reason = data["reason"] { line += " (\(reason))" }
            return line + "\n"
        case let .warning(text):
            return style.yellow("warning: \(text)") + "\n"
        case let .status(secs, lines, failures, blockErrors):
            return String(format: "recording %.0f s: %lld trace lines, %d failed requests, %d BLOCK_IO_ERROR", secs, lines, failures, blockErrors)
        case let .stopped(m):
            var s = "stopped (\(m.stopReason): \(m.stopDetail)); "
            s += m.restored ? "the VM is as it was (\(m.traceEvents.turnedOn.count) events turned off, log file restored)\n"
                : style.red("the VM was NOT fully restored: run `kvmscope record --restore -o DIR`") + "\n"
            s += "captured: \(m.counts.traceLines) trace lines in \(m.files.trace.joined(separator: ", ")), \(m.counts.qmpEvents) QMP events (\(m.counts.blockIOErrors) BLOCK_IO_ERROR), "
                + "\(m.counts.blockStatsSnapshots) block-stats snapshots"
                + (m.files.hostKernelLog != nil ? ", \(m.counts.hostKernelMessages) host kernel messages" : "") + "\n"
            if m.counts.traceBytesDropped > 0 { s += "flight recorder: \(m.counts.traceBytesDropped) bytes of older trace dropped\n" }
            for x in m.missing { s += style.yellow("not captured: \(x)") + "\n" }
            return s
        }
    }

    /// `17:09:31.271564` (UTC, as explain's timeline), or `-` without a time.
    static func clock(_ t: Double?) -> String {
        guard let t, t.isFinite, t >= 0, t < 253402300800 else { return "-" }
        let micros = Int64((t * 1_000_000).rounded())
        var secs = time_t(micros / 1_000_000)
        var tm = tm(); gmtime_r(&secs, &tm)
        return String(format: "%02d:%02d:%02d.%06lld", tm.tm_hour, tm.tm_min, tm.tm_sec, micros % 1_000_000)
    }

    public static func json(_ notice: RecordNotice) -> String {
        var obj: [String: Any] = ["schemaVersion": JSONContract.schemaVersion]
        switch notice {
        case let .attached(qemu, pid, devices, on, already, stamps, missing):
            obj["type"] = "attached"; obj["qemuVersion"] = qemu; obj["qemuPid"] = pid.map { Int($0) } ?? NSNull()
            obj["devices"] = devices; obj["eventsTurnedOn"] = on; obj["eventsAlreadyOn"] = already
            obj["traceTimestamps"] = stamps; obj["missing"] = missing
        case let .failure(n):
            obj["type"] = "failure"
            switch n {
            case let .failure(f):
                obj["kind"] = "request-failed"; obj["time"] = f.time ?? NSNull(); obj["device"] = f.device
                obj["operation"] = f.operation.words; obj["sector"] = f.sector.map { NSNumber(value: $0) } ?? NSNull()
                obj["sectors"] = f.sectors.map { NSNumber(value: $0) } ?? NSNull(); obj["errno"] = f.errnoName ?? NSNull()
                obj["cause"] = f.cause.rawValue; obj["guestStatus"] = f.guestStatus ?? NSNull()
            case let .vmPaused(at, waiting):
                obj["kind"] = "vm-paused"; obj["time"] = at ?? NSNull(); obj["waiting"] = waiting.count
            case let .vmResumed(at, seconds):
                obj["kind"] = "vm-resumed"; obj["time"] = at ?? NSNull(); obj["pausedSeconds"] = seconds ?? NSNull()
            }
        case let .event(name, time, data):
            obj["type"] = "qmpEvent"; obj["event"] = name; obj["time"] = time ?? NSNull(); obj["data"] = data
        case let .warning(text):
            obj["type"] = "warning"; obj["message"] = text
        case let .status(secs, lines, failures, blockErrors):
            obj["type"] = "status"; obj["elapsedSeconds"] = secs; obj["traceLines"] = lines; obj["failures"] = failures
            obj["blockIOErrors"] = blockErrors
        case let .stopped(m):
            obj["type"] = "stopped"; obj["stopReason"] = m.stopReason; obj["stopDetail"] = m.stopDetail
            obj["restored"] = m.restored; obj["traceLines"] = m.counts.traceLines; obj["qmpEvents"] = m.counts.qmpEvents
            obj["blockIOErrors"] = m.counts.blockIOErrors; obj["missing"] = m.missing
        }
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
