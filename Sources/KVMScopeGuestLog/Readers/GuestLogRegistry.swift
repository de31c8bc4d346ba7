extension InputKind {
    /// Guest kernel messages (`kvmscope guest`, explain's guest log).
    public static let guestLog = InputKind("guest-log")
}

/// This domain's formats, in detection order: the stamp styles whose prefixes are most
/// distinctive first, bare kernel messages last.
public enum GuestLogFormats {
    public static let list = InputFormatList(
        [KernelLogStyle.journalExport, .journalJSON, .kmsg, .dmesgISO, .syslog, .journal, .dmesgWallClock,
         .dmesgWallClockDelta, .dmesgDelta, .dmesgRelTime, .printkCaller, .printk, .bare]
            .map { GuestKernelLogFormat(style: $0) })
    public static var all: [any InputFormat] { list.all }
}
