import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

/// `kvmscope drops perf.data` and `kvmscope exits perf.data` as a user runs them: by path,
/// compressed, from stdin (a pipe), and the one-line errors for files it cannot read.
@Suite struct PerfDataCommandTests {
    /// `kvmscope ARGS < FILE` through a shell, so stdin is the binary file itself.
    func runWithStdin(_ args: [String], file: String, pipe: Bool = false) throws -> ProcessResult {
        let cmd = ([CLIRunner.binary.path] + args).map { "'\($0)'" }.joined(separator: " ")
        return try runProcess("/bin/sh", ["-c", pipe ? "cat '\(file)' | \(cmd)" : "\(cmd) < '\(file)'"])
    }

    @Test func dropsReadsPerfDataByPathAndFromStdin() throws {
        let path = try PerfFixtures.file("kfree_skb")
        let kallsyms = PerfFixtures.path("kallsyms-excerpt.txt")
        let byPath = try CLIRunner.run(["drops", "--kallsyms", kallsyms, path])
        #expect(byPath.status == 1, "drops found: exit 1")
        #expect(byPath.stderr.isEmpty)
        #expect(byPath.stdout.contains("=== 7 drops in 0.1 s"))
        #expect(byPath.stdout.contains("perf-data-drops from \(path)"))
        #expect(byPath.stdout.contains("3 drops at __udp4_lib_rcv+0x4bc (0xffffffff820490cc) [software] reason NO_SOCKET"))
        #expect(byPath.stdout.contains("2 drops at nft_do_chain+0x3e8 (0xffffffff81f657b8) [software] reason NETFILTER_DROP"))
        for pipe in [false, true] {
            let r = try runWithStdin(["drops", "--kallsyms", kallsyms, "-"], file: path, pipe: pipe)
            #expect(r.status == 1)
            #expect(r.stdout.replacingOccurrences(of: "<stdin>", with: path) == byPath.stdout)
        }
        let pipeMode = try runWithStdin(["drops", "-"], file: try PerfFixtures.file("kfree_skb-pipe"), pipe: true)
        #expect(pipeMode.status == 1 && pipeMode.stdout.contains("=== 7 drops"))
    }

    @Test func exitsReadsPerfDataByPathAndFromStdin() throws {
        let xz = PerfFixtures.path("kvm-synthetic.data.xz")   // synthetic samples, real stored formats
        let r = try CLIRunner.run(["exits", xz])
        #expect(r.status == 0)
        #expect(r.stdout.contains("perf-data"))
        let text = try CLIRunner.run(["exits", PerfFixtures.path("kvm-synthetic.perf-script.txt")])
        // The per-reason table is the same as perf script's text gives.
        let table = { (s: String) in s.split(separator: "\n").filter { $0.contains("IO_INSTRUCTION") || $0.contains("EPT_VIOLATION") } }
        #expect(!table(r.stdout).isEmpty)
        #expect(table(r.stdout).prefix(2) == table(text.stdout).prefix(2))
        let piped = try runWithStdin(["exits", "--json", "-"], file: try PerfFixtures.file("kvm-synthetic"), pipe: true)
        #expect(piped.status == 0)
        #expect(piped.stdout.contains("\"format\":\"perf-data\"") || piped.stdout.contains("\"format\" : \"perf-data\""))
    }

    @Test func perfDataWithoutKVMSamplesSaysSo() throws {
        let r = try CLIRunner.run(["exits", PerfFixtures.path("kvm.data.xz")])
        #expect(r.status == 2)
        #expect(r.stderr.contains("no kvm_exit or kvm_entry samples among its 0 tracepoint samples"))
    }

    @Test func brokenPerfDataIsOneLineAndExit1() throws {
        let bytes = try PerfFixtures.data("kfree_skb")
        let cut = try PerfFixtures.writeTemporary(Array(bytes[0..<5000]), name: "cut.data")
        for cmd in ["drops", "exits"] {
            let r = try CLIRunner.run([cmd, cut])
            #expect(r.status == 1)
            #expect(r.stderr == "kvmscope: '\(cut)': perf.data: truncated: the feature table after the data (20 sections) is missing\n")
            #expect(r.stdout.isEmpty)
        }
    }
}
