import Foundation
import KVMScopeCore

/// A byte stream over a descriptor this process owns (the read end of the live-view pipe):
/// blocking reads until the writer closes it.
final class PipeReadStream: ByteStream, @unchecked Sendable {
    let name: String
    let knownSize: Int64? = nil
    private let fd: Int32
    init(fd: Int32, name: String) { self.fd = fd; self.name = name }
    deinit { close(fd) }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw KVMScopeError.readFailed(path: name, reason: KVMScopeError.systemMessage(errno)) }
        }
    }
}
