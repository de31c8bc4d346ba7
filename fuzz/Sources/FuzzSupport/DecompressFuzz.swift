import KVMScope

/// DecompressingByteStream on hostile bytes: every input either decompresses or is refused
/// with KVMScopeError.badCompressedInput; never a crash, a hang or memory beyond the buffers.
/// The first byte picks the format (so one corpus covers the three), the rest is the data.
public enum DecompressFuzz {
    /// Output read per input is capped so that a bomb costs bounded time per run.
    static let outputLimit = 64 << 20

    public static func run(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let format = CompressionFormat.allCases[Int(first) % CompressionFormat.allCases.count]
        let data = Array(bytes.dropFirst())
        var outputs: [Result<Int, KVMScopeError>] = []
        for chunk in [4096, 7] {
            outputs.append(drain(data, format: format, chunk: chunk))
        }
        // However the input is cut into reads, the same outcome.
        switch (outputs[0], outputs[1]) {
        case let (.success(a), .success(b)): FuzzCheck.require(a == b, "\(format): \(a) vs \(b) bytes by chunking")
        case (.failure, .failure): break
        default: FuzzCheck.require(false, "\(format): chunking changed success into failure")
        }
    }

    static func drain(_ data: [UInt8], format: CompressionFormat, chunk: Int) -> Result<Int, KVMScopeError> {
        do {
            let s = try DecompressingByteStream(MemoryByteSource(data, name: "fuzz", maxChunk: chunk), format: format)
            var total = 0
            var buffer = [UInt8](repeating: 0, count: 65536)
            while total < outputLimit {
                let n = try buffer.withUnsafeMutableBytes { try s.read(into: $0) }
                if n == 0 { break }
                FuzzCheck.require(n <= buffer.count, "\(format): read returned more than asked")
                total += n
            }
            return .success(min(total, outputLimit))
        } catch let error as KVMScopeError {
            guard case .badCompressedInput = error else {
                FuzzCheck.require(false, "\(format): unexpected error \(error)")
                return .failure(error)
            }
            return .failure(error)
        } catch {
            FuzzCheck.require(false, "\(format): threw something else than KVMScopeError: \(error)")
            return .failure(.usage("\(error)"))
        }
    }
}
