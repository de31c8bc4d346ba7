import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

@Suite struct GuestCommandTests {
    typealias F = GuestFixtures

    @Test func labCaptureFindsTheErrorAndExits1() throws {
        let r = try CLIRunner.run(["guest", F.lab("write-eio")])
        #expect(r.status == 1)
        #expect(r.stderr.isEmpty)
        #expect(r.stdout.contains("vda — virtio disk, 64 MiB (131072 × 512-byte blocks)"))
        #expect(r.stdout.contains("1 failed request: all write; all \"I/O\" errors (errno EIO)"))
        #expect(r.stdout.contains("2048  1× write"))
        #expect(!r.stdout.contains("\u{1B}["))      // not a terminal: no colour
    }

    @Test func cleanLogExits0() throws {
        let r = try CLIRunner.run(["guest", F.lab("enospc-pause")])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("No disk errors in "))
        #expect(r.stdout.contains("vda — virtio disk, 64 MiB (131072 × 512-byte blocks): no errors"))
    }

    @Test func readsStandardInput() throws {
        let log = try String(contentsOfFile: F.fixture("classic-report.log"), encoding: .utf8)
        for args in [["guest", "-"], ["guest"]] {
            let r = try CLIRunner.run(args, stdin: log)
            #expect(r.status == 1, "\(args)")
            #expect(r.stdout.contains("Disk errors in <stdin>: vda, dm-0"), "\(args)")
        }
        // Empty input is a usage error on every command (InputConventionsTests).
        let empty = try CLIRunner.run(["guest", "-"], stdin: "")
        #expect(empty.status == 2)
        #expect(empty.stderr == "kvmscope: standard input is empty\n")
    }

    @Test func jsonHasTheDocumentedKeys() throws {
        let r = try CLIRunner.run(["guest", "--json", F.lab("ext4-readonly")])
        #expect(r.status == 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["source", "input", "detailLimit", "devices", "suppressed", "eventsOverDeviceLimit", "hasDiskErrors"] {
            #expect(json[key] != nil, "\(key)")
        }
        let devices = try #require(json["devices"] as? [[String: Any]])
        let vda = try #require(devices.first)
        for key in ["name", "kind", "parent", "capacity", "blockErrors", "totalBlockErrors", "blockErrorsTruncated",
                    "operations", "errorTypes", "sectorRanges", "sectorRangesCoalesced", "sectorMergeGap",
                    "bufferErrors", "totalBufferErrors", "bufferErrorsTruncated", "lostBlocks", "inferredBlockSize",
                    "filesystems", "scsi", "suppressed", "suppressedByFunction", "firstError", "lastError", "hasErrors"] {
            #expect(vda.keys.contains(key), "\(key)")
        }
        #expect(vda["name"] as? String == "vda")
        #expect(vda["parent"] is NSNull)
        let block = try #require((vda["blockErrors"] as? [[String: Any]])?.first)
        #expect(block["sector"] as? Int == 17026)
        #expect(block["operation"] as? String == "write")
        #expect(block["errorType"] as? String == "I/O")
        #expect(block["errno"] as? String == "EIO")
        #expect(block["uptimeSeconds"] as? Double == 2.32701)
        #expect(block["line"] as? Int == 12)
        #expect(block["kernelShape"] as? String == "op")
        #expect(block["wallClock"] is NSNull)
        let buffers = try #require(vda["bufferErrors"] as? [[String: Any]])
        #expect(buffers.count == 16)
        #expect(buffers.first?["logicalBlock"] as? Int == 8513)
        #expect(buffers.first?["loss"] as? String == "async-write")
        #expect(buffers.first?["lossInferred"] as? String == "ext4-writeback")
        #expect(buffers.contains { $0["loss"] as? String == "sync-write" && $0["lossInferred"] is NSNull })
        let fs = try #require((vda["filesystems"] as? [[String: Any]])?.first)
        #expect(fs["type"] as? String == "ext4")
        #expect(fs["readOnly"] as? Bool == true)
        #expect(fs["journalAborted"] as? Bool == true)
        #expect(fs["shutdown"] as? Bool == false)
        #expect((fs["readOnlyAt"] as? [String: Any])?["line"] as? Int == 39)
        #expect(vda["suppressed"] as? Int == 0)
        #expect((vda["lostBlocks"] as? [String: Any])?["syncWrite"] as? Int == 6)
        let input = try #require(json["input"] as? [String: Any])
        #expect((input["styles"] as? [String: Any])?["dmesg"] as? Int == 439)
        #expect(input["duplicateEvents"] as? Int == 41)
    }

    @Test func badInputIsOneLineAndExit1() throws {
        let dir = FileManager.default.temporaryDirectory.path
        let cases: [([String], String)] = [
            (["guest", "/nonexistent/kern.log"], "kvmscope: cannot open '/nonexistent/kern.log': No such file or directory\n"),
            (["guest", dir], "kvmscope: '\(dir)' is a directory, not a file\n"),
            // /proc/self/mem opens but every read at offset 0 fails with EIO, even for root.
            (["guest", "/proc/self/mem"], "kvmscope: error reading '/proc/self/mem': Input/output error\n"),
        ]
        for (args, message) in cases {
            let r = try CLIRunner.run(args)
            #expect(r.status == 1, "\(args)")
            #expect(r.stdout.isEmpty, "\(args)")
            #expect(r.stderr == message, "\(args)")
        }
    }

    @Test func usageErrorsExit2() throws {
        for args in [["guest", "--bogus", "x"], ["guest", "--top", "-1", "x"], ["guest", "--top", "many", "x"], ["guest", "a", "b"]] {
            let r = try CLIRunner.run(args)
            #expect(r.status == 2, "\(args)")
            #expect(!r.stderr.isEmpty, "\(args)")
        }
    }

    @Test func colourOnlyWhenAsked() throws {
        let always = try CLIRunner.run(["guest", "--color", "always", F.lab("write-eio")])
        #expect(always.stdout.contains("\u{1B}[31m1 failed request\u{1B}[0m"))
        let never = try CLIRunner.run(["guest", "--color", "never", F.lab("write-eio")])
        #expect(!never.stdout.contains("\u{1B}["))
    }

    @Test func helpShowsRealExamples() throws {
        let r = try CLIRunner.run(["guest", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("dmesg | kvmscope guest -"))
        #expect(r.stdout.contains("2 failed requests: all write; all \"I/O\" errors (errno EIO)"))
        #expect(r.stdout.contains("8 buffer errors: 8 lost async writes"))
        let root = try CLIRunner.run(["--help"])
        #expect(root.stdout.contains("guest"))
    }
}
