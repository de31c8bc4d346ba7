import Foundation
import KVMScope

/// `kvmscope-bench decompress FILE`: reads FILE as every command reads its input (FileByteSource:
/// gzip, xz and zstd decompressed by magic bytes) and drains it in 1 MiB reads, the line
/// splitter's chunk; prints decompressed MB/s and peak memory, which stays at the buffers
/// (256 KiB input, the decoder's window) whatever the ratio. bench/compressed-input.sh compares
/// `kvmscope guest FILE.gz` with `zcat FILE.gz | kvmscope guest -`.
func benchDecompress(_ args: [String]) throws {
    guard let path = args.first else { throw KVMScopeError.usage("decompress needs a FILE (gzip, xz, zstd or plain)") }
    var total: Int64 = 0
    var format = "none"
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    let m = try measure {
        let source = try FileByteSource(path: path)
        format = source.compression?.rawValue ?? "none"
        while true {
            let n = try source.read(into: buffer)
            if n == 0 { break }
            total += Int64(n)
        }
    }
    let compressed = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? nil
    report("decompress", bytes: total, seconds: m.seconds, peakRSSMiB: m.peakRSSMiB,
           extra: "compression \(format)" + (compressed.map { String(format: ", %.1f MB compressed (%.1fx)", Double($0) / 1e6, Double(total) / Double(max($0, 1))) } ?? ""))
}
