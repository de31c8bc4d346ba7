import Foundation
import KVMScopeTracefs

/// Live drops from `skb:kfree_skb` in a private tracefs instance (`instances/kvmscope-<pid>`,
/// the shared TracefsInstance): never the global buffer, never anyone else's instance, removed
/// on exit, Ctrl-C, SIGTERM and errors.
///
/// Binary mode (the default) reads the per-CPU `trace_pipe_raw` pages and decodes records with
/// the offsets of this kernel's format file: no text formatting in the kernel, no parsing here,
/// and real addresses (ftrace text hashes `%p` pointers). Text mode reads `trace_pipe` lines for
/// kernels whose page layout kvmscope cannot read. The instance's clock is set to `mono` so
/// event times compare with CLOCK_MONOTONIC for interval boundaries.
public final class TracefsDropSource {
    public struct Options: Sendable {
        public var tracefsRoot = Tracefs.defaultRoot
        /// Ring buffer per CPU, in KiB (this instance only).
        public var bufferKB = 8192
        public var binary = true
        /// A tracefs event filter (`reason == 3 || reason == 12`), applied in the kernel.
        public var kernelFilter: String?
        public var effectiveUID: uid_t = geteuid()
        public var procRoot = "/proc"
        public init() {}
    }

    public let options: Options
    public let tracefs: Tracefs
    public let instance: TracefsInstance
    public let format: TracepointFormat
    public let decoder: KfreeSkbRecordDecoder
    /// Event times are CLOCK_MONOTONIC seconds (the instance clock was set to `mono`).
    public private(set) var monotonicClock = false
    public private(set) var binary: Bool
    /// Pages the decoder found damaged, events it saw and records it could not decode.
    public private(set) var pageStats = RingBufferPageDecoder.Stats()
    public private(set) var undecodedRecords = 0
    public private(set) var textStats = DropTraceStats()

    private var pipes: [TracefsRawCPUPipe] = []
    private var pageDecoder: RingBufferPageDecoder?
    private var page: UnsafeMutableRawBufferPointer?
    private var textFD: Int32 = -1
    private var pendingText: [UInt8] = []
    private let lineParser: KfreeSkbLineParser

    /// Root, a mounted tracefs (mounting it when needed) and the tracepoint, or the one-line
    /// reason kvmscope cannot trace here.
    public static func preflight(_ options: Options) throws -> Tracefs {
        let fs = try Tracefs.locate(root: options.tracefsRoot, effectiveUID: options.effectiveUID)
        guard fs.hasEvent("skb", "kfree_skb") else {
            throw TracefsError.missingEvents(root: fs.root, events: ["skb:kfree_skb"],
                                             hint: "the kernel was built without it (CONFIG_TRACEPOINTS, networking)")
        }
        return fs
    }

