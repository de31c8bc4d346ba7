import Foundation

/// The host's mounts and block devices as an admin saves them (`findmnt --json`, `lsblk
/// --json`, util-linux), read offline to say which host device holds an image when explain
/// does not run on the VM's host. util-linux names its JSON fields after its column names
/// (`target`, `source`, `fstype`, `maj:min`, `name`, `type`, `pkname`, `mountpoint` or, since
/// 2.37, `mountpoints`), nests child mounts and devices under `children`.
public struct HostMountTable: Sendable, Equatable {
    public struct Mount: Sendable, Equatable {
        public var target: String
        public var source: String
        public var fstype: String?
        public var majorMinor: String?
    }
    public struct BlockDevice: Sendable, Equatable {
        public var name: String
        public var majorMinor: String?
        public var type: String?
        /// The device it sits on (`pkname`, or the lsblk tree's parent): a partition's disk,
        /// a dm map's member.
        public var parents: [String]
        public var mountpoints: [String]
    }
    public var mounts: [Mount] = []
    public var devices: [BlockDevice] = []

    public init() {}

    /// The mount holding `path` (the longest target that is a path prefix of it).
    public func mount(holding path: String) -> Mount? {
        mounts.filter { m in
            m.target == "/" || path == m.target || path.hasPrefix(m.target.hasSuffix("/") ? m.target : m.target + "/")
        }.max { $0.target.count < $1.target.count }
    }

    /// Where `path` lives, as far as the tables say (no extents: those need the live host).
    public func locate(_ path: String, from: String) -> HostImageLocation? {
        guard path.hasPrefix("/"), let m = mount(holding: path) else { return nil }
        let name = m.source.hasPrefix("/dev/") ? String(m.source.dropFirst(5)) : nil
        let dev = devices.first { d in (name != nil && d.name == name) || (m.majorMinor != nil && d.majorMinor == m.majorMinor) }
        guard let deviceName = dev?.name ?? name else { return nil }
        var loc = HostImageLocation(path: path, majorMinor: dev?.majorMinor ?? m.majorMinor ?? "")
        loc.device = deviceName
        loc.from = from
        if let d = dev, d.type == "part", let parent = d.parents.first {
            loc.disk = parent   // the partition's start is not in these tables: sectors stay unmapped
        } else {
            loc.disk = deviceName
            if let d = dev, d.type != "disk" { loc.below = d.parents }
        }
        loc.extentsUnavailable = "read from saved mount tables, not on the host: no extents"
        return loc
    }
}

public enum HostMountTableReader {
    public static let maxBytes = 16 << 20

    public struct NotAMountTable: Error, CustomStringConvertible {
        public let source: String
        public var description: String { "\(source): not `findmnt --json` or `lsblk --json` output" }
    }

    /// Adds the mounts or devices of one saved file to `table`.
    public static func read(_ stream: ByteStream, into table: inout HostMountTable) throws {
        let data = try stream.readAll(limit: maxBytes) { NotAMountTable(source: stream.name) }
        guard let json = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
            throw NotAMountTable(source: stream.name)
        }
        if let fs = json["filesystems"] as? [Any] {
            func walk(_ list: [Any], depth: Int) {
                guard depth < 64 else { return }
                for case let m as [String: Any] in list {
                    if let t = m["target"] as? String, let s = m["source"] as? String {
                        table.mounts.append(.init(target: t, source: s, fstype: m["fstype"] as? String,
                                                  majorMinor: m["maj:min"] as? String))
                    }
                    if let c = m["children"] as? [Any] { walk(c, depth: depth + 1) }
                }
            }
            walk(fs, depth: 0)
        } else if let devs = json["blockdevices"] as? [Any] {
            func walk(_ list: [Any], parent: String?, depth: Int) {
                guard depth < 64 else { return }
                for case let d as [String: Any] in list {
                    guard let name = d["name"] as? String else { continue }
                    let points = ((d["mountpoints"] as? [Any]) ?? [d["mountpoint"] as Any]).compactMap { $0 as? String }
                    var parents = [parent, d["pkname"] as? String].compactMap { $0 }
                    parents = parents.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
                    table.devices.append(.init(name: name, majorMinor: d["maj:min"] as? String, type: d["type"] as? String,
                                               parents: parents, mountpoints: points))
                    for p in points where !table.mounts.contains(where: { $0.target == p }) {
                        table.mounts.append(.init(target: p, source: "/dev/" + name, fstype: nil, majorMinor: d["maj:min"] as? String))
                    }
                    if let c = d["children"] as? [Any] { walk(c, parent: name, depth: depth + 1) }
                }
            }
            walk(devs, parent: nil, depth: 0)
        } else {
            throw NotAMountTable(source: stream.name)
        }
    }
}
