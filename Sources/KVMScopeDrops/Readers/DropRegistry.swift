extension InputKind {
    /// skb:kfree_skb captures (`kvmscope drops`).
    public static let packetDrops = InputKind("packet-drops")
}

/// This domain's offline formats, in detection order (perf.data by its magic first; perf's `skb:kfree_skb:` names are the
/// most distinctive; plain tracefs text is the most lenient).
public enum DropFormats {
    public static let list = InputFormatList([PerfDataDropFormat(), TraceDatDropFormat(), PerfScriptDropFormat(), TraceCmdDropFormat(), FtraceDropFormat()])
    public static var all: [any InputFormat] { list.all }
}
