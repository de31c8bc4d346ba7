extension InputKind {
    /// A QMP event stream (explain `--qmp`).
    public static let qmpEvents = InputKind("qmp-events")
}

/// This domain's formats: raw QMP JSON lines and virsh's event records share one reader.
public enum QMPFormats {
    public static let list = InputFormatList([QMPEventFormat()])
    public static var all: [any InputFormat] { list.all }
}
