import XCTest
@testable import KVMScopeLive

/// A QEMU monitor in memory: trace-event states, the log file HMP `logfile` set, every
/// command sent. `failSetStateAfter` makes the N-th trace-event-set-state fail (a QEMU that
/// goes away mid-way), to prove the state file was written before the change.
final class FakeMonitor: QMPMonitor {
    let address = "unix:/fake.qmp"
    let qemuVersion = "7.2.22 (fake)"
    var pollDescriptor: Int32 { -1 }
    var states: [String: String]
    var logFile: String?
    var sent: [String] = []
    var failSetStateAfter: Int?
    /// Commands this QEMU does not have (an old one): CommandNotFound, as QEMU answers.
    var missingCommands: Set<String> = []
    var events: [QMPMessage] = []
    /// Disk requests query-blockstats adds per call.
    var requestsPerSnapshot = 0
    private var blockstatsCalls = 0
    private var setStates = 0

    init(states: [String: String], logFile: String?) { self.states = states; self.logFile = logFile }

    func execute(_ command: String, arguments: [String: Any]?, timeout: Double) throws -> Any {
        sent.append(command)
        if missingCommands.contains(command) { throw QMPError.commandNotFound(command: command, qemuVersion: qemuVersion) }
        switch command {
        case "query-status": return ["status": "running", "running": true]
        case "query-block": return [[String: Any]]()
        case "query-blockstats":
            blockstatsCalls += 1
            return [["device": "drive0", "stats": ["rd_operations": requestsPerSnapshot * blockstatsCalls, "wr_operations": 0, "flush_operations": 0]]]
        case "trace-event-get-state": return states.map { ["name": $0.key, "state": $0.value, "vcpu": false] }
        case "trace-event-set-state":
            setStates += 1
            if let n = failSetStateAfter, setStates > n { throw QMPError.closed(address: address) }
            let name = arguments?["name"] as! String
            let on = arguments?["enable"] as! Bool
            guard states[name] != nil, states[name] != "unavailable" else {
                throw QMPError.commandFailed(command: command, errorClass: "GenericError", desc: "No such trace event '\(name)'")
            }
            states[name] = on ? "enabled" : "disabled"
            return [String: Any]()
        case "human-monitor-command":
            let line = arguments?["command-line"] as! String
            if line.hasPrefix("logfile ") { logFile = String(line.dropFirst(8)); return "" }
            return "unknown command\r\n"
        default:
            throw QMPError.commandNotFound(command: command, qemuVersion: qemuVersion)
        }
    }

    func takeEvents(waiting seconds: Double) throws -> [QMPMessage] {
        defer { events = [] }
        return events
    }

    func close() {}
}