    /// The running kernel's kfree_skb format (global copy; instances show the same file).
    public static func readFormat(_ fs: Tracefs) throws -> TracepointFormat {
        let path = fs.path("events/skb/kfree_skb/format")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TracefsError.io(path: path, reason: "cannot read the tracepoint's format")
        }
        return try TracepointFormat.parse(text)
    }

    public init(options: Options) throws {
        self.options = options
        tracefs = try Self.preflight(options)
        format = try Self.readFormat(tracefs)
        decoder = try KfreeSkbRecordDecoder(format: format)
        lineParser = KfreeSkbLineParser(reasonNames: decoder.reasonNames)
        StopSignals.install()
        for stale in TracefsInstance.staleInstances(in: tracefs, procRoot: options.procRoot) {
            rmdir(tracefs.path("instances/\(stale)"))   // left by a kvmscope killed with SIGKILL
        }
        instance = try TracefsInstance(in: tracefs)
        binary = options.binary
        do {
            try instance.setBufferSize(kilobytes: options.bufferKB)
            monotonicClock = (try? instance.write("trace_clock", "mono")) != nil
            if binary {
                do {
                    let layout = try instance.ringBufferLayout()
                    pageDecoder = RingBufferPageDecoder(layout: layout)
                    page = UnsafeMutableRawBufferPointer.allocate(byteCount: layout.pageSize, alignment: 16)
                    pipes = try instance.openRawPipes()
                    if pipes.isEmpty { throw TracefsError.io(path: instance.file("per_cpu"), reason: "no per-CPU buffers") }
                } catch {
                    binary = false      // fall back to trace_pipe text
                    pipes = []
                }
            }
            try instance.enable("skb/kfree_skb", filter: options.kernelFilter)
            try instance.setTracingOn(true)
            if !binary {
                textFD = open(instance.file("trace_pipe"), O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                guard textFD >= 0 else { throw TracefsError.io(path: instance.file("trace_pipe"), reason: String(cString: strerror(errno))) }
            }
        } catch {
            try? close()
            if let e = error as? TracefsError, case let .io(path, reason) = e, path.hasSuffix("/filter") {
                throw TracefsError.io(path: path, reason: "the kernel rejected the event filter '\(options.kernelFilter ?? "")': \(reason)")
            }
            throw error
        }
    }

    deinit {
        try? close()
    }

    public var description: String {
        binary ? "tracefs instance \(instance.name) (binary per-CPU buffers)"
               : "tracefs instance \(instance.name) (trace_pipe text)"
    }

    /// Reads everything the buffers hold now; returns the number of drops handed to `body`.
    @discardableResult
    public func drain(_ body: (DropEvent) throws -> Void) throws -> Int {
        binary ? try drainBinary(body) : try drainText(body)
    }

    private func drainBinary(_ body: (DropEvent) throws -> Void) throws -> Int {
        guard var pd = pageDecoder, let page else { return 0 }
        defer { pageDecoder = pd; pageStats = pd.stats }
        var n = 0
        let decoder = self.decoder
        for pipe in pipes {
            // A CPU under a flood refills while we read: bound the pages per drain so the
            // other CPUs and the interval clock are served.
            var pages = 0
            while pages < 4096 {
                let got = try pipe.readPage(into: page)
                if got == 0 { break }
                pages += 1
                try pd.decode(page: UnsafeRawBufferPointer(rebasing: page[0..<got])) { ts, payload in
                    guard let r = decoder.decode(payload) else {
                        if decoder.eventType(payload) == decoder.eventID { undecodedRecords += 1 }
                        return
                    }
                    n += 1
                    try body(DropEvent(time: Double(ts) / 1e9, cpu: Int32(pipe.cpu), pid: r.pid,
                                       location: DropLocation(address: r.location),
                                       protocolNumber: r.protocolNumber, reason: decoder.dropReason(r.reason)))
                }
            }
        }
        return n
    }

    private func drainText(_ body: (DropEvent) throws -> Void) throws -> Int {
        guard textFD >= 0 else { return 0 }
        var n = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let got = chunk.withUnsafeMutableBytes { Glibc.read(textFD, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                throw KVMScopeError.readFailed(path: instance.file("trace_pipe"), reason: String(cString: strerror(errno)))
            }
            if got == 0 { break }
            pendingText += chunk[0..<got]
            var start = 0
            try pendingText.withUnsafeBufferPointer { buf in
                while let nl = buf[start...].firstIndex(of: 0x0A) {
                    let line = LineBytes(UnsafeBufferPointer(rebasing: buf[start..<nl]))
                    start = nl + 1
                    textStats.lines += 1
                    switch lineParser.parse(line) {
                    case let .drop(e):
                        n += 1
                        textStats.drops += 1
                        try body(e)
                    case .consumed: textStats.consumed += 1
                    case .otherEvent: textStats.otherEvents += 1
                    case .header: textStats.headerLines += 1
                    case .garbage: textStats.skippedLines += 1
                    }
                }
            }
            pendingText.removeFirst(start)
            if pendingText.count > 1 << 16 { pendingText.removeAll(); textStats.overlongLines += 1 }
        }
        return n
    }

    /// Events the ring buffers lost so far (overwritten before being read, or dropped when full).
    public func lostEvents() -> UInt64 { instance.lostEvents() }

    /// Stops tracing, closes the pipes and removes the instance. Idempotent.
    public func close() throws {
        try? instance.setTracingOn(false)
        for p in pipes { p.close() }
        pipes = []
        if textFD >= 0 { Glibc.close(textFD); textFD = -1 }
        if let page { page.deallocate(); self.page = nil }
        try instance.remove()
    }
}
