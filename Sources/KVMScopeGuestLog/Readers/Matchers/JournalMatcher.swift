/// jbd/jbd2 journal messages (fs/jbd2/journal.c, fs/jbd2/commit.c, fs/jbd/journal.c):
///
///   `Aborting journal on device %s.`                                      jbd2_journal_abort / jbd
///   `JBD2: I/O error when updating journal superblock for %s.`            6.2+
///   `JBD2: Error %d detected when updating journal superblock for %s.`    3.x–6.1
///   `JBD2: I/O error detected when updating journal superblock for %s.`   ≤2.6.3x (jbd: `JBD: ...`)
///   `JBD2: Detected IO errors while flushing file data on %s`            commit.c
///
/// jbd2 names the journal `%pg-%lu` (device and journal inode: `vda-8`; ≤2.6.3x `sdb1:8`);
/// the device is what the report is about.
enum JournalMatcher {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        if line.matches("Aborting journal on device ", at: s) {
            guard let dev = journalDevice(line, s + 27, jbd2: true) else { return .malformed }
            return event(ctx, .jbd2, dev, .journalAborted)
        }
        let kind: FilesystemKind
        var i: Int
        if line.matches("JBD2: ", at: s) { kind = .jbd2; i = s + 6 }
        else if line.matches("JBD: ", at: s) { kind = .jbd; i = s + 5 }
        else { return .noMatch }
        if let hit = line.find("when updating journal superblock for ", from: i) {
            var code: Int? = nil
            if line.matches("Error ", at: i), let (v, _) = line.signedDecimal(at: i + 6) { code = Int(v) }
            guard let dev = journalDevice(line, hit + 37, jbd2: kind == .jbd2) else { return .malformed }
            return event(ctx, kind, dev, .journalSuperblockWriteError(code: code))
        }
        if let hit = line.find("while flushing file data on ", from: i) {
            i = hit + 28
            guard let dev = journalDevice(line, i, jbd2: kind == .jbd2) else { return .malformed }
            return event(ctx, kind, dev, .journalDataFlushError)
        }
        return .noMatch
    }

    /// `vda-8.` → `vda`, `sdb1:8` → `sdb1`, `dm-0-8` → `dm-0`; a plain `dm-3` (external journal) stays.
    static func journalDevice(_ line: LineBytes, _ at: Int, jbd2: Bool) -> String? {
        guard var (name, _) = line.deviceName(at: at, stop: 0x20) else { return nil }
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty else { return nil }
        let u = Array(name.utf8)
        var k = u.count
        while k > 0, u[k - 1] >= 0x30, u[k - 1] <= 0x39 { k -= 1 }
        if k > 1, k < u.count {
            let sep = u[k - 1]
            let base = String(decoding: u[..<(k - 1)], as: UTF8.self)
            if sep == UInt8(ascii: ":") { return base }
            if sep == UInt8(ascii: "-"), jbd2, base != "dm", !base.isEmpty { return base }
        }
        return name
    }

    static func event(_ ctx: MatchContext, _ kind: FilesystemKind, _ device: String, _ k: FilesystemEventKind) -> MatchOutcome {
        .event(.filesystem(FilesystemEvent(filesystem: kind, device: device, kind: k, message: ctx.message,
                                           location: ctx.location)))
    }
}
