import Foundation

extension FileHandle {
    /// Bytes up to and including the next newline ("" at end of file), read one at a time so
    /// that nothing after the line is taken from a process's stdout: `nbd serve` prints its URI
    /// first and keeps running.
    public func readNextLine() -> String {
        var line = Data()
        while !line.contains(0x0a) {
            let b = readData(ofLength: 1)
            if b.isEmpty { break }
            line.append(b)
        }
        return String(decoding: line, as: UTF8.self)
    }
}
