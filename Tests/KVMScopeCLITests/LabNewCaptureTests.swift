import Foundation
import Testing
import KVMScopeTestSupport

/// The lab captures added for issue 12 hold what their scenarios claim (lab/README.md): these
/// check the captured bytes only, not kvmscope's analysis of them, so that a re-capture that
/// lost the error (a module not loaded, the server killed too late, one boot only) fails here.
@Suite struct LabNewCaptureTests {
    func text(_ scenario: String, _ file: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: LabFixtures.path(scenario, file)))
        return String(decoding: data, as: UTF8.self)
    }

    /// Lines without their ends (the consoles end lines in CRLF, a single Character in Swift).
    func lines(_ scenario: String, _ file: String) throws -> [Substring] {
        try text(scenario, file).split(whereSeparator: \.isNewline)
    }

    func count(_ lines: [Substring], _ needle: String) -> Int { lines.filter { $0.contains(needle) }.count }

    @Test func scsiWriteEIOHasCheckConditionRetriesAndOneBlockIOErrorPerAttempt() throws {
        let console = try lines("scsi-write-eio", "console.log")
        #expect(count(console, "] I/O error, dev sda, sector 2048 op 0x1:(WRITE) ") >= 1)
        #expect(count(console, "[sda] tag#") >= 4)
        #expect(count(console, "Sense Key : Aborted Command [current]") >= 1)
        #expect(count(console, "Add. Sense: I/O process terminated") >= 1)
        #expect(count(console, "CDB: Write(10) 2a 00 00 00 08 00 00 00 08 00") >= 1)
        let trace = try lines("scsi-write-eio", "trace.log")
        // One sense build per attempt: the guest's first try plus its retries (sd: 5).
        // Sense key ABORTED COMMAND, ASC/ASCQ I/O PROCESS TERMINATED (QEMU's SENSE_CODE(IO_ERROR)).
        let attempts = trace.filter { $0.contains(":scsi_req_build_sense ") && $0.hasSuffix(" key 0x0b asc 0x00 ascq 0x06") }.count
        #expect(attempts == 6)
        #expect(trace.filter { $0.contains(":scsi_req_parsed_lba ") && $0.hasSuffix(" command 42 lba 2048") }.count == attempts)
        #expect(count(trace, "virtio_blk_handle_") == 0)
        let qmp = try lines("scsi-write-eio", "qmp.jsonl")
        #expect(count(qmp, #""event": "BLOCK_IO_ERROR""#) == attempts)
        #expect(count(qmp, #""operation": "write", "action": "report""#) == attempts)
    }

    @Test func ext4CorruptHasFilesystemErrorsWhileEveryRequestSucceeded() throws {
        let console = try lines("ext4-corrupt", "console.log")
        #expect(count(console, "EXT4-fs error (device vda): ext4_validate_block_bitmap:") >= 1)
        #expect(count(console, "bg 0: bad block bitmap checksum") >= 1)
        #expect(count(console, "iget: checksum invalid") >= 1)
        #expect(count(console, "Aborting journal on device vda-8.") >= 1)
        #expect(count(console, "] I/O error, dev vda") == 0)
        let trace = try lines("ext4-corrupt", "trace.log")
        let completions = trace.filter { $0.contains(":virtio_blk_req_complete ") }
        let rw = trace.filter { $0.contains(":virtio_blk_rw_complete ") }
        #expect(completions.count > 10 && rw.count > 10)
        #expect(completions.allSatisfy { $0.hasSuffix(" status 0") })
        #expect(rw.allSatisfy { $0.hasSuffix(" ret 0") })
        let qmp = try text("ext4-corrupt", "qmp.jsonl")
        #expect(!qmp.contains("BLOCK_IO_ERROR"))
        #expect(!qmp.contains(#""failed_wr_operations": 1"#) && !qmp.contains(#""failed_rd_operations": 1"#))
    }

    @Test func nbdServerKilledShowsTheClosedConnectionAndRefusedReconnects() throws {
        let trace = try lines("nbd-server-killed", "trace.log")
        #expect(count(trace, ":nbd_co_request_fail Request failed") >= 1)
        #expect(count(trace, "ret = -5, err: Connection closed") >= 1)
        #expect(count(trace, ":nbd_reconnect_attempt in_flight ") >= 1)
        #expect(count(trace, ":nbd_reconnect_attempt_result ret -111 ") >= 1)
        #expect(count(trace, ":virtio_blk_rw_complete ") > 0 && count(trace, " ret -5") >= 3)
        let console = try lines("nbd-server-killed", "console.log")
        #expect(count(console, "] I/O error, dev vda, sector ") >= 3)
        let run = try text("nbd-server-killed", "run.txt")
        #expect(run.contains("nbd_server=nbd://127.0.0.1:"))
        #expect(run.contains("killed qemu-nbd (SIGKILL)"))
        #expect(try text("nbd-server-killed", "qmp.jsonl").contains(#""event": "BLOCK_IO_ERROR""#))
    }

    @Test func twoBootHoldsBothBootsWithADifferentErrorInEach() throws {
        let console = try lines("two-boot", "console.log")
        let boots = console.indices.filter { console[$0].hasPrefix("kvmscope-lab: guest kernel: Linux version") }
        #expect(boots.count == 2)
        let reboot = try #require(console.firstIndex { $0 == "kvmscope-lab: reboot" })
        #expect(boots.count == 2 && boots[0] < reboot && reboot < boots[1])
        let first = console[..<reboot], second = console[reboot...]
        #expect(count(Array(first), "] I/O error, dev vda, sector 2048 op 0x1:(WRITE) ") >= 1)
        #expect(count(Array(first), "op 0x0:(READ)") == 0)
        #expect(count(Array(second), "] I/O error, dev vda, sector 8192 op 0x0:(READ) ") >= 1)
        #expect(count(Array(second), "op 0x1:(WRITE)") == 0)
        let qmp = try lines("two-boot", "qmp.jsonl")
        let write = try #require(qmp.firstIndex { $0.contains(#""operation": "write""#) })
        let reset = try #require(qmp.firstIndex { $0.contains(#""event": "RESET""#) })
        let read = try #require(qmp.firstIndex { $0.contains(#""operation": "read""#) })
        #expect(write < reset && reset < read)
    }
}