final class RecordRestoreTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "kvmscope-record-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    static let qemuStates = ["virtio_blk_rw_complete": "disabled", "virtio_blk_req_complete": "enabled",
                             "virtio_blk_handle_write": "disabled", "nbd_co_request_fail": "unavailable",
                             "monitor_qmp_cmd_in_band": "disabled"]

    /// A QEMU that exited but is not yet reaped (a zombie still answers kill(pid, 0)) has nothing
    /// left to restore: restore must not tell the user to run --restore on it.
    func testAnExitedUnreapedProcessDoesNotRun() throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { free(argv[0]) }
        XCTAssertEqual(posix_spawn(&pid, "/bin/true", nil, nil, argv, nil), 0)
        defer { var st: Int32 = 0; waitpid(pid, &st, 0) }
        var zombie = false
        for _ in 0..<100 where !zombie {
            Thread.sleep(forTimeInterval: 0.02)
            zombie = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(") Z ") == true
        }
        XCTAssertTrue(zombie, "the child exited and waits to be reaped")
        XCTAssertEqual(kill(pid, 0), 0, "kill(2) still finds it")
        XCTAssertFalse(QEMUProcess.runs(pid: pid))
        XCTAssertTrue(QEMUProcess.runs(pid: getpid()))
    }

    func testRecordTurnsOffOnlyWhatItTurnedOnAndPointsTheLogBack() throws {
        let logFile = dir + "-vm1-qemu.log"
        FileManager.default.createFile(atPath: logFile, contents: nil)
        defer { unlink(logFile) }
        let fake = FakeMonitor(states: Self.qemuStates, logFile: logFile)
        var options = RecordOptions(outputDirectory: dir)
        options.duration = 0.2
        options.hostKernel = false
        options.events = ["virtio_blk_rw_complete", "virtio_blk_req_complete", "virtio_blk_handle_write", "nbd_co_request_fail", "not_in_qemu"]
        let process = QEMUProcess(pid: getpid(), arguments: ["qemu-system-x86_64", "-D", logFile, "-msg", "timestamp=on"])
        let manifest = try VMRecorder(monitor: fake, process: process, options: options).run()

        XCTAssertEqual(manifest.traceEvents.turnedOn, ["virtio_blk_handle_write", "virtio_blk_rw_complete"])
        XCTAssertEqual(manifest.traceEvents.alreadyOn, ["virtio_blk_req_complete"])
        XCTAssertEqual(manifest.traceEvents.notInThisQEMU, ["nbd_co_request_fail", "not_in_qemu"])
        XCTAssertEqual(fake.states, Self.qemuStates, "every event back in its state, the one already on still on")
        XCTAssertEqual(fake.logFile, logFile, "QEMU's log back at its -D file")
        XCTAssertTrue(manifest.restored)
        XCTAssertEqual(manifest.stopReason, "duration")
        XCTAssertFalse(fake.sent.contains { ["stop", "cont", "system_reset", "quit"].contains($0) }, "record never changes the VM's run state")
        let mode = try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o700)
    }

    func testWithoutDashDTheLogGoesBackToQEMUsStderr() throws {
        let fake = FakeMonitor(states: Self.qemuStates, logFile: nil)
        var options = RecordOptions(outputDirectory: dir)
        options.duration = 0.1
        options.hostKernel = false
        _ = try VMRecorder(monitor: fake, process: QEMUProcess(pid: getpid(), arguments: ["qemu-system-x86_64"]), options: options).run()
        XCTAssertEqual(fake.logFile, "/dev/stderr")
    }

    /// QEMU goes away after the first event was turned on: the state file already lists every
    /// event record meant to turn on, so `--restore` (here against a QEMU that is back) turns
    /// them off — turning off one that never got turned on is harmless, missing one is not.
    func testStateFileIsWrittenBeforeTheChanges() throws {
        let fake = FakeMonitor(states: Self.qemuStates, logFile: nil)
        fake.failSetStateAfter = 1
        var options = RecordOptions(outputDirectory: dir)
        options.hostKernel = false
        options.events = ["virtio_blk_rw_complete", "virtio_blk_handle_write"]
        let m = try VMRecorder(monitor: fake, process: QEMUProcess(pid: getpid(), arguments: ["qemu-system-x86_64"]), options: options).run()
        XCTAssertEqual(m.stopReason, "error")
        var state = try RecordState.load(directory: dir)
        XCTAssertEqual(state.eventsTurnedOn, ["virtio_blk_handle_write", "virtio_blk_rw_complete"])
        let again = FakeMonitor(states: fake.states, logFile: nil)
        XCTAssertNil(VMRecorder.restore(&state, monitor: again, directory: dir))
        XCTAssertEqual(again.states["virtio_blk_handle_write"], "disabled")
        XCTAssertEqual(again.states["virtio_blk_rw_complete"], "disabled")
        XCTAssertEqual(again.states["virtio_blk_req_complete"], "enabled")
        XCTAssertTrue(try RecordState.load(directory: dir).restored)
    }

    func testANonEmptyOutputDirectoryIsRefused() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/capture.json", contents: Data("{}".utf8))
        let fake = FakeMonitor(states: Self.qemuStates, logFile: nil)
        XCTAssertThrowsError(try VMRecorder(monitor: fake, process: QEMUProcess(pid: getpid(), arguments: []),
                                            options: RecordOptions(outputDirectory: dir)).run()) { e in
            XCTAssertTrue("\(e)".contains("is not empty"), "\(e)")
        }
        XCTAssertTrue(fake.sent.isEmpty, "nothing sent to QEMU when the output is refused")
    }

    /// A SHUTDOWN event ends the recording by itself, and the events are restored.
    func testGuestShutdownStopsAndRestores() throws {
        let fake = FakeMonitor(states: Self.qemuStates, logFile: nil)
        let line = Array(#"{"timestamp": {"seconds": 1796143377, "microseconds": 77991}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#.utf8)
        fake.events = [QMPMessage(line: line, object: try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any])]
        var options = RecordOptions(outputDirectory: dir)
        options.hostKernel = false
        let m = try VMRecorder(monitor: fake, process: QEMUProcess(pid: getpid(), arguments: ["qemu-system-x86_64"]), options: options).run()
        XCTAssertEqual(m.stopReason, "vm-shutdown")
        XCTAssertEqual(fake.states, Self.qemuStates)
        let qmp = try String(contentsOfFile: dir + "/qmp.jsonl")
        XCTAssertEqual(qmp, String(decoding: line, as: UTF8.self) + "\n", "events saved verbatim")
    }

    /// Disk requests go on but no trace line ever arrives: a QEMU without the log trace
    /// backend. record says so, and how to trace it with SystemTap instead.
    func testRequestsWithoutTraceLinesAreReported() throws {
        let fake = FakeMonitor(states: Self.qemuStates, logFile: nil)
        fake.requestsPerSnapshot = 50
        var options = RecordOptions(outputDirectory: dir)
        options.duration = 4
        options.statsInterval = 0.5
        options.hostKernel = false
        let m = try VMRecorder(monitor: fake, process: QEMUProcess(pid: getpid(), arguments: ["/usr/bin/qemu-system-x86_64"]), options: options).run()
        let warning = try XCTUnwrap(m.missing.first { $0.contains("without the log trace backend") })
        XCTAssertTrue(warning.contains("qemu-trace-stap run -p \(getpid()) /usr/bin/qemu-system-x86_64"), warning)
    }

    /// A QEMU without trace-event-get-state (older than 2.2): refused with QEMU's version and
    /// the command, before anything was changed.
    func testAQEMUTooOldIsRefusedBeforeAnythingChanges() throws {
        let fake = FakeMonitor(states: Self.qemuStates, logFile: nil)
        fake.missingCommands = ["trace-event-get-state"]
        var options = RecordOptions(outputDirectory: dir)
        options.hostKernel = false
        XCTAssertThrowsError(try VMRecorder(monitor: fake, process: QEMUProcess(pid: getpid(), arguments: ["qemu-system-x86_64"]), options: options).run()) { e in
            XCTAssertEqual("\(e)", "QEMU 7.2.22 (fake) has no QMP command 'trace-event-get-state' (too old, or built without it)")
        }
        XCTAssertFalse(fake.sent.contains("trace-event-set-state") || fake.sent.contains("human-monitor-command"), "nothing changed: \(fake.sent)")
    }
}
