extension ExplainSession {
    /// A bundled lab capture as explain's inputs (the lab names its files the same in every scenario).
    /// A capture's console that holds no kernel message (werror-stop: the VM paused before the
    /// guest logged anything) is left out: explain refuses a guest log it cannot recognise.
    public static func inputs(example: BundledExample) -> Inputs {
        var console = example.stream("console.log")
        if let s = console {
            var reader = GuestLogReader()
            var sink = GuestLogEventCollector()
            if (try? reader.read(s, into: &sink)) == nil || reader.stats.recognisedKernelLines == 0 { console = nil }
            else { console = example.stream("console.log") }   // a fresh stream: the first one is read
        }
        return Inputs(guest: console, trace: example.stream("trace.log"), qmp: example.stream("qmp.jsonl"))
    }
}
