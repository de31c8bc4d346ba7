/// What `blkdebug check` says about kvmscope's own sections: for QEMU they are errors (blkdebug
/// refuses the whole file: util/qemu-config.c finds no option group of that name), for kvmscope
/// (`--for-kvmscope`, and `kvmscope io`/`nbd serve` themselves) a note on what the section does,
/// plus the mistakes and dangers in them.
extension BlkdebugChecker {
    func kvmscopeSectionChecks(_ s: KvmscopeFaultSections) -> [RuleDiagnostic] {
        var out: [RuleDiagnostic] = []
        for (name, location) in s.locations {
            switch target {
            case .qemu:
                out.append(RuleDiagnostic(.error, "kvmscope-section", at: location,
                    "[\(name)] is a kvmscope section: QEMU's blkdebug refuses the file (\"There is no option group '\(name)'\"); kvmscope io and kvmscope nbd serve apply it",
                    hint: "check with --for-kvmscope if the file is for kvmscope; give QEMU a file without kvmscope's sections"))
            case .kvmscope:
                out.append(RuleDiagnostic(.note, "kvmscope-section", at: location,
                    "[\(name)] is a kvmscope section (QEMU's blkdebug would refuse the file): " + Self.sectionSummary(name)))
            }
        }
        for r in s.errorRates where r.rates.allSatisfy({ $0 == 0 }) {
            out.append(RuleDiagnostic(.warning, "rate-zero", at: r.location, "every rate is 0: this [error-rate] never fails a request"))
        }
        for f in s.flakeys where f.mode == .dropWrites {
            out.append(RuleDiagnostic(.warning, "drop-writes", at: f.location,
                "mode drop-writes: for \(Self.seconds(f.downSeconds)) of every \(Self.seconds(f.upSeconds + f.downSeconds)) writes are acknowledged and thrown away; the guest believes data is on the disk that is not, and the image is left inconsistent",
                hint: "run it on a copy of the image; mode = \"error-writes\" fails the writes instead"))
        }
        for b in s.badBlocks {
            if let size = imageSize, let last = b.sectors.last, last.upperBound * 512 >= size {
                out.append(RuleDiagnostic(.warning, "sector-beyond-image", at: b.location,
                    "sector \(last.upperBound) is beyond the end of the image (\(size / 512) sectors): no request can reach it"))
            }
        }
        for f in s.bitFlips where f.probability == 0 || f.stuckProbability == 0 {
            out.append(RuleDiagnostic(.warning, "probability-zero", at: f.location, "probability 0: this [bit-flips] never changes a bit"))
        }
        return out
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }

    static func sectionSummary(_ name: String) -> String {
        switch name {
        case "error-rate": return "each request fails with the given rate from a seeded generator (nbdkit's error filter)"
        case "delay": return "requests are answered late (nbdkit's delay filter)"
        case "stall": return "a matching request is carried out and its reply held back until the release file is deleted or the timeout passes"
        case "bad-blocks": return "reads of the listed sectors fail (dm-dust / null_blk bad blocks)"
        case "bit-flips": return "data read comes back with bits flipped; the image keeps the right data (nbdkit's evil filter)"
        case "flakey": return "the disk alternates between up and down intervals (dm-flakey)"
        case "rate": return "the data of reads and writes passes at that many bits per second: of all clients together (rate), of each connection (connection-rate) (nbdkit's rate filter)"
        default: return ""
        }
    }
}
