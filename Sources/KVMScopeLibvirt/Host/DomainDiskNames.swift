import Foundation

/// The names QEMU knows a libvirt domain's disks by, each mapped to the disk's target (`vda`),
/// the name libvirt's statistics, `virsh domblklist` and the other libvirt exporters use — so a
/// BLOCK_IO_ERROR (which carries QEMU's names) and the disk's counters share one `device` label.
///
/// From the live domain XML, per `<disk>`: `<target dev=…>`, `<alias name=…>` (the device's
/// qdev id), and the `index` of its `<source>` and every `<backingStore>`. QEMU's names follow:
/// - the qdev id (the alias) and its QOM path `/machine/peripheral/ALIAS[/virtio-backend]`
///   (BLOCK_IO_ERROR's `qom-path`, query-blockstats' `qdev`);
/// - `drive-ALIAS`, the BlockBackend name of the -drive era (src/qemu/qemu_alias.c
///   qemuAliasDiskDriveFromDisk);
/// - `libvirt-N-format`, `libvirt-N-storage` (and `libvirt-N-slice-sto`), the -blockdev node
///   names of the image with index N (src/qemu/qemu_block.c), which BLOCK_IO_ERROR's `node-name` carries.
/// The scan reads libvirt's own formatter's output (attributes in single quotes, XML-escaped:
/// src/conf/domain_conf.c), nothing else; a disk without a target is left out.
public struct DomainDiskNames: Equatable, Sendable {
    /// QEMU's name → target.
    public var aliases: [String: String]
    public var targets: Set<String>

    public init(aliases: [String: String] = [:], targets: Set<String> = []) {
        self.aliases = aliases; self.targets = targets
    }

    /// Longest XML scanned (a domain's XML is a few KiB; bounds what a hostile daemon can cost).
    static let maxXMLBytes = 16 << 20

    public init(domainXML xml: String) {
        self.init()
        guard xml.utf8.count <= Self.maxXMLBytes else { return }
        var rest = Substring(xml)
        while let start = rest.range(of: "<disk ") {
            let tail = rest[start.upperBound...]
            guard let end = tail.range(of: "</disk>") else { break }
            add(disk: tail[..<end.lowerBound])
            rest = tail[end.upperBound...]
        }
    }

    private mutating func add(disk: Substring) {
        guard let target = Self.attribute("dev", of: "<target ", in: disk), !target.isEmpty else { return }
        targets.insert(target)
        if let alias = Self.attribute("name", of: "<alias ", in: disk), !alias.isEmpty {
            for name in [alias, "drive-" + alias, "/machine/peripheral/" + alias, "/machine/peripheral/" + alias + "/virtio-backend"] {
                aliases[name] = target
            }
        }
        var scan = disk
        while let r = scan.range(of: " index='") {
            let digits = scan[r.upperBound...].prefix { $0.isASCII && $0.isNumber }
            if !digits.isEmpty, digits.count <= 9, scan[r.upperBound...].dropFirst(digits.count).first == "'" {
                for suffix in ["format", "storage", "slice-sto"] { aliases["libvirt-\(digits)-\(suffix)"] = target }
            }
            scan = scan[r.upperBound...]
        }
    }

    /// The value of `name='…'` in the first element starting with `element` in `text`.
    static func attribute(_ name: String, of element: String, in text: Substring) -> String? {
        guard let e = text.range(of: element) else { return nil }
        let tag = text[e.upperBound...].prefix { $0 != ">" }
        guard let a = tag.range(of: " " + name + "='") ?? (tag.hasPrefix(name + "='") ? tag.range(of: name + "='") : nil) else { return nil }
        let value = tag[a.upperBound...].prefix { $0 != "'" }
        return unescape(String(value))
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&apos;", with: "'").replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
