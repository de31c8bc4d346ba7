extension ExplainSession {
    /// A bundled lab capture as explain's inputs (the lab names its files the same in every scenario).
    /// Its files count as found, not given: a console that holds no kernel message (werror-stop:
    /// the VM paused before the guest logged anything) is left out with a note.
    public static func inputs(example: BundledExample) -> Inputs {
        var inputs = Inputs(guest: example.stream("console.log"), trace: example.stream("trace.log"), qmp: example.stream("qmp.jsonl"))
        inputs.hostLog = example.stream("host-dmesg.log")
        inputs.foundInDirectory = Set([inputs.guest, inputs.trace, inputs.qmp, inputs.hostLog].compactMap { $0?.name })
        return inputs
    }
}
