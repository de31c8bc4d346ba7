extension ExplainSession {
    /// A bundled lab capture as explain's inputs (the lab names its files the same in every scenario).
    public static func inputs(example: BundledExample) -> Inputs {
        Inputs(guest: example.stream("console.log"), trace: example.stream("trace.log"), qmp: example.stream("qmp.jsonl"))
    }
}
