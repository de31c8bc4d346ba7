import Foundation

/// One CPU's binary ring buffer of a tracefs instance (`per_cpu/cpuN/trace_pipe_raw`),
/// opened non-blocking: each read returns one sub-buffer page (a partial page when the writer
/// is still on it), or EAGAIN when the CPU has nothing new.
public final class TracefsRawCPUPipe {
    public let cpu: Int
    public let path: String
    private var fd: Int32

    init(cpu: Int, path: String) throws {
        self.cpu = cpu
        self.path = path
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw TracefsError.io(path: path, reason: String(cString: strerror(errno))) }
    }

    deinit { close() }

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    /// Reads one page into `buffer` (at least a page long); 0 when nothing is waiting.
    public func readPage(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard fd >= 0 else { return 0 }
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: throw KVMScopeError.readFailed(path: path, reason: String(cString: strerror(errno)))
            }
        }
    }
}

/// Additions to the shared instance manager for readers of the binary buffers: the per-CPU
/// raw pipes, the page layout, and per-CPU loss counters.
extension TracefsInstance {
    /// CPU numbers that have a buffer in this instance (`per_cpu/cpuN`), ascending.
    public var bufferCPUs: [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: file("per_cpu"))) ?? []
        return names.compactMap { $0.hasPrefix("cpu") ? Int($0.dropFirst(3)) : nil }.sorted()
    }

    public func openRawPipes() throws -> [TracefsRawCPUPipe] {
        try bufferCPUs.map { try TracefsRawCPUPipe(cpu: $0, path: file("per_cpu/cpu\($0)/trace_pipe_raw")) }
    }

    /// The page layout from this instance's `events/header_page` and `header_event`, sized by
    /// `buffer_subbuf_size_kb` where the kernel has it (6.8+).
    public func ringBufferLayout() throws -> RingBufferLayout {
        guard let page = read("events/header_page") else {
            throw TracefsError.io(path: file("events/header_page"), reason: "cannot read the ring-buffer page header")
        }
        var layout = try RingBufferLayout.parse(headerPage: page, headerEvent: read("events/header_event"))
        if let kb = read("buffer_subbuf_size_kb").flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }),
           kb * 1024 > layout.pageSize {
            layout = layout.withPageSize(kb * 1024)
        }
        return layout
    }

    /// Lost events per CPU (`overrun` + `dropped events` of per_cpu/cpuN/stats).
    public func lostEventsPerCPU() -> [Int: UInt64] {
        var out: [Int: UInt64] = [:]
        for cpu in bufferCPUs {
            if let text = read("per_cpu/cpu\(cpu)/stats") { out[cpu] = Self.lostEvents(inStats: text) }
        }
        return out
    }
}
