import Foundation

/// A file or stdin read like `tail -f`: at the end of a regular file it waits for more data;
/// a pipe ends at its EOF. `shouldStop` (e.g. "Ctrl-C was pressed") ends the input at the next
/// poll, so a command can print its summary instead of dying mid-read.
public final class FollowingByteSource: ByteStream {
    public let name: String
    public var knownSize: Int64? { nil }
    private let fd: Int32
    private let ownsDescriptor: Bool
    private let isRegularFile: Bool
    private let shouldStop: () -> Bool
    private let pollMilliseconds: Int32

    public init(path: String, pollMilliseconds: Int32 = 200, shouldStop: @escaping () -> Bool) throws {
        self.shouldStop = shouldStop
        self.pollMilliseconds = pollMilliseconds
        let opened = try OpenedInput(path: path)
        name = opened.name
        fd = opened.fd
        ownsDescriptor = opened.ownsDescriptor
        isRegularFile = opened.isRegularFile
    }

    deinit { if ownsDescriptor { close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while !shouldStop() {
            if !isRegularFile {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&p, 1, pollMilliseconds)
                if ready < 0 && errno != EINTR {
                    throw KVMScopeError.readFailed(path: name, reason: KVMScopeError.systemMessage(errno))
                }
                if ready <= 0 { continue }
            }
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return n }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw KVMScopeError.readFailed(path: name, reason: KVMScopeError.systemMessage(errno))
            }
            if !isRegularFile { return 0 }            // pipe closed: the end
            usleep(UInt32(pollMilliseconds) * 1000)   // end of a growing file: wait for more
        }
        return 0
    }
}
