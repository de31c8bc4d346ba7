import KVMScope

/// The host layer's readers: the host kernel log (as `kvmscope host` reads it), QEMU's command
/// line (as `explain --qemu-cmdline` does) and saved mount tables (`explain --host-mounts`).
public enum HostLogFuzz {
    static func report(_ bytes: [UInt8]) -> HostKernelReport? {
        do {
            return try HostKernelSession.read(MemoryByteSource(bytes, name: "fuzz", maxChunk: 4096), detailLimit: 50)
        } catch let e as KVMScopeError {
            // The one refusal: no kernel message at all.
            guard case .usage = e else { FuzzCheck.require(false, "host log: unexpected error \(e)"); return nil }
            return nil
        } catch {
            FuzzCheck.require(false, "host log reader threw on a memory stream: \(error)")
            return nil
        }
    }

    public static func run(_ bytes: [UInt8]) {
        guard let r = report(bytes) else { return }
        let i = r.input
        FuzzCheck.require(i.bytes == Int64(bytes.count), "host stats: bytes \(i.bytes) != input \(bytes.count)")
        FuzzCheck.require(i.kernelMessages <= i.lines, "host stats: more kernel messages than lines")
        FuzzCheck.require(r.findings.count <= r.findingsTotal, "host report: more findings listed than counted")
        FuzzCheck.require(r.kinds.values.reduce(0, +) == r.findingsTotal, "host report: kinds do not add up to the findings")
        for f in r.findings { FuzzCheck.require(f.line >= 1 && f.line <= i.lines, "host finding at line \(f.line) of \(i.lines)") }
        guard FuzzCheck.thorough(bytes) else { return }
        let json = FuzzCheck.json(r, "host report")
        _ = HostReportRenderer.text(r)
        FuzzCheck.require(report(bytes).map { FuzzCheck.json($0, "host report") } == json, "host report: same input gave different JSON")
    }
}

public enum QEMUCommandLineFuzz {
    public static func run(_ bytes: [UInt8]) {
        let args: [String]
        do {
            args = try QEMUCommandLineReader.arguments(in: bytes, name: "fuzz")
        } catch is QEMUCommandLineReader.Failure {
            return
        } catch {
            FuzzCheck.require(false, "command line reader: unexpected error \(error)")
            return
        }
        let map = QEMUDiskMap(arguments: args)
        let json = FuzzCheck.json(map, "disk map")
        FuzzCheck.require(FuzzCheck.json(QEMUDiskMap(arguments: args), "disk map") == json, "disk map: same arguments gave different JSON")
        for d in map.disks { _ = HostImageLocator.offsetsMapDirectly(d) }
        if FuzzCheck.thorough(bytes) {
            let again = try? QEMUCommandLineReader.arguments(in: bytes, name: "fuzz")
            FuzzCheck.require(again == args, "command line reader: same input gave different arguments")
        }
    }
}

public enum HostMountsFuzz {
    public static func run(_ bytes: [UInt8]) {
        var table = HostMountTable()
        do {
            try HostMountTableReader.read(MemoryByteSource(bytes, name: "fuzz", maxChunk: 4096), into: &table)
        } catch is HostMountTableReader.NotAMountTable {
            return
        } catch {
            FuzzCheck.require(false, "mount table reader: unexpected error \(error)")
            return
        }
        for path in ["/", "/var/lib/libvirt/images/vm.qcow2", "/tmp/x", "relative"] {
            if let loc = table.locate(path, from: "fuzz") {
                FuzzCheck.require(path.hasPrefix("/"), "mount table: located a relative path")
                FuzzCheck.require(loc.device != nil && loc.extents.isEmpty, "mount table: located \(path) without a device, or with extents")
            }
        }
    }
}
