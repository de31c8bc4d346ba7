/// `INFO: task %s:%d blocked for more than %ld seconds.` (kernel/hung_task.c hung_task_info,
/// unchanged since 2.6.x). The comm (%s) may contain blanks and colons, so the pid is the number
/// after the last `:` before ` blocked for more than `.
enum HungTaskMatcher {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        guard line.matches("INFO: task ", at: s) else { return .noMatch }
        let nameStart = s + 11
        // TASK_COMM_LEN is 16 and a pid has at most 7 digits: the phrase is near.
        guard let phrase = line.find(" blocked for more than ", from: nameStart), phrase - nameStart <= 40 else {
            return .noMatch   // the other `INFO: task %s:%d is blocked on a mutex ...` lines (6.x)
        }
        var colon = phrase - 1
        while colon > nameStart, line[colon] != UInt8(ascii: ":") { colon -= 1 }
        guard colon > nameStart, let (pid, pe) = line.decimal(at: colon + 1), pe == phrase, pid <= UInt64(Int32.max),
              let (seconds, se) = line.decimal(at: phrase + 23), line.matches(" seconds", at: se)
        else { return .malformed }
        return .event(.hungTask(HungTaskEvent(task: line.string(nameStart..<colon), pid: Int(pid), blockedSeconds: seconds,
                                              location: ctx.location)))
    }
}

/// NVMe timeouts (drivers/nvme/host/pci.c nvme_timeout; dev_warn on the controller device, so
/// the prefix is `nvme nvme%d: `):
///   ≤6.x  `I/O %d QID %d timeout, aborting`, `I/O %d QID %d timeout, reset controller`,
///         `I/O %d QID %d timeout, disable controller`
///   later `I/O tag %d (%04x) opcode %#x (%s) QID %d timeout, aborting req_op:%s(%u) size:%u`
///         and `... QID %d timeout, reset controller` / `disable controller`
enum NVMeMatcher {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        guard line.matches("nvme nvme", at: s), let (_, ce) = line.decimal(at: s + 9), line.matches(": I/O ", at: ce)
        else { return .noMatch }
        let controller = line.string((s + 5)..<ce)
        var i = ce + 6
        if line.matches("tag ", at: i) { i += 4 }
        guard let (tag, _) = line.decimal(at: i), let q = line.find(" QID ", from: i), q - i <= 64,
              let (qid, qe) = line.decimal(at: q + 5), line.matches(" timeout, ", at: qe) else { return .noMatch }
        let what = qe + 10
        let kind: DeviceTimeoutKind
        if line.matches("aborting", at: what) { kind = .nvmeAbort }
        else if line.matches("reset controller", at: what) { kind = .nvmeControllerReset }
        else if line.matches("disable controller", at: what) { kind = .nvmeControllerDisable }
        else { return .noMatch }
        return .event(.deviceTimeout(DeviceTimeoutEvent(
            device: controller, kind: kind, tag: tag <= UInt64(Int32.max) ? Int(tag) : nil,
            queue: qid <= UInt64(UInt16.max) ? Int(qid) : nil, message: ctx.message, location: ctx.location)))
    }
}
