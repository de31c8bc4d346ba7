import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

/// The display fixes of issue 20: truthful heatmap rows, filters that match nothing, and
/// --perf-compat in the installed perf's layout. Each fails on the code before the fix.
@Suite struct ExitsDisplayFixTests {
    /// µs text (as ftrace and trace-cmd report print): a 1 µs exit, a 0 µs exit, a 5 µs one.
    static let microseconds = """
     qemu-system-x86-8396    [001] d....  1404.389448: kvm_exit: vcpu 0 reason HLT rip 0xffffffff8113b1f9 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000
     qemu-system-x86-8396    [001] d....  1404.389449: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9
     qemu-system-x86-8396    [001] d....  1404.389450: kvm_exit: vcpu 0 reason HLT rip 0xffffffff8113b1f9 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000
     qemu-system-x86-8396    [001] d....  1404.389450: kvm_entry: vcpu 0, rip 0xffffffff8113b1f9
     qemu-system-x86-8397    [000] d....  1404.389460: kvm_exit: vcpu 1 reason EXTERNAL_INTERRUPT rip 0xffffffff81060b7e info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x800000fb error_code 0x00000000
     qemu-system-x86-8397    [000] d....  1404.389465: kvm_entry: vcpu 1, rip 0xffffffff81060b80

    """

    static func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "kvmscope-exitsfix-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func rowLabels(_ stdout: String) -> [String] {
        stdout.split(separator: "\n").compactMap { line -> String? in
            guard let bar = line.firstIndex(of: "|"), line.contains("Heatmap") == false else { return nil }
            let label = line[..<bar].trimmingCharacters(in: .whitespaces)
            return label.isEmpty ? nil : label
        }
    }

    @Test func heatmapRowsSayWhatTheyHoldAtTheTracesResolution() throws {
        let path = try Self.write(Self.microseconds)
        let r = try CLIRunner.run(["exits", "--top", "0", path], environment: ["NO_COLOR": "1"])
        #expect(r.status == 0)
        let labels = Self.rowLabels(r.stdout)
        // 0 µs is "below 1 µs", 1 µs is "1us", 5 µs is in the 5–8 µs row; nothing finer.
        #expect(labels.contains("<1us"), "\(labels)")
        #expect(labels.contains("1us"), "\(labels)")
        #expect(labels.contains("5-8us"), "\(labels)")
        #expect(!labels.contains("512ns") && !labels.contains("1ns") && !labels.contains { $0.hasSuffix("ns") },
                "no sub-microsecond rows for a µs trace: \(labels)")
    }

    @Test func nanosecondTracesKeepNanosecondRows() throws {
        // The same pairs with ns timestamps (trace-cmd report -t): at 1 ns resolution the rows
        // are the ns ranges themselves, and the 1000 ns exit is in 512 ns ... 1023 ns.
        let text = Self.microseconds.replacingOccurrences(of: "1404.389448:", with: "1404.389448000:")
            .replacingOccurrences(of: "1404.389449:", with: "1404.389449000:")
            .replacingOccurrences(of: "1404.389450:", with: "1404.389450007:")
            .replacingOccurrences(of: "1404.389460:", with: "1404.389460000:")
            .replacingOccurrences(of: "1404.389465:", with: "1404.389465000:")
        let path = try Self.write(text)
        let r = try CLIRunner.run(["exits", "--top", "0", path], environment: ["NO_COLOR": "1"])
        #expect(r.status == 0)
        #expect(Self.rowLabels(r.stdout).contains("512ns-1.02us"), "\(Self.rowLabels(r.stdout))")
    }

    @Test func vcpuThatDoesNotExistWarnsAndFails() throws {
        let path = try Self.write(Self.microseconds)
        let r = try CLIRunner.run(["exits", "--vcpu", "7", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("--vcpu 7 matches no exit"))
        #expect(r.stderr.contains("vCPU 0, 1"))
        let ok = try CLIRunner.run(["exits", "--vcpu", "1", path])
        #expect(ok.status == 0)
    }

    @Test func unknownReasonWarnsAndFails() throws {
        let path = try Self.write(Self.microseconds)
        let r = try CLIRunner.run(["exits", "--reason", "EPT_MISCONFIG", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("--reason EPT_MISCONFIG matches no exit"))
        #expect(r.stderr.contains("reasons EXTERNAL_INTERRUPT, HLT"))
        let ok = try CLIRunner.run(["exits", "--reason", "hlt", "--json", path])
        #expect(ok.status == 0)
        let j = try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as! [String: Any]
        #expect((j["total"] as! [String: Any])["count"] as? Int == 2)
    }

    /// perf 6.1 (tools/perf/arch/x86/util/kvm-stat.c decode_str_len = 20): 20-column names.
    static let perf61 = "\n\nAnalyze events for all VMs, all VCPUs:\n\n"
        + "             VM-EXIT    Samples  Samples%     Time%    Min Time    Max Time         Avg time \n\n"
        + "                 HLT          2    66.67%    16.67%      0.00us      1.00us      0.50us ( +- 100.00% )\n"
        + "  EXTERNAL_INTERRUPT          1    33.33%    83.33%      5.00us      5.00us      5.00us ( +-   0.00% )\n"
        + "\nTotal Samples:3, Total events handled time:6.00us.\n\n"

    @Test func perfCompatGivenVersion61HasTwentyColumnNames() throws {
        let path = try Self.write(Self.microseconds)
        let r = try CLIRunner.run(["exits", "--perf-compat=6.1", path])
        #expect(r.status == 0)
        #expect(r.stdout == Self.perf61)
        let bad = try CLIRunner.run(["exits", "--perf-compat=six", path])
        #expect(bad.status == 2)
    }

    /// With no version given, the installed perf's (`perf --version`; 6.1 on this machine).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/perf")))
    func perfCompatFollowsTheInstalledPerf() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/perf")
        p.arguments = ["--version"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let version = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let path = try Self.write(Self.microseconds)
        let r = try CLIRunner.run(["exits", "--perf-compat", path])
        #expect(r.status == 0)
        let parts = version.split(separator: " ").last!.split(separator: ".")
        let (major, minor) = (Int(parts[0])!, Int(parts[1])!)
        let width = (major, minor) >= (6, 4) ? 40 : 20
        let header = String(repeating: " ", count: width - "VM-EXIT".count) + "VM-EXIT    Samples"
        #expect(r.stdout.contains("\n" + header), "perf \(major).\(minor): \(width)-column names")
    }

    /// Names longer than the column are cut as scnprintf(decode, 20, "%s") cuts them: 19 characters.
    @Test func perfCompatCutsLongNamesLikePerf() throws {
        let text = """
         qemu-system-x86-1    [000] d....  1.000000: kvm_exit: vcpu 0 reason avic_unaccelerated_access rip 0x1 info1 0x0 info2 0x0 intr_info 0x0 error_code 0x0
         qemu-system-x86-1    [000] d....  1.000002: kvm_entry: vcpu 0, rip 0x1

        """
        let path = try Self.write(text)
        let r = try CLIRunner.run(["exits", "--perf-compat=6.1", path])
        #expect(r.status == 0)
        #expect(r.stdout.contains(" avic_unaccelerated_          1 "), "\(r.stdout)")
    }
}
