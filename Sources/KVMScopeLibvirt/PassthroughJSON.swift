import Foundation
import KVMScopeLive

/// The JSON that crosses libvirt's QMP passthrough, both ways.
enum PassthroughJSON {
    /// The command line virDomainQemuMonitorCommand sends: `{"execute": …, "arguments": …}`.
    /// No `id`: libvirt's monitor adds its own (src/qemu/qemu_monitor_json.c
    /// qemuMonitorJSONCommandWithFd) and matches the reply itself.
    static func command(_ name: String, arguments: [String: Any]?) throws -> String {
        var message: [String: Any] = ["execute": name]
        if let arguments { message["arguments"] = arguments }
        let data = try JSONSerialization.data(withJSONObject: message, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// QEMU's reply as libvirt hands it back: the whole reply object, an `error` one included
    /// (libvirt returns it as text rather than failing the call:
    /// qemuMonitorJSONArbitraryCommand). Decoded as QMPSocketMonitor decodes a reply.
    static func reply(_ text: String, command: String, qemuVersion: String) throws -> Any {
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw QMPError.badReply(command: command, detail: "not a JSON object")
        }
        return try qmpReturnValue(obj, command: command, qemuVersion: qemuVersion)
    }

    /// A QMP event as libvirt's monitor-event callback gives it (the name, QEMU's timestamp,
    /// the `data` member re-serialized by libvirt, or none), put back into the line QEMU sent:
    /// `{"timestamp": {"seconds": S, "microseconds": U}, "event": NAME, "data": {…}}` — the
    /// member order of qapi/qmp-event.c qmp_event_build_dict, so a capture's qmp.jsonl has the
    /// same lines whichever way it was recorded. `data` is libvirt's text as it came (libvirt
    /// re-serializes it compactly: `{"device":"drive0",…}` where QEMU writes `"device": "drive0"`).
    /// nil for what is not an event (no name, data that is not a JSON object).
    static func event(name: String, seconds: Int64, microseconds: UInt32, details: String?) -> QMPMessage? {
        guard !name.isEmpty, name.utf8.count <= 256,
              let nameJSON = try? JSONSerialization.data(withJSONObject: [name], options: [.fragmentsAllowed]) else { return nil }
        // ["NAME"] → "NAME" (the string literal, escaped as JSON escapes it).
        let quoted = String(decoding: nameJSON.dropFirst().dropLast(), as: UTF8.self)
        var object: [String: Any] = ["event": name, "timestamp": ["seconds": Int(seconds), "microseconds": Int(microseconds)]]
        var line = "{\"timestamp\": {\"seconds\": \(seconds), \"microseconds\": \(microseconds)}, \"event\": \(quoted)"
        if let details {
            guard let data = (try? JSONSerialization.jsonObject(with: Data(details.utf8))) as? [String: Any] else { return nil }
            object["data"] = data
            line += ", \"data\": " + details
        }
        line += "}"
        return QMPMessage(line: Array(line.utf8), object: object)
    }

    /// The version string a QMP greeting gives (`7.2.22 (Debian …)`), from `query-version`'s
    /// return, which has the same `qemu`/`package` members.
    static func version(fromQueryVersion value: Any) -> String? {
        guard let v = value as? [String: Any], let q = v["qemu"] as? [String: Any],
              let major = q["major"] as? Int, let minor = q["minor"] as? Int, let micro = q["micro"] as? Int else { return nil }
        let package = (v["package"] as? String).map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return "\(major).\(minor).\(micro)" + (package.isEmpty ? "" : " (\(package))")
    }
}
