import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope

@Suite struct TraceCommandTests {
    static var writeEIO: String { TraceTestData.lab("write-eio").path }

    @Test func failuresGiveExitStatusOneAndAReadableReport() throws {
        let r = try CLIRunner.run(["trace", "--color", "never", Self.writeEIO])
        #expect(r.status == 1)
        #expect(r.stderr == "")
        #expect(r.stdout.contains("FAILURES: 1\n"))
        #expect(r.stdout.contains("  16:06:32.754736  write sector 2048+8  device 0x564184f66810  [backend-error, EIO, guest: IOERR]\n"))
        #expect(r.stdout.contains("    the storage under QEMU failed the write with EIO (Input/output error); QEMU passed it to the guest as IOERR (werror=report, or enospc (the default), which reports all but ENOSPC)\n"))
        #expect(r.stdout.contains("IN FLIGHT AT END: none"))
        #expect(r.stdout.contains("write pop→fill"))
        // Failures come before in-flight requests, which come before latency.
        let f = r.stdout.range(of: "FAILURES")!.lowerBound, i = r.stdout.range(of: "IN FLIGHT")!.lowerBound
        let l = r.stdout.range(of: "LATENCY")!.lowerBound
        #expect(f < i && i < l)
    }

    @Test func cleanTraceFromStdinExitsZero() throws {
        var t = SyntheticTrace()
        t.request(vq: "0x7f00", vdev: "0xd000", elem: "0x5000", write: false, sector: 0, sectors: 8)
        let r = try CLIRunner.run(["trace", "-"], stdin: t.text)
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("<stdin>: QEMU log backend, 5 lines"))
        #expect(r.stdout.contains("FAILURES: none"))
    }

    @Test func jsonHasTheDocumentedKeys() throws {
        let r = try CLIRunner.run(["trace", "--json", TraceTestData.lab("enospc-pause").path])
        #expect(r.status == 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(Set(json.keys) == ["input", "timeSpan", "devices", "requests", "failuresTotal", "failuresShown", "failures",
                                   "failureGroups", "inFlightTotal", "inFlight", "leakedTotal", "vmPauses", "latency",
                                   "throughput", "warnings", "coverage", "scsi", "backend", "schemaVersion"])
        let requests = try #require(json["requests"] as? [String: Int])
        #expect(requests == ["completed": 5, "failed": 0, "inFlightAtEnd": 0, "discardedAtReset": 0,
                             "pausedAndRetried": 1, "backendErrorsIgnored": 0, "outcomeUnknown": 0])
        let failure = try #require((json["failures"] as? [[String: Any]])?.first)
        #expect(Set(failure.keys) == ["device", "queue", "request", "operation", "sector", "sectors", "errno", "errnoName",
                                      "errnoMessage", "guestStatus", "cause", "retrySucceeded", "attempts",
                                      "waitedSeconds", "time", "sinceStartSeconds", "explanation"])
        #expect(failure["errno"] as? Int == 28)
        #expect(failure["cause"] as? String == "paused-retried")
        #expect(failure["retrySucceeded"] as? Bool == true)
        #expect(failure["guestStatus"] as? String == "OK")
        let write = try #require((json["latency"] as? [String: Any])?["write"] as? [String: Any])
        #expect(Set(write.keys) == ["requests", "popToFill", "handleToComplete", "bytes"])
        let pop = try #require(write["popToFill"] as? [String: Any])
        #expect(Set(pop.keys) == ["count", "minUs", "meanUs", "maxUs", "stddevUs", "p50Us", "p90Us", "p99Us", "p999Us"])
        let input = try #require(json["input"] as? [String: Any])
        #expect((input["stats"] as? [String: Any])?["format"] as? String == "qemu-log")
    }

    @Test func jsonNullsForWhatNeverHappened() throws {
        let r = try CLIRunner.run(["trace", "--json", TraceTestData.lab("werror-stop").path])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let failure = try #require((json["failures"] as? [[String: Any]])?.first)
        // Documented keys are always present: a guest status never sent is null.
        #expect(failure["guestStatus"] is NSNull)
        #expect(failure.keys.contains("errnoMessage"))
        #expect(failure["retrySucceeded"] as? Bool == false)
        let inFlight = try #require((json["inFlight"] as? [[String: Any]])?.first)
        #expect(inFlight["leaked"] as? Bool == true)
    }

    @Test func eventDumpWithFilterAndGrep() throws {
        let r = try CLIRunner.run(["trace", "--filter", "virtio_blk_*", "--grep", "ret=-5", Self.writeEIO])
        #expect(r.status == 0)
        #expect(r.stdout == "virtio_blk_rw_complete 0.000 tid=21601 vdev=0x564184f66810 req=0x56418437e2c0 ret=0xfffffffffffffffb\n")
        let pops = try CLIRunner.run(["trace", "--events-only", "--filter", "virtqueue_pop", Self.writeEIO])
        #expect(pops.stdout.split(separator: "\n").count == 7)
        #expect(pops.stdout.split(separator: "\n").allSatisfy { $0.hasPrefix("virtqueue_pop ") })
        // Any of QEMU's events, not only the analysed ones, when trace-events-all is installed.
        if FileManager.default.fileExists(atPath: "/usr/share/qemu/trace-events-all") {
            let blk = try CLIRunner.run(["trace", "--filter", "blk_co_pwritev", "--grep", "offset=1048576", Self.writeEIO])
            #expect(blk.stdout.split(separator: "\n").count == 1)
            #expect(blk.stdout.contains("bytes=0x1000"))
        }
    }

    @Test func eventDumpAsJSONLines() throws {
        let r = try CLIRunner.run(["trace", "--json", "--filter", "virtio_blk_rw_complete", "--grep", "ret=-5", Self.writeEIO])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 1)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(obj["name"] as? String == "virtio_blk_rw_complete")
        #expect(obj["thread"] as? Int == 21601)
        let args = try #require(obj["args"] as? [String: Any])
        #expect(args["ret"] as? Int == -5)
        #expect(args["req"] as? String == "0x56418437e2c0")
        #expect(String(lines[0]).contains("\"time\":1795363592.754736000"))
    }

    @Test func simpletraceOfAnotherVersionIsRejected() throws {
        var w = SimpleTraceWriter(version: 3)
        w.mapping(id: 0, name: "virtqueue_pop")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvmscope-v3-\(getpid()).bin").path
        try Data(w.bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CLIRunner.run(["trace", path])
        #expect(r.status == 2)
        #expect(r.stdout == "")
        #expect(r.stderr == "kvmscope: '\(path)': simpletrace format version 3 is not supported: kvmscope reads version 4, what QEMU writes today (read older files with the simpletrace.py of the QEMU that wrote them)\n")
    }

    @Test func simpletraceFileIsAnalysed() throws {
        let r = try CLIRunner.run(["trace", "--color", "never", "--events", TestFixtures.path("trace/simpletrace-v4.trace-events"),
                                   TestFixtures.path("trace/simpletrace-v4.bin")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("QEMU simpletrace v4"))
        #expect(r.stdout.contains("[paused-retried, ENOSPC, guest: OK]"))
        #expect(r.stdout.contains("[backend-error, EIO, guest: IOERR]"))
        #expect(r.stdout.contains("note: QEMU dropped 17 events (simpletrace buffer full)"))
    }

    @Test func badInputsGiveOneClearLine() throws {
        let missing = try CLIRunner.run(["trace", "/nonexistent/trace.log"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "kvmscope: cannot open '/nonexistent/trace.log': No such file or directory\n")

        let garbage = try CLIRunner.run(["trace", "-"], stdin: "hello\nworld\n")
        #expect(garbage.status == 2)
        #expect(garbage.stderr.hasPrefix("kvmscope: no QEMU trace events found in <stdin>: not a QEMU trace?"))

        let badGrep = try CLIRunner.run(["trace", "--grep", "nonsense", Self.writeEIO])
        #expect(badGrep.status == 2)
        #expect(badGrep.stderr.contains("--grep needs FIELD=VALUE"))

        let badFormat = try CLIRunner.run(["trace", "--format", "ftrace", Self.writeEIO])
        #expect(badFormat.status == 2)

        let binaryJunk = try CLIRunner.run(["trace", "--format", "qemu-log", "-"],
                                           stdin: "\u{1}\u{2}\u{3}\n14933@1795363357.1:virtio_set_status vdev 0x1 val 0\n")
        #expect(binaryJunk.status == 0)
        #expect(binaryJunk.stdout.contains("1 binary lines"))
    }

    @Test func followPrintsFailuresBeforeTheSummary() throws {
        let text = try String(contentsOfFile: Self.writeEIO, encoding: .utf8)
        let r = try CLIRunner.run(["trace", "--follow", "--color", "never", "-"], stdin: text)
        #expect(r.status == 1)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first?.hasPrefix("1795363592.754736 FAILURE write sector 2048+8 device 0x564184f66810 [backend-error, EIO, guest: IOERR]") == true)
        #expect(r.stdout.contains("FAILURES: 1"))
    }

    @Test func helpShowsExamples() throws {
        let r = try CLIRunner.run(["trace", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("kvmscope trace --events-only --filter 'virtio_blk_*' --grep ret=-5"))
    }
}

@Suite struct TraceFollowInterruptTests {
    /// `--follow` on a file: lines appended later are read, and Ctrl-C (SIGINT) ends the
    /// input so that the summary is still printed.
    @Test func ctrlCPrintsTheSummary() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvmscope-follow-\(getpid()).log").path
        let lines = try String(contentsOfFile: TraceTestData.lab("write-eio").path, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        try (lines.prefix(30).joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }

        let p = Process()
        p.executableURL = CLIRunner.binary
        p.arguments = ["trace", "--follow", "--color", "never", path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = Pipe()
        try p.run()
        // Generous: on a loaded 2-core machine the binary can take seconds to start following
        // (a SIGINT before it reads anything ends it with no summary, which is not the point here).
        Thread.sleep(forTimeInterval: 3)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()
        handle.write(Data((lines.dropFirst(30).joined(separator: "\n")).utf8))
        try handle.close()
        Thread.sleep(forTimeInterval: 2)
        p.interrupt()
        // Never hang the suite: if SIGINT did not end it within 10 s, kill it (the test fails).
        let pid = p.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 10) { if p.isRunning { kill(pid, SIGKILL) } }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        #expect(p.terminationStatus == 1)
        #expect(text.hasPrefix("1795363592.754736 FAILURE write sector 2048+8"))
        #expect(text.contains("\(path): QEMU log backend, 70 lines"))
        #expect(text.contains("FAILURES: 1\n"))
    }
}
