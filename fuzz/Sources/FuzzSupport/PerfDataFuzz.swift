import Foundation
import KVMScope

/// perf.data (file or pipe mode, either byte order) through the shared reader and the drops
/// domain's kfree_skb decoding, read straight through (the way stdin is read).
public enum PerfDataFuzz {
    struct Outcome: Equatable {
        var error: String?
        var samples: [String] = []
        var stats = PerfDataStats()
        var drops = 0
    }

    static func read(_ bytes: [UInt8], chunk: Int) -> Outcome {
        var out = Outcome()
        var reader = PerfDataReader()
        do {
            try reader.read(MemoryByteSource(bytes, name: "fuzz.data", maxChunk: chunk)) { s in
                FuzzCheck.require(s.payload.count <= 1 << 16, "perf.data: payload larger than a record")
                var fields = ""
                for (name, value) in s.fields() { fields += "\(name)=\(value) " }
                out.samples.append("\(s.event.fullName) \(s.tid ?? -1) \(s.cpu ?? 0) \(s.timeNs ?? 0) \(fields)")
            }
        } catch let e as PerfDataError {
            out.error = e.description
            FuzzCheck.require(!e.description.contains("\n"), "perf.data: error of more than one line")
        } catch {
            out.error = "\(error)"
        }
        out.stats = reader.stats
        var dropReader = PerfDataDropReader()
        var drops = 0
        _ = try? dropReader.read(MemoryByteSource(bytes, name: "fuzz.data", maxChunk: chunk)) { _ in drops += 1 }
        out.drops = drops
        return out
    }

    public static func run(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        let out = read(body, chunk: [1 << 20, 7, 4096, 333][Int(selector & 3)])
        let s = out.stats
        FuzzCheck.require(s.samples <= s.records, "perf.data: more samples than records")
        FuzzCheck.require(s.tracepointSamples + s.otherSamples + s.samplesWithoutFormat + s.samplesOfUnknownID + s.malformedSamples == s.samples,
                          "perf.data: sample buckets \(s) do not add up")
        FuzzCheck.require(out.samples.count == s.tracepointSamples, "perf.data: \(out.samples.count) samples handed on, \(s.tracepointSamples) counted")
        FuzzCheck.require(out.drops <= s.tracepointSamples || out.error != nil, "perf.data: more drops than samples")
        guard FuzzCheck.thorough(bytes) else { return }
        // How the bytes arrive must not change what is read.
        FuzzCheck.require(read(body, chunk: 1 << 20) == read(body, chunk: 13), "perf.data: result depends on read sizes")
    }
}
