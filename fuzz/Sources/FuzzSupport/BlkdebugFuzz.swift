import KVMScope

/// blkdebug rules files: reader → checker (as `blkdebug check` for QEMU and for kvmscope) →
/// report JSON → the rule engine that `io --rules` and `nbd serve --rules` run.
public enum BlkdebugFuzz {
    public static func run(_ bytes: [UInt8]) {
        let result = BlkdebugConfigReader().parse(bytes, file: "fuzz.cfg")
        let config = result.config
        var diagnostics = result.diagnostics
        for target in [BlkdebugChecker.Target.qemu(.raw), .kvmscope] {
            diagnostics += BlkdebugChecker(target: target, imageSize: 1 << 20).check(config)
        }
        for d in diagnostics {
            if let l = d.location?.line { FuzzCheck.require(l >= 1, "blkdebug diagnostic at line \(l)") }
        }
        if FuzzCheck.thorough(bytes) {
            FuzzCheck.roundTrips(config, "blkdebug config")
            let report = BlkdebugCheckReport(file: "fuzz.cfg", config: config, diagnostics: diagnostics)
            let json = FuzzCheck.json(report, "blkdebug check report")
            _ = BlkdebugCheckRenderer.text(report, diagnostics: diagnostics, style: .plain)
            let again = BlkdebugConfigReader().parse(bytes, file: "fuzz.cfg")
            FuzzCheck.require(again.config == config,
                              "blkdebug reader: same input gave a different config: \(config) then \(again.config)")
            FuzzCheck.require(again.diagnostics == result.diagnostics,
                              "blkdebug reader: same input gave different diagnostics: \(FuzzCheck.firstDifference(result.diagnostics, again.diagnostics))")
            FuzzCheck.require(FuzzCheck.json(BlkdebugCheckReport(file: "fuzz.cfg", config: config, diagnostics: diagnostics), "blkdebug check report") == json,
                              "blkdebug check report: same input gave different JSON")
        }

        // The engine with a fixed clock and seed: a few requests of every type over the
        // image and at its edges; decisions must name a rule that exists.
        let engine = FaultRuleEngine(config: config, seed: 1, clock: { 0 })
        for offset: Int64 in [0, 512, 4096, (1 << 20) - 512, Int64.max - 511] {
            for iotype in BlkdebugIOType.allCases {
                if let d = engine.check(offset: offset, bytes: 512, iotype: iotype) {
                    FuzzCheck.require(d.ruleIndex >= 0 && d.ruleIndex < config.injectErrors.count,
                                      "fault engine: decision names rule \(d.ruleIndex) of \(config.injectErrors.count)")
                }
            }
        }
        for event in BlkdebugEvent.allCases.prefix(8) { engine.fire(event) }
        FuzzCheck.require(engine.state >= 0, "fault engine: negative state")

        // kvmscope's sections: every operation at the image's edges and beyond, a write that
        // remaps, and bit flips on a 4 KiB read; faults come from sections that exist.
        let sections = config.kvmscope
        guard !sections.isEmpty else { return }
        var now = 0.0
        let extra = KvmscopeFaultEngine(sections: sections, clock: { now }, fileExists: { $0.count % 2 == 0 })
        let lines = Set(sections.locations.map(\.location.line))
        var buffer = [UInt8](repeating: 0x5a, count: 4096)
        for offset: Int64 in [0, 512, 4097, (1 << 20) - 512, Int64.max - 511, -1] {
            for op in [BlockOperation.read, .write, .writeZeroes, .discard, .flush] {
                let d = extra.decide(op, offset: offset, length: 4096)
                for f in d.faults { FuzzCheck.require(lines.contains(f.rule.location.line), "kvmscope engine: fault from no section") }
                if d.errno == 0 && op == .write { extra.written(offset: offset, length: 4096) }
                now += 7.5
            }
            let faults = buffer.withUnsafeMutableBytes { extra.flipBits(offset: offset, buffer: $0) }
            FuzzCheck.require(faults.allSatisfy { $0.bitsFlipped > 0 && $0.bitsFlipped <= 4096 * 8 }, "kvmscope engine: bit count")
        }
        for (i, set) in extra.badSectors.enumerated() {
            FuzzCheck.require(set.sectorCount <= SectorRangeSet(sections.badBlocks[i].sectors).sectorCount, "bad blocks grew")
        }
    }
}
