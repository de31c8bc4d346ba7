/// The same rules as QEMU command-line options: `-blockdev driver=blkdebug,...,inject-error.0.event=...`
/// (BlockdevOptionsBlkdebug), so a rules file can be turned into a command line without a file.
public enum BlockdevOptions {
    /// `image` is the node name of the protocol node below blkdebug.
    public static func blkdebug(_ config: BlkdebugConfig, image: String = "file0", nodeName: String = "blkdebug0") -> String {
        var parts = ["driver=blkdebug", "node-name=\(nodeName)", "image=\(image)"]
        for (i, r) in config.injectErrors.enumerated() {
            let p = "inject-error.\(i)."
            parts.append(p + "event=\(r.event.rawValue)")
            if r.state != 0 { parts.append(p + "state=\(r.state)") }
            if r.iotypeMask != BlkdebugIOType.defaultMask, let t = BlkdebugIOType.allCases.first(where: { $0.bit == r.iotypeMask }) {
                parts.append(p + "iotype=\(t.rawValue)")
            }
            parts.append(p + "errno=\(r.errno)")
            if let s = r.sector { parts.append(p + "sector=\(s)") }
            if r.once { parts.append(p + "once=on") }
            if r.immediately { parts.append(p + "immediately=on") }
        }
        for (i, r) in config.setStates.enumerated() {
            let p = "set-state.\(i)."
            parts.append(p + "event=\(r.event.rawValue)")
            if r.state != 0 { parts.append(p + "state=\(r.state)") }
            parts.append(p + "new_state=\(r.newState)")
        }
        return "-blockdev " + parts.joined(separator: ",")
    }

    /// Rules whose kvmscope-only keys cannot be expressed as QEMU options.
    public static func dropped(_ config: BlkdebugConfig) -> [InjectErrorRule] {
        config.injectErrors.filter { !$0.extensions.isEmpty }
    }
}
