import Foundation
import KVMScopeCore
import KVMScopeTrace

/// The trace as it is recorded, read by the same request tracker `kvmscope trace` runs, on
/// its own thread: each failed request is reported the moment its completion is read.
///
/// Fed through a pipe whose write end never blocks: if the tracker falls behind by the pipe's
/// capacity, lines are dropped from the live view (counted), never from the capture, and the
/// recorder — QEMU's reader — never waits.
final class LiveTracker: @unchecked Sendable {
    private let writeFD: Int32
    private let thread: Thread
    private let done = DispatchSemaphore(value: 0)
    private let failureCount = Counter()
    private(set) var droppedLines = 0

    var failures: Int { failureCount.value }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func add() { lock.lock(); n += 1; lock.unlock() }
        var value: Int { lock.lock(); defer { lock.unlock() }; return n }
    }

    init(onNotice: @escaping @Sendable (VirtioBlkRequestTracker.Notice) -> Void) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw KVMScopeError.cannotOpen(path: "pipe", reason: KVMScopeError.systemMessage(errno)) }
        writeFD = fds[1]
        _ = fcntl(writeFD, F_SETFL, fcntl(writeFD, F_GETFL) | O_NONBLOCK)
        _ = fcntl(writeFD, 1031 /* F_SETPIPE_SZ, fcntl.h */, 1 << 20)
        let stream = PipeReadStream(fd: fds[0], name: "recorded trace")
        let catalog = try TraceEventCatalog.load(eventsFile: nil)
        let sem = done
        let counter = failureCount
        thread = Thread {
            _ = try? TraceSession.analyse(stream, catalog: catalog, onNotice: { n in
                if case .failure = n { counter.add() }
                onNotice(n)
            }, live: true)
            sem.signal()
        }
        thread.start()
    }

    func feed(_ line: [UInt8]) {
        // Writes up to PIPE_BUF are atomic: a longer line could interleave, so it is skipped.
        guard line.count <= 4096 else { droppedLines += 1; return }
        let n = line.withUnsafeBytes { write(writeFD, $0.baseAddress, $0.count) }
        if n != line.count { droppedLines += 1 }
    }

    /// Ends the stream and waits for the tracker to read it.
    func finish() {
        close(writeFD)
        _ = done.wait(timeout: .now() + 10)
    }
}
