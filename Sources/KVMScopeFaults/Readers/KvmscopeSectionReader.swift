import Foundation

/// Keys of kvmscope's own sections (Model/KvmscopeFaultSections.swift). Same line syntax as the
/// blkdebug sections (QEMU's -readconfig dialect), so one file holds both kinds of rules.
extension BlkdebugConfigReader {
    static let kvmscopeSectionKeys: [String: [String]] = [
        "error-rate": ["rate", "read-rate", "write-rate", "zero-rate", "trim-rate", "flush-rate", "errno", "file", "seed"],
        "delay": ["read", "write", "zero", "trim", "flush"],
        "stall": ["iotype", "sector", "after", "once", "release-file", "timeout"],
        "bad-blocks": ["sectors", "mode", "errno"],
        "bit-flips": ["mode", "probability", "stuck-probability", "seed"],
        "flakey": ["up", "down", "mode", "errno", "drop-writes"],
        "rate": ["rate", "connection-rate"],
    ]

    /// Ranges a `sectors` list may hold: a bad-block list is typed by hand, not generated.
    static let maxBadBlockRanges = 100_000

    func buildKvmscopeSection(_ section: Section, file: String, into out: inout KvmscopeFaultSections,
                              diags: inout [RuleDiagnostic]) {
        let known = Self.kvmscopeSectionKeys[section.group] ?? []
        let here = RuleLocation(file: file, line: section.line)
        var map: [String: Entry] = [:]
        var failed = false
        func bad(_ e: Entry, _ message: String, hint: String? = nil) {
            diags.append(RuleDiagnostic(.error, "bad-value", at: RuleLocation(file: file, line: e.line), message, hint: hint))
            failed = true
        }
        for e in section.entries {
            guard known.contains(e.key) else {
                var hint = "[\(section.group)] takes " + known.joined(separator: ", ")
                if let close = known.min(by: { editDistance($0, e.key) < editDistance($1, e.key) }), editDistance(close, e.key) <= 2 {
                    hint = "did you mean '\(close)'?"
                }
                diags.append(RuleDiagnostic(.error, "unknown-key", at: RuleLocation(file: file, line: e.line),
                    "[\(section.group)] has no key '\(e.key)'", hint: hint))
                failed = true
                continue
            }
            if let earlier = map[e.key] {
                diags.append(RuleDiagnostic(.warning, "duplicate-key", at: RuleLocation(file: file, line: e.line),
                    "'\(e.key)' is set twice in this section (also line \(earlier.line)): the last value is used"))
            }
            map[e.key] = e
        }
        func probability(_ key: String) -> Double? {
            guard let e = map[key] else { return nil }
            if let p = Self.parseProbability(e.value) { return p }
            bad(e, "'\(key)' must be a probability from 0 to 1, a percentage (\"10%\") or N:M (\"1:1000\"), not '\(e.value)'")
            return nil
        }
        func duration(_ key: String) -> UInt64? {
            guard let e = map[key] else { return nil }
            if let d = Self.parseDuration(e.value) { return d }
            bad(e, "'\(key)' must be a duration like \"20ms\", \"1.5s\", \"500us\" (a bare number is seconds), not '\(e.value)'")
            return nil
        }
        func count(_ key: String) -> UInt64? {
            guard let e = map[key] else { return nil }
            if let n = UInt64(e.value.trimmingCharacters(in: .whitespaces)) { return n }
            bad(e, "'\(key)' must be a whole number (0 or more), not '\(e.value)'")
            return nil
        }
        func errnoValue() -> Int32 {
            guard let e = map["errno"] else { return 5 }
            let t = e.value.trimmingCharacters(in: .whitespaces)
            if let n = Int32(t), n > 0, n < 4096 { return n }
            if let entry = ErrnoTable.standard.entry(name: t.uppercased()), entry.number > 0, entry.number < 4096 {
                return Int32(entry.number)
            }
            bad(e, "'errno' must be a positive errno number or name (\"5\", \"EIO\", \"ENOSPC\"), not '\(e.value)'")
            return 5
        }
        func flag(_ key: String) -> Bool {
            guard let e = map[key] else { return false }
            switch e.value {
            case "on", "yes", "true", "y": return true
            case "off", "no", "false", "n": return false
            default: bad(e, "'\(key)' must be \"on\" or \"off\", not '\(e.value)'"); return false
            }
        }
        func path(_ key: String) -> String? {
            guard let e = map[key] else { return nil }
            if e.value.isEmpty { bad(e, "'\(key)' needs a file name"); return nil }
            return e.value
        }
        func choice<M: RawRepresentable & CaseIterable>(_ key: String, _ fallback: M) -> M where M.RawValue == String {
            guard let e = map[key] else { return fallback }
            if let m = M(rawValue: e.value) { return m }
            bad(e, "'\(key)' must be one of " + M.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") + ", not '\(e.value)'")
            return fallback
        }

        switch section.group {
        case "error-rate":
            let all = probability("rate") ?? 0
            let rates = FaultOperationKind.allCases.map { op -> Double in
                // nbdkit: error-rate covers pread, pwrite, trim and zero; flush only by its own key.
                probability("\(op.key)-rate") ?? (op == .flush ? 0 : all)
            }
            let errno = errnoValue()
            let seed = count("seed") ?? 1
            let trigger = path("file")
            if map["rate"] == nil && !FaultOperationKind.allCases.contains(where: { map["\($0.key)-rate"] != nil }) {
                diags.append(RuleDiagnostic(.error, "missing-rate", at: here,
                    "[error-rate] has no rate: like nbdkit's error filter without error-rate, it would do nothing",
                    hint: "add rate = \"10%\" (every operation) or read-rate, write-rate, zero-rate, trim-rate, flush-rate"))
                failed = true
            }
            if !failed {
                out.errorRates.append(ErrorRateSection(rates: rates, errno: errno, triggerFile: trigger, seed: seed, location: here, id: section.id))
            }
        case "delay":
            let delays = FaultOperationKind.allCases.map { duration($0.key) ?? 0 }
            if map.isEmpty {
                diags.append(RuleDiagnostic(.error, "missing-delay", at: here, "[delay] sets no delay",
                    hint: "add read = \"10ms\", write = ..., zero = ..., trim = ..., flush = ..."))
                failed = true
            }
            if !failed { out.delays.append(DelaySection(delays: delays, location: here, id: section.id)) }
        case "stall":
            var ops: UInt8 = 0
            if let e = map["iotype"] {
                for name in e.value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    if let op = FaultOperationKind.allCases.first(where: { $0.key == name }) { ops |= 1 << UInt8(op.rawValue) }
                    else { bad(e, "'\(name)' is not an operation: iotype takes read, write, zero, trim, flush (comma-separated)") }
                }
            } else {
                ops = 0x1f
            }
            var sector: Int64?
            if let n = count("sector") {
                if n <= UInt64(Int64.max / 512) { sector = Int64(n) }
                else { bad(map["sector"]!, "sector \(n) is beyond any disk (sector * 512 does not fit 63 bits)") }
            }
            let after = count("after") ?? 0
            let once = flag("once")
            let release = path("release-file")
            let timeout = duration("timeout")
            if release == nil && timeout == nil && !failed {
                diags.append(RuleDiagnostic(.error, "stall-forever", at: here,
                    "[stall] has neither release-file nor timeout: a stalled request would never be answered",
                    hint: "add release-file = \"/run/kvmscope-stall\" (delete it to release) or timeout = \"60s\""))
                failed = true
            }
            if !failed {
                out.stalls.append(StallSection(operations: ops, sector: sector, after: after > UInt64(Int.max) ? Int.max : Int(after), once: once,
                                               releaseFile: release, timeoutNanoseconds: timeout, location: here, id: section.id))
            }
        case "bad-blocks":
            let mode = choice("mode", BadBlocksSection.Mode.remapOnWrite)
            let errno = errnoValue()
            var ranges: [ClosedRange<Int64>] = []
            if let e = map["sectors"] {
                switch Self.parseSectorList(e.value) {
                case let .success(r): ranges = r
                case let .failure(why): bad(e, why.message)
                }
            } else {
                diags.append(RuleDiagnostic(.error, "missing-sectors", at: here, "[bad-blocks] has no 'sectors' list",
                    hint: "sectors = \"2048 4096-4103\" (512-byte sectors; a-b is a range)"))
                failed = true
            }
            if !failed { out.badBlocks.append(BadBlocksSection(sectors: ranges, mode: mode, errno: errno, location: here, id: section.id)) }
        case "bit-flips":
            let mode = choice("mode", BitFlipSection.Mode.stuckBits)
            let p = probability("probability") ?? 1e-8
            let stuck = probability("stuck-probability") ?? 1
            let seed = count("seed") ?? 1
            if !failed {
                out.bitFlips.append(BitFlipSection(mode: mode, probability: p, stuckProbability: stuck, seed: seed, location: here, id: section.id))
            }
        case "flakey":
            let up = duration("up"), down = duration("down")
            let mode = choice("mode", FlakeySection.Mode.error)
            let errno = errnoValue()
            for (key, v) in [("up", up), ("down", down)] where v == nil && map[key] == nil {
                diags.append(RuleDiagnostic(.error, "missing-interval", at: here, "[flakey] needs '\(key)' (dm-flakey's <\(key) interval>)"))
                failed = true
            }
            if let up, let down, up == 0 && down == 0 {
                bad(map["up"]!, "up and down cannot both be 0")
            }
            if mode == .dropWrites {
                if map["drop-writes"]?.value != FlakeySection.dropWritesConfirmation {
                    diags.append(RuleDiagnostic(.error, "drop-writes-unconfirmed", at: map["mode"].map { RuleLocation(file: file, line: $0.line) } ?? here,
                        "mode drop-writes acknowledges writes and throws them away: the data is lost without an error",
                        hint: "if that is what you want, add drop-writes = \"\(FlakeySection.dropWritesConfirmation)\" to the section"))
                    failed = true
                }
            } else if let e = map["drop-writes"] {
                bad(e, "'drop-writes' confirms mode = \"drop-writes\", which this section does not use")
            }
            if !failed, let up, let down {
                out.flakeys.append(FlakeySection(upSeconds: Double(up) / 1e9, downSeconds: Double(down) / 1e9, mode: mode,
                                                 errno: errno, location: here, id: section.id))
            }
        case "rate":
            var overall: UInt64?, perConnection: UInt64?
            var failed = false
            for key in ["rate", "connection-rate"] {
                guard let e = map[key] else { continue }
                if let bps = Self.parseBitRate(e.value) {
                    if key == "rate" { overall = bps } else { perConnection = bps }
                } else {
                    failed = true
                    bad(e, "'\(key)' must be bits per second above 0, with an optional k, M or G (powers of 1024, as nbdkit's rate filter): \"10M\", not '\(e.value)'")
                }
            }
            if map["rate"] == nil && map["connection-rate"] == nil {
                diags.append(RuleDiagnostic(.error, "missing-rate", at: here, "[rate] has no 'rate' or 'connection-rate'",
                    hint: "rate = \"100M\" (bits per second for all clients together, like nbdkit's rate=100M) or connection-rate = \"10M\" (for each connection)"))
            } else if !failed {
                out.rates.append(RateSection(bitsPerSecond: overall ?? 0, connectionBitsPerSecond: perConnection, location: here, id: section.id))
            }
        default:
            break
        }
    }

