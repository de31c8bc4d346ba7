// kvmscope's benchmarks: `swift run -c release kvmscope-bench NAME [ARGS...]`.
// Each benchmark lives in its own file and is listed once here. They print MB/s, lines/s and
// peak memory (ru_maxrss) so figures can go in the README beside the reference tools'.
import Foundation
import KVMScope

let benchmarks: [(name: String, usage: String, run: ([String]) throws -> Void)] = [
    ("lines", "FILE — raw LineSplitter throughput (the floor every text reader sits on)", benchLines),
    ("guest", "FILE — kvmscope guest: read, recognise and analyse a guest kernel log (bench/make-guest-log.sh)", benchGuest),
    ("host", "FILE — kvmscope host: read, recognise and analyse a host kernel log (bench/make-host-log.sh)", benchHost),
    ("trace", "FILE [--bundled] — kvmscope trace's whole analysis (bench/make-trace.sh builds FILE)", benchTrace),
    ("exits", "FILE — kvmscope exits over a kvm_exit/kvm_entry trace (bench/make-exits.sh makes 1 GB)", benchExits),
    ("rules", "[LOOKUPS] — blkdebug rule lookups that match nothing, with 0..100 000 rules loaded", benchRules),
    ("drops", "FILE — kfree_skb text capture (bench/make-drops.sh) read and counted", benchDrops),
    ("decompress", "FILE — FileByteSource drained: gzip/xz/zstd decompression throughput (bench/compressed-input.sh)", benchDecompress),
    ("drops-pages", "[MB] — ring-buffer pages of kfree_skb records decoded and counted (the live reader's path)", benchDropPages),
    ("perfdata", "FILE — perf.data reader alone: samples in order, kfree_skb records decoded (bench/perfdata.sh makes the file)", benchPerfData),
]

let args = Array(CommandLine.arguments.dropFirst())
guard let name = args.first, let bench = benchmarks.first(where: { $0.name == name }) else {
    print("usage: kvmscope-bench NAME [ARGS...]\n")
    for b in benchmarks { print("  \(b.name) \(b.usage)") }
    exit(2)
}
do {
    try bench.run(Array(args.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("kvmscope-bench: \(error)\n".utf8))
    exit(1)
}
