import KVMScopeTracefs

/// Which live source to watch drops with, and the fallback between them: tracefs's
/// skb:kfree_skb (binary per-CPU ring, or trace_pipe text), else NET_DM — dropwatch's source.
public enum DropSourceSelection {
    public enum Preference: String, Sendable, CaseIterable {
        case auto, tracefs, tracefsText = "tracefs-text", netdm
    }

    public struct Request {
        public var preference: Preference = .auto
        public var tracefs = TracefsDropSource.Options()
        public var reasons: [String] = []
        public var protocols: [String] = []
        public var locations: [String] = []
        /// `--netns` given (NET_DM summary alerts cannot be filtered by it).
        public var netnsFilter = false
        public var symbols: KernelSymbolTable?
        public init() {}
    }

    /// Opens the source the request asks for. `warn` receives what the user should know about
    /// a fallback (one line each); errors say what every source lacked.
    public static func open(_ request: Request, warn: (String) -> Void) throws -> LiveDropMonitor.Source {
        var tracefsOptions = request.tracefs
        tracefsOptions.binary = request.preference != .tracefsText
        var tracefsProblem: String?
        if request.preference != .netdm {
            do {
                let fs = try TracefsDropSource.preflight(tracefsOptions)
                let format = try TracefsDropSource.readFormat(fs)
                tracefsOptions.kernelFilter = try DropKernelFilter.expression(
                    reasons: request.reasons, protocols: request.protocols, locations: request.locations,
                    format: format, symbols: request.symbols)
                // Without kallsyms addresses binary records cannot be named, but a kernel whose
                // tracepoint prints `location=%pS` names them itself in trace_pipe text.
                if request.preference == .auto, request.symbols?.addressesHidden ?? true,
                   format.printFormat.contains("location=%pS") {
                    tracefsOptions.binary = false
                    warn("\(request.symbols == nil ? "/proc/kallsyms is not readable" : "/proc/kallsyms hides addresses (kernel.kptr_restrict)"): reading trace_pipe text, whose %pS locations the kernel names itself")
                }
                return .tracefs(try TracefsDropSource(options: tracefsOptions))
            } catch let e as TracefsError {
                if request.preference != .auto { throw e }
                tracefsProblem = e.description
            }
        }
        switch NetDropMonitorSource.probe() {
        case .available:
            do {
                let n = try NetDropMonitorSource()
                try n.start()
                if let tracefsProblem { warn("tracefs not usable (\(tracefsProblem)); using NET_DM") }
                if !request.reasons.isEmpty || !request.locations.isEmpty || !request.protocols.isEmpty || request.netnsFilter {
                    warn("NET_DM summary alerts carry no reason or protocol: filters apply only to per-packet alerts")
                }
                return .netdm(n)
            } catch let e as DropsError {
                if request.preference == .netdm { throw e }
                throw DropsError.noSource(tracefsProblem: tracefsProblem ?? "tracefs unusable", netdmProblem: "NET_DM: \(e.description)")
            }
        case let .absent(why):
            if request.preference == .netdm { throw DropsError.netDropMonitor(why) }
            throw DropsError.noSource(tracefsProblem: tracefsProblem ?? "tracefs unusable",
                                      netdmProblem: "\(why). Or analyse a capture: kvmscope drops trace.txt")
        }
    }
}