    /// "100M" → 100 * 2^20 bits per second (nbdkit_parse_size's suffixes); at most 2^50.
    static func parseBitRate(_ s: String) -> UInt64? {
        var t = s.trimmingCharacters(in: .whitespaces)
        var scale: UInt64 = 1
        if let last = t.last, let i = "kKmMgG".firstIndex(of: last) {
            scale = [1 << 10, 1 << 10, 1 << 20, 1 << 20, 1 << 30, 1 << 30][
                "kKmMgG".distance(from: "kKmMgG".startIndex, to: i)]
            t.removeLast()
        }
        guard let n = UInt64(t), n > 0, n <= (1 << 50) / scale else { return nil }
        return n * scale
    }

    struct SectorListError: Error { var message: String }

    /// "2048 4096-4103, 9000": blank- or comma-separated sectors and inclusive ranges, merged
    /// into sorted disjoint ranges.
    static func parseSectorList(_ s: String) -> Swift.Result<[ClosedRange<Int64>], SectorListError> {
        let maxSector = Int64.max / 512
        var ranges: [ClosedRange<Int64>] = []
        let items = s.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" })
        guard !items.isEmpty else { return .failure(SectorListError(message: "'sectors' is empty: list sectors like \"2048 4096-4103\"")) }
        guard items.count <= maxBadBlockRanges else {
            return .failure(SectorListError(message: "'sectors' lists \(items.count) items; at most \(maxBadBlockRanges) (use ranges a-b)"))
        }
        for item in items {
            let parts = item.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count <= 2, let a = Int64(parts[0]), a >= 0, let b = parts.count == 2 ? Int64(parts[1]) : a, b >= 0 else {
                return .failure(SectorListError(message: "'\(item)' is not a sector number or a range a-b of sector numbers"))
            }
            guard a <= b else { return .failure(SectorListError(message: "range '\(item)' ends before it starts")) }
            guard b <= maxSector else { return .failure(SectorListError(message: "sector \(b) is beyond any disk (sector * 512 does not fit 63 bits)")) }
            ranges.append(a...b)
        }
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<Int64>] = []
        for r in ranges {
            if let last = merged.last, r.lowerBound <= last.upperBound + 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        return .success(merged)
    }
}
