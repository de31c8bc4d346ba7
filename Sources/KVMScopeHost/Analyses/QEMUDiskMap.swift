import Foundation

/// The disks a QEMU command line defines: `-drive` (key=value, `,,` for a literal comma),
/// `-blockdev` (JSON or dotted key=value), `-device` (which guest device uses which drive).
public struct QEMUDiskMap: Sendable, Equatable, Encodable {
    public var disks: [QEMUDiskConfig]
    /// Options kvmscope reads that it could not parse (counted, not guessed).
    public var unreadOptions: Int

    /// Disks and options beyond this are not kept (a command line has a handful).
    static let maxDisks = 256

    public init(arguments args: [String]) {
        var disks: [QEMUDiskConfig] = []
        var blockdevs: [[String: String]] = []
        var devices: [[String: String]] = []
        var unread = 0
        var i = 1
        while i < args.count {
            let opt = args[i].hasPrefix("--") ? String(args[i].dropFirst()) : args[i]
            let value = i + 1 < args.count ? args[i + 1] : nil
            switch opt {
            case "-drive":
                if let v = value, let kv = Self.keyValues(v) { disks.append(Self.drive(kv)) } else { unread += 1 }
                i += 2
            case "-blockdev":
                if let v = value, let kv = Self.json(v) ?? Self.keyValues(v) { blockdevs.append(kv) } else { unread += 1 }
                i += 2
            case "-device":
                // libvirt ≥ 7.x writes -device as JSON; older ones and people write key=value.
                if let v = value, let kv = Self.json(v) ?? Self.keyValues(v, firstIsDriver: true) { devices.append(kv) } else { unread += 1 }
                i += 2
            default:
                i += 1
            }
            if disks.count + blockdevs.count > Self.maxDisks { break }
        }
        // -blockdev: the node a -device names is the top; its `file` chain gives the drivers.
        let byNode = Dictionary(blockdevs.compactMap { b in b["node-name"].map { ($0, b) } }, uniquingKeysWith: { a, _ in a })
        for d in devices {
            guard let drive = d["drive"] else { continue }
            if let k = disks.firstIndex(where: { $0.id == drive }) {
                disks[k].device = d["driver"]
                if let w = d["werror"] { disks[k].werror = w }
                if let r = d["rerror"] { disks[k].rerror = r }
            } else if byNode[drive] != nil {
                var c = Self.blockdev(drive, byNode)
                c.device = d["driver"]
                c.id = d["id"]
                c.werror = d["werror"]
                c.rerror = d["rerror"]
                disks.append(c)
            }
        }
        self.disks = Array(disks.prefix(Self.maxDisks))
        unreadOptions = unread
    }

    /// The disk QMP calls `name` (its `device` or `node-name`); the only disk when there is one.
    public func disk(named name: String?) -> QEMUDiskConfig? {
        if let name, !name.isEmpty, let d = disks.first(where: { $0.names.contains(name) }) { return d }
        return disks.count == 1 ? disks[0] : nil
    }

    static func drive(_ kv: [String: String]) -> QEMUDiskConfig {
        var c = QEMUDiskConfig(id: kv["id"], nodeName: kv["node-name"])
        if let f = kv["file"] {
            // blkdebug:RULES:IMAGE, nbd:HOST:PORT[:exportname=E], nbd+unix:///E?socket=P, …
            if f.hasPrefix("blkdebug:") {
                c.drivers = ["blkdebug"]
                c.file = f.split(separator: ":", maxSplits: 2).dropFirst(2).first.map(String.init)
            } else if f.hasPrefix("nbd") {
                c.drivers = ["nbd"]
                c.server = f
            } else {
                c.file = f
            }
        }
        if let drv = kv["driver"] { c.drivers.insert(drv, at: 0) }
        if let fmt = kv["format"], !c.drivers.contains(fmt) { c.drivers.insert(fmt, at: 0) }
        if c.drivers.isEmpty { c.drivers = ["file"] }
        if kv["driver"] == "nbd" || kv["server.type"] != nil {
            c.server = Self.server(kv, prefix: "server.") ?? c.server
            c.export = kv["export"]
        }
        c.cache = kv["cache"]; c.aio = kv["aio"]
        c.werror = kv["werror"]; c.rerror = kv["rerror"]
        if let iface = kv["if"], iface != "none" { c.device = "if=\(iface)" }
        return c
    }

    static func server(_ kv: [String: String], prefix: String) -> String? {
        if let host = kv[prefix + "host"] { return host + (kv[prefix + "port"].map { ":\($0)" } ?? "") }
        if let path = kv[prefix + "path"] { return "unix:" + path }
        return nil
    }

    static func blockdev(_ node: String, _ byNode: [String: [String: String]]) -> QEMUDiskConfig {
        var c = QEMUDiskConfig(nodeName: node)
        var current = byNode[node]
        var visited: Set<String> = [node]
        // Down the `file` chain: a child node's name, or the child inline (file.driver=…).
        while let b = current, c.drivers.count < 8 {
            if let d = b["driver"] { c.drivers.append(d) }
            if let f = b["filename"] { c.file = f }
            if b["driver"] == "nbd" { c.server = server(b, prefix: "server."); c.export = b["export"] }
            if let direct = b["cache.direct"] { c.cache = ["true", "on", "1"].contains(direct) ? "direct" : "writeback" }
            if let aio = b["aio"] { c.aio = aio }
            if let child = b["file"] {
                current = visited.insert(child).inserted ? byNode[child] : nil
            } else {
                var inline: [String: String] = [:]
                for (k, v) in b where k.hasPrefix("file.") { inline[String(k.dropFirst(5))] = v }
                current = inline.isEmpty ? nil : inline
            }
        }
        return c
    }

    /// `a=b,c=d` with `,,` for a literal comma; the first bare word is the device driver
    /// (`-device virtio-blk-pci,drive=d0`). Nil for an empty or key-less string.
    static func keyValues(_ s: String, firstIsDriver: Bool = false) -> [String: String]? {
        var out: [String: String] = [:]
        var parts: [String] = []
        var cur = ""
        let it = Array(s)
        var k = 0
        while k < it.count {
            if it[k] == ",", k + 1 < it.count, it[k + 1] == "," { cur.append(","); k += 2; continue }
            if it[k] == "," { parts.append(cur); cur = ""; k += 1; continue }
            cur.append(it[k]); k += 1
        }
        parts.append(cur)
        for (n, p) in parts.enumerated() where !p.isEmpty {
            if let eq = p.firstIndex(of: "=") {
                out[String(p[..<eq])] = String(p[p.index(after: eq)...])
            } else if n == 0 && firstIsDriver {
                out["driver"] = p
            } else {
                out[p] = "on"
            }
        }
        return out.isEmpty ? nil : out
    }

    /// `-blockdev '{"driver":"file","filename":"/x","node-name":"n"}'` flattened to dotted keys
    /// (`file.driver`), as QEMU's keyval form writes them.
    static func json(_ s: String) -> [String: String]? {
        guard s.first == "{", let data = s.data(using: .utf8),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        var out: [String: String] = [:]
        func flatten(_ o: [String: Any], _ prefix: String, depth: Int) {
            guard depth < 8 else { return }
            for (k, v) in o {
                switch v {
                case let d as [String: Any]: flatten(d, prefix + k + ".", depth: depth + 1)
                case let s as String: out[prefix + k] = s
                case let n as NSNumber: out[prefix + k] = n.stringValue   // booleans read as 1/0
                default: continue
                }
            }
        }
        flatten(obj, "", depth: 0)
        return out
    }
}
