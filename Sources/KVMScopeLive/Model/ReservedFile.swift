import Foundation
import KVMScopeCore

/// Writes a small JSON file in place, padded with spaces to at least `reserve` bytes.
///
/// The state and manifest files are first written when recording starts, so their blocks are
/// taken while there is space; each later write reuses them (pwrite over the old bytes, no
/// truncation, no temporary file). So the output filesystem filling up — one of the reasons
/// record stops — never keeps it from saying that the VM was restored, and why it stopped.
/// Trailing spaces are JSON whitespace: every reader parses the file as it is.
enum ReservedFile {
    static func write(_ data: Data, to path: String, reserve: Int) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw KVMScopeError.cannotWrite(path: path, reason: KVMScopeError.systemMessage(errno)) }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        let length = max(Int(st.st_size), reserve, data.count + 1)
        var bytes = [UInt8](data)
        bytes += [UInt8](repeating: 0x20, count: length - bytes.count - 1)
        bytes.append(0x0A)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(off)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KVMScopeError.cannotWrite(path: path, reason: KVMScopeError.systemMessage(errno))
            }
            off += n
        }
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw KVMScopeError.cannotWrite(path: path, reason: KVMScopeError.systemMessage(errno))
        }
    }
}
