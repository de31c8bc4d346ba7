import Foundation
import KVMScopeQMP

/// A QMP event line as a monitor sent it, as KVMScopeQMP's `QMPEvent`: its name, QEMU's
/// timestamp (qapi/qmp-event.c: g_get_real_time() as `seconds` + `microseconds`) when that is a
/// plausible host clock reading (1970 to the end of year 9999, microseconds < 10^6; else nil,
/// as KVMScopeQMP's reader rejects it), and its data.
public enum LiveQMPEvent {
    public static func decode(_ line: [UInt8]) -> QMPEvent? {
        struct Wire: Decodable {
            struct Stamp: Decodable { let seconds: Double?; let microseconds: Double? }
            let event: String
            let data: JSONValue?
            let timestamp: Stamp?
        }
        guard let w = try? JSONDecoder().decode(Wire.self, from: Data(line)), !w.event.isEmpty, w.event.utf8.count <= 128 else { return nil }
        var time: Double?
        if let s = w.timestamp?.seconds, let us = w.timestamp?.microseconds, s.isFinite, s >= 0, s < 253_402_300_800,
           us.isFinite, us >= 0, us < 1e6 {
            time = s + us / 1e6
        }
        return QMPEvent(name: w.event, time: time, data: w.data, line: 0)
    }
}
