import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

/// `kvmscope drops FILE` as a user runs it: exact report text, exit statuses, JSON keys.
@Suite struct DropsCommandTests {
    static let ftrace = DropFixtures.path("ftrace-trace-6.18.txt")

    @Test func ftraceCaptureReport() throws {
        let r = try CLIRunner.run(["drops", Self.ftrace])
        #expect(r.status == 1, "drops seen in a file: exit 1")
        #expect(r.stderr.isEmpty)
        #expect(r.stdout == """
        === 7 drops in 0.5 s (13.9/s) — ftrace-drops from \(Self.ftrace) ===
        3 drops at __udp4_lib_rcv+0x4bc [software] reason NO_SOCKET
        2 drops at __udp6_lib_rcv+0xe1 [software] reason NO_SOCKET
        2 drops at nft_do_chain+0x3e8 [software] reason NETFILTER_DROP
        by reason:
          5 NO_SOCKET: nothing was listening on that port (no socket matched the destination)
          2 NETFILTER_DROP: a firewall rule (nftables, iptables, ebtables) dropped it
        by protocol: IPv4 (0x0800) 5, IPv6 (0x86DD) 2

        """)
    }

    @Test func intervalsFollowTheCapturesTimeStamps() throws {
        let r = try CLIRunner.run(["drops", "--interval", "200ms", DropFixtures.path("trace-cmd-report-6.18.txt")])
        #expect(r.status == 1)
        let blocks = r.stdout.components(separatedBy: "--- ").dropFirst()
        #expect(blocks.count == 3)
        #expect(r.stdout.contains("--- 1363.751103–1363.951103 s (trace clock) ---\n3 drops at __udp4_lib_rcv+0x4bc [software] reason NO_SOCKET\nby reason: NO_SOCKET 3\ntotal: 3 drops\n"))
        #expect(r.stdout.contains("total: 2 drops\n--- 1364.151103–1364.351103 s (trace clock) ---\n2 drops at __udp6_lib_rcv+0xe1"))
    }

    @Test func groupingAndFilters() throws {
        let perf = DropFixtures.path("perf-script-6.18.txt")
        let byReason = try CLIRunner.run(["drops", "--by", "reason", perf])
        #expect(byReason.stdout.contains("5 drops reason NO_SOCKET: nothing was listening on that port"))
        #expect(!byReason.stdout.contains("by reason:"))
        let byProto = try CLIRunner.run(["drops", "--by", "protocol", perf])
        #expect(byProto.stdout.contains("5 drops protocol IPv4 (0x0800)\n2 drops protocol IPv6 (0x86DD)\n"))
        let byComm = try CLIRunner.run(["drops", "--by", "comm", perf])
        #expect(byComm.stdout.contains("7 drops in task bash\n"))

        let onlyV6 = try CLIRunner.run(["drops", "--protocol", "0x86dd", "--json", perf])
        let s = try summary(onlyV6.stdout)
        #expect(s["drops"] as? Int == 2)
        #expect(s["filteredOut"] as? Int == 5)
        let nft = try CLIRunner.run(["drops", "--location", "nft_do_chain", "--reason", "netfilter_drop", "--json", perf])
        #expect(try summary(nft.stdout)["drops"] as? Int == 2)
        let spot = try CLIRunner.run(["drops", "--location", "__udp4_lib_rcv+0x4bc", "--json", perf])
        #expect(try summary(spot.stdout)["drops"] as? Int == 3)
        let none = try CLIRunner.run(["drops", "--reason", "QDISC_DROP", perf])
        #expect(none.status == 0, "no drops left after filtering: exit 0")
        #expect(none.stdout.hasPrefix("=== 0 drops in 0.5 s (0.0/s)"))
        #expect(none.stdout.contains("filtered out: 7 drops"))
    }

    func summary(_ stdout: String) throws -> [String: Any] {
        let line = try #require(stdout.split(separator: "\n").last)
        return try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func jsonLinesKeys() throws {
        let r = try CLIRunner.run(["drops", "--json", "--interval", "1s", Self.ftrace])
        #expect(r.status == 1)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        let interval = try #require(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(Set(interval.keys) == ["type", "clock", "startTime", "endTime", "drops", "lost", "lostUnknown", "groups", "reasons", "protocols", "schemaVersion"])
        #expect(interval["type"] as? String == "interval")
        let s = try summary(r.stdout)
        #expect(Set(s.keys) == ["type", "source", "sourceDetail", "seconds", "clock", "startTime", "endTime", "drops", "lost", "lostUnknown",
                                "groups", "reasons", "protocols", "filteredOut", "unattributed", "notes", "input", "schemaVersion"])
        #expect(s["source"] as? String == "file")
        #expect(s["drops"] as? Int == 7)
        let groups = try #require(s["groups"] as? [[String: Any]])
        #expect(Set(groups[0].keys) == ["count", "location", "symbol", "offset", "address", "module", "hashed", "origin",
                                        "reason", "reasonCode", "protocol", "protocolNumber", "comm", "hardwareTrap"])
        #expect(groups[0]["location"] as? String == "__udp4_lib_rcv+0x4bc")
        #expect(groups[0]["offset"] as? String == "0x4bc")
        #expect(groups[0]["count"] as? Int == 3)
        #expect(groups[0]["protocol"] as? String == "IPv4")
        #expect(groups[0]["protocolNumber"] as? Int == 2048)
        #expect(groups[0]["address"] is NSNull)
        let reasons = try #require(s["reasons"] as? [[String: Any]])
        #expect(Set(reasons[0].keys) == ["reason", "code", "count", "explanation"])
        #expect(reasons.map { $0["reason"] as? String } == ["NO_SOCKET", "NETFILTER_DROP"])
        let input = try #require(s["input"] as? [String: Any])
        #expect(input["drops"] as? Int == 7)
        #expect(input["headerLines"] as? Int == 12)
    }

    @Test func numericReasonsNeedTheCapturingKernelsFormatFile() throws {
        let raw = DropFixtures.path("trace-cmd-report-R-6.18.txt")
        let unnamed = try CLIRunner.run(["drops", raw])
        #expect(unnamed.stdout.contains("3 drops at __udp4_lib_rcv+0x4bc [software] reason #3"))
        #expect(unnamed.stdout.contains("note: 7 drops have numeric reasons"))
        let named = try CLIRunner.run(["drops", "--format-file", DropFixtures.path("kfree_skb-format-6.18.txt"), raw])
        #expect(named.stdout.contains("2 drops at nft_do_chain+0x3e8 [software] reason NETFILTER_DROP"))
        #expect(!named.stdout.contains("note:"))
        let bad = try CLIRunner.run(["drops", "--format-file", DropFixtures.path("header_page-6.18.txt"), raw])
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("kvmscope: '"))
        #expect(bad.stderr.contains("not a tracepoint format file"))
    }

    @Test func bareAddressesAreNamedWithTheCapturingHostsKallsyms() throws {
        // perf script lines in the ≤5.16 format (location=%p printed as 0x...), addresses of the 6.18 capture.
        let lines = """
                 bash  4044 [001]  1360.824430: skb:kfree_skb: skbaddr=0xffff88816333f300 protocol=2048 location=0xffffffff82046f4c
                 bash  4044 [001]  1360.824473: skb:kfree_skb: skbaddr=0xffff88816333fe00 protocol=2048 location=0xffffffff82046f4c
                 bash  4044 [001]  1361.126198: skb:kfree_skb: skbaddr=0xffff88816333fe00 protocol=2048 location=0xffffffff81f63638

        """
        let bare = try CLIRunner.run(["drops", "-"], stdin: lines)
        #expect(bare.stdout.contains("2 drops at 0xffffffff82046f4c [software]\n"))
        #expect(bare.stdout.contains("note: locations are bare addresses: pass --kallsyms"))
        let named = try CLIRunner.run(["drops", "--kallsyms", DropFixtures.path("kallsyms-excerpt-6.18.txt"), "-"], stdin: lines)
        #expect(named.stdout.contains("2 drops at __udp4_lib_rcv+0x4bc (0xffffffff82046f4c) [software]\n"))
        #expect(named.stdout.contains("1 drop at nft_do_chain+0x3e8 (0xffffffff81f63638) [software]\n"))
        #expect(!named.stdout.contains("by reason"))
    }

    @Test func hashedPointersAreSaidToBeUnresolvable() throws {
        let r = try CLIRunner.run(["drops", "-"], stdin: "     ksoftirqd/0-9     [000] ..s.   331.514326: kfree_skb: skbaddr=000000006a8cd2a3 protocol=4 location=00000000a6aa3c2b\n")
        #expect(r.stdout.contains("1 drop at hashed pointer 00000000a6aa3c2b [software]"))
        #expect(r.stdout.contains("by protocol: 802.2 (0x0004) 1"))
        #expect(r.stdout.contains("note: 1 drops have hashed locations"))
    }

    @Test func badInputAndMissingFiles() throws {
        let garbage = try CLIRunner.run(["drops", "-"], stdin: "hello\nworld\n\u{01}\u{02}\n")
        #expect(garbage.status == 2)
        #expect(garbage.stdout.isEmpty)
        #expect(garbage.stderr == "kvmscope: '<stdin>': no skb:kfree_skb events in 3 lines (expected ftrace trace text, trace-cmd report or perf script of skb:kfree_skb)\n")
        let missing = try CLIRunner.run(["drops", "/nonexistent/trace.txt"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "kvmscope: cannot open '/nonexistent/trace.txt': No such file or directory\n")
        let dir = try CLIRunner.run(["drops", "/tmp"])
        #expect(dir.status == 1)
        // Empty input is a usage error on every command (InputConventionsTests).
        let empty = try CLIRunner.run(["drops", "-"], stdin: "")
        #expect(empty.status == 2)
        #expect(empty.stderr == "kvmscope: standard input is empty\n")
        // Only normal frees: not an error, and nothing counted.
        let consumed = try CLIRunner.run(["drops", "-"], stdin: "  bash  4044 [001]  1360.824430: skb:consume_skb: skbaddr=0xffff88816333f300 location=skb_free_datagram+0x1c\n")
        #expect(consumed.status == 0)
        #expect(consumed.stdout.contains("not counted: 1 consume_skb (normal frees, not drops)"))
        // A very long line among good ones is skipped and counted.
        let long = String(repeating: "x", count: 70_000)
        let mixed = try CLIRunner.run(["drops", "--json", "-"], stdin: long + "\n" + (try DropFixtures.text("perf-script-6.18.txt")))
        let s = try summary(mixed.stdout)
        #expect(s["drops"] as? Int == 7)
        #expect((s["input"] as? [String: Any])?["overlongLines"] as? Int == 1)
    }

    /// Other programs' logs are not drop captures: a guest console (its `[ 1.2] virtio0: [vda] ...`
    /// lines once passed as "other trace events"), a QEMU trace, a host kernel log and a trace of
    /// other events are each refused with exit 2, never reported as "0 drops".
    @Test func otherLogsAreRefusedNotReportedAsNoDrops() throws {
        for (path, others) in [(LabFixtures.path("write-eio", "console.log"), false),
                               (LabFixtures.path("write-eio", "trace.log"), false),
                               (LabFixtures.path("host-disk-eio", "host-dmesg.log"), false),
                               (TestFixtures.path("guest/classic-report.log"), false)] {
            let r = try CLIRunner.run(["drops", path])
            #expect(r.status == 2, "\(path): \(r.stdout)")
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.hasPrefix("kvmscope: '\(path)': no skb:kfree_skb events in "), "\(r.stderr)")
            #expect(r.stderr.contains("other trace events") == others, "\(r.stderr)")
        }
        let sched = "          <idle>-0       [001] d..2.  1360.824430: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=bash next_pid=4044 next_prio=120\n"
            + "            bash-4044    [001] .....  1360.824473: sys_enter: NR 1 (1, 2, 3)\n"
        let other = try CLIRunner.run(["drops", "-"], stdin: sched)
        #expect(other.status == 2)
        #expect(other.stderr == "kvmscope: '<stdin>': no skb:kfree_skb events in 2 lines (expected ftrace trace text, trace-cmd report or perf script of skb:kfree_skb, only 2 other trace events: was skb:kfree_skb enabled?)\n")
        // A real capture with other events around its drops still counts them as other events.
        let mixed = try CLIRunner.run(["drops", "--json", "-"], stdin: sched + (try DropFixtures.text("perf-script-6.18.txt")))
        let s = try summary(mixed.stdout)
        #expect(s["drops"] as? Int == 7)
        #expect((s["input"] as? [String: Any])?["otherEvents"] as? Int == 2)
        #expect((s["input"] as? [String: Any])?["skippedLines"] as? Int == 0)
    }

    @Test func usageErrorsExit2() throws {
        for args in [["drops", "--source", "netdm", Self.ftrace], ["drops", "--duration", "1s", Self.ftrace],
                     ["drops", "--protocol", "ipx9", Self.ftrace], ["drops", "--reason", "NO SOCKET", Self.ftrace],
                     ["drops", "--top", "0", Self.ftrace], ["drops", "--interval", "1ms", Self.ftrace],
                     ["drops", "--format-file", "x"], ["drops", "--by", "colour", Self.ftrace],
                     ["drops", "--location", "foo+zz", Self.ftrace], ["drops", "--netns", "x", Self.ftrace],
                     ["drops", "--bogus"], ["drops", "--source", "ebpf"]] {
            let r = try CLIRunner.run(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(!r.stderr.isEmpty)
            #expect(r.stdout.isEmpty)
        }
    }

    @Test func helpShowsRealExamplesAndTheNetnsCaveat() throws {
        let r = try CLIRunner.run(["drops", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("\n  3 drops at __udp4_lib_rcv+0x4bc [software] reason NO_SOCKET\n"))
        #expect(r.stdout.contains("\n  $ sudo kvmscope drops --netns vm1 --reason NETFILTER_DROP --json\n"))
        #expect(r.stdout.contains("--netns is not exact"))
        #expect(r.stdout.contains("Exit status: 0 no drops"))
    }
}
