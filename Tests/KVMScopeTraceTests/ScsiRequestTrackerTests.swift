import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeTrace

/// SCSI requests from lines in the exact format QEMU 7.2's log backend prints for the
/// hw/scsi/trace-events definitions (`name` + the event's printf format).
@Suite struct ScsiRequestTrackerTests {
    static func analyse(_ text: String) throws -> TraceReport {
        try TraceSession.analyse(MemoryByteSource(text, name: "scsi.log"), catalog: .bundled)
    }

    /// One command's events, in the order QEMU emits them (virtio-scsi.c, scsi-bus.c,
    /// scsi-disk.c). `tag` as virtio-scsi prints it (hex) and scsi-bus prints it (%d of int).
    static func command(at second: Int, tag: UInt32, cdb: [UInt8], dir: Int, length: Int, lba: UInt64?,
                        sense: (Int, Int, Int)? = nil, status: Int = 0, response: Int = 0, viaDisk: Bool = false) -> String {
        let hex = String(tag, radix: 16), dec = String(Int32(bitPattern: tag))
        var t = 0
        func line(_ s: String) -> String { t += 1; return "7001@\(1795400000 + second).\(String(format: "%06d", t)):\(s)\n" }
        var out = line("virtio_scsi_cmd_req virtio_scsi_cmd_req lun=0 tag=0x\(hex) cmd=0x\(String(cdb[0], radix: 16))")
        out += line("scsi_req_parsed target 0 lun 0 tag \(dec) command \(cdb[0]) dir \(dir) length \(length)")
        if let lba { out += line("scsi_req_parsed_lba target 0 lun 0 tag \(dec) command \(cdb[0]) lba \(lba)") }
        out += line("scsi_req_alloc target 0 lun 0 tag \(dec)")
        out += line("scsi_disk_new_request Command: lun=0 tag=0x\(hex) data=" + cdb.map { String(format: " %02x", $0) }.joined())
        if let (k, a, q) = sense {
            if viaDisk {
                out += line("scsi_disk_check_condition Command complete tag=0x\(hex) sense=\(k)/\(a)/\(q)")
            } else {
                out += line("scsi_req_build_sense target 0 lun 0 tag \(dec) key 0x" + String(format: "%02x asc 0x%02x ascq 0x%02x", k, a, q))
            }
        }
        out += line("scsi_req_dequeue target 0 lun 0 tag \(dec)")
        out += line("virtio_scsi_cmd_resp virtio_scsi_cmd_resp lun=0 tag=0x\(hex) response=\(response) status=0x\(String(status, radix: 16))")
        return out
    }

    static let write10: [UInt8] = [0x2a, 0, 0, 0, 0x01, 0, 0, 0, 0x08, 0]   // LBA 256, 8 blocks

    /// A blkdebug EIO on a write through virtio-scsi with werror=report: QEMU builds sense
    /// ABORTED COMMAND / I/O PROCESS TERMINATED (scsi_sense_from_errno) and completes with
    /// CHECK CONDITION; the guest retries, and each attempt fails the same way.
    @Test func writeEIOIsCheckConditionAbortedCommandPerAttempt() throws {
        var text = Self.command(at: 1, tag: 0x9100_0040, cdb: [0x28, 0, 0, 0, 0, 0, 0, 0, 0x08, 0], dir: 1, length: 4096, lba: 0)
        for attempt in 0..<3 {
            text += Self.command(at: 2 + attempt, tag: 0x9100_0040, cdb: Self.write10, dir: 2, length: 4096, lba: 256,
                                 sense: (0x0b, 0x00, 0x06), status: 2)
        }
        let r = try Self.analyse(text)
        let s = r.scsi
        #expect(s.seen && s.requests.completed == 1 && s.requests.failed == 3 && s.failuresTotal == 3)
        #expect(s.inFlightTotal == 0 && s.requests.outcomeUnknown == 0)
        let f = try #require(s.failures.first)
        #expect(f.tag == "0x91000040" && f.target == 0 && f.lun == 0)
        #expect(f.command?.name == "WRITE(10)" && f.command?.kind == "write" && f.command?.lba == 256 && f.command?.blocks == 8)
        #expect(f.command?.transferBytes == 4096 && f.command?.cdb == "2a 00 00 00 01 00 00 00 08 00")
        #expect(f.sector == 256 && f.sectors == 8 && f.blockSize == 512 && f.blockSizeSource == "transfer")
        #expect(f.status == 2 && f.statusName == "CHECK CONDITION" && f.response == 0 && f.responseName == "OK")
        let sense = try #require(f.sense)
        #expect(sense.key == 0x0b && sense.keyName == "ABORTED COMMAND" && sense.asc == 0 && sense.ascq == 6)
        #expect(sense.ascName == "I/O PROCESS TERMINATED" && sense.source == "scsi_req_build_sense")
        #expect(sense.hostErrno?.hasPrefix("EIO") == true)
        #expect(f.time == 1795400002.000008)      // virtio_scsi_cmd_resp
        #expect(f.explanation.contains("WRITE(10) of sector 256+8") && f.explanation.contains("instead of pausing the VM"))
        #expect(s.failures.map(\.time) == [1795400002.000008, 1795400003.000008, 1795400004.000008])
        #expect(s.devices == [ScsiDeviceSummary(target: 0, lun: 0, blockSize: 512, completed: 1, failed: 3, inFlightAtEnd: 0)])
        #expect(r.exitStatus == 1)
        #expect(r.coverage.bus(.virtioScsi)?.covered == true && r.coverage.bus(.virtioScsi)?.events == 31)
        #expect(r.coverage.bus(.virtioBlk)?.covered == false)
        #expect(r.timeSpan != nil)
    }

    /// A 4 KiB-block LUN: LBA 256 is 512-byte sector 2048 (what the guest's sd prints).
    @Test func lbaIsConvertedToSectorsWithTheLearnedBlockSize() throws {
        let read16: [UInt8] = [0x88, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0, 0, 0, 0x02, 0, 0]   // LBA 256, 2 blocks
        let text = Self.command(at: 1, tag: 7, cdb: read16, dir: 1, length: 8192, lba: 256,
                                sense: (3, 0x11, 0), status: 2, viaDisk: true)
        let r = try Self.analyse(text)
        let f = try #require(r.scsi.failures.first)
        #expect(f.command?.name == "READ(16)" && f.command?.blocks == 2)
        #expect(f.blockSize == 4096 && f.blockSizeSource == "transfer" && f.sector == 2048 && f.sectors == 16)
        #expect(f.sense?.keyName == "MEDIUM ERROR" && f.sense?.ascName == "UNRECOVERED READ ERROR")
        #expect(f.sense?.source == "scsi_disk_check_condition" && f.sense?.hostErrno == "ENODATA")
    }

    /// Unit attentions after a reset and the guest's probes answered ILLEGAL REQUEST are the
    /// normal SCSI conversation, not failures.
    @Test func unitAttentionAndRejectedProbesAreNotFailures() throws {
        var text = Self.command(at: 1, tag: 1, cdb: [0x00, 0, 0, 0, 0, 0], dir: 0, length: 0, lba: nil,
                                sense: (6, 0x29, 0), status: 2)
        text += Self.command(at: 2, tag: 2, cdb: [0xa3, 0x0c, 0x01, 0x93, 0, 0, 0, 0, 0x02, 0, 0, 0], dir: 1, length: 512, lba: nil,
                             sense: (5, 0x20, 0), status: 2)
        let r = try Self.analyse(text)
        #expect(r.scsi.requests.unitAttentions == 1 && r.scsi.requests.rejectedProbes == 1)
        #expect(r.scsi.failuresTotal == 0 && r.scsi.requests.failed == 0 && r.exitStatus == 0)
    }

    @Test func aVirtioResponseOtherThanOKIsAFailure() throws {
        let text = Self.command(at: 1, tag: 5, cdb: Self.write10, dir: 2, length: 4096, lba: 256, response: 9)
        let f = try #require(try Self.analyse(text).scsi.failures.first)
        #expect(f.responseName == "FAILURE" && f.status == 0 && f.explanation.contains("response FAILURE"))
    }

    /// Without virtio_scsi_cmd_resp, scsi_req_dequeue ends the request; without any
    /// completion event nothing is called in flight.
    @Test func completionFamiliesDecideWhatIsInFlight() throws {
        let full = Self.command(at: 1, tag: 9, cdb: Self.write10, dir: 2, length: 4096, lba: 256, sense: (0x0b, 0, 6), status: 2)
        let lines = full.split(separator: "\n")
        let noResp = lines.filter { !$0.contains("virtio_scsi_cmd_resp") }.joined(separator: "\n") + "\n"
        let r1 = try Self.analyse(noResp)
        #expect(r1.scsi.failuresTotal == 1 && r1.scsi.failures.first?.status == 2 && r1.scsi.failures.first?.response == nil)
        #expect(r1.scsi.failures.first?.explanation.contains("virtio_scsi_cmd_resp not traced") == true)
        let noEnd = lines.filter { !$0.contains("virtio_scsi_cmd_resp") && !$0.contains("scsi_req_dequeue") && !$0.contains("sense") }
            .joined(separator: "\n") + "\n"
        let r2 = try Self.analyse(noEnd)
        #expect(r2.scsi.inFlightTotal == 0 && r2.scsi.requests.outcomeUnknown == 1)
        #expect(r2.warnings.contains { $0.contains("SCSI requests' ends are not in the trace") })
        // With completions traced, a command that never completes is in flight.
        let stuck = Self.command(at: 1, tag: 3, cdb: Self.write10, dir: 2, length: 4096, lba: 256)
            + lines.prefix(5).joined(separator: "\n") + "\n"
        let r3 = try Self.analyse(stuck)
        #expect(r3.scsi.inFlightTotal == 1 && r3.scsi.inFlight.first?.tag == "0x9" && r3.scsi.inFlight.first?.sector == 256)
    }

    @Test func cdbDecoding() {
        #expect(ScsiNames.lbaAndLength([0x0a, 0x1f, 0xff, 0xff, 0x00, 0], layout: 6) == (0x1fffff, 256))
        #expect(ScsiNames.lbaAndLength([0x2a, 0, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0], layout: 10) == (0xffff_ffff, 0xffff))
        #expect(ScsiNames.lbaAndLength([0xa8, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0], layout: 12) == (1, 256))
        #expect(ScsiNames.lbaAndLength([0x2a, 0, 0], layout: 10) == (nil, nil))
        #expect(ScsiNames.opcode(0x35).name == "SYNCHRONIZE CACHE(10)" && ScsiNames.opcode(0x35).kind == "flush")
        #expect(ScsiNames.opcode(0x42).name == "UNMAP" && ScsiNames.opcode(0x93).name == "WRITE SAME(16)")
        #expect(ScsiNames.opcode(0x9e, serviceAction: 0x10).name == "READ CAPACITY(16)")
        #expect(ScsiNames.opcode(0x07).name == "opcode 0x07")
        #expect(ScsiRequestTracker.parseCDB(Array(" 2a 00 ff".utf8)) == [0x2a, 0, 0xff])
        #expect(ScsiRequestTracker.parseCDB(Array(" 2a 0".utf8)) == nil)
        #expect(ScsiRequestTracker.parseCDB(Array("".utf8)) == nil)
    }

    /// A hostile LBA whose sector does not fit 64 bits gives no sector, not a wrapped one.
    @Test func hugeLBAOnA4KLunHasNoSector() throws {
        let cdb: [UInt8] = [0x8a, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0]
        let text = Self.command(at: 1, tag: 4, cdb: cdb, dir: 2, length: 4096, lba: UInt64.max, sense: (0x0b, 0, 6), status: 2)
        let f = try #require(try Self.analyse(text).scsi.failures.first)
        #expect(f.blockSize == 4096 && f.sector == nil && f.command?.lba == UInt64.max)
    }
}

/// Values no QEMU prints, in lines of the right shape: nothing traps, nothing grows without bound.
@Suite struct ScsiAndNbdHostileValueTests {
    @Test func extremeValuesAreCheckedNotTrusted() throws {
        var text = ""
        let long = String(repeating: "x", count: 5000)
        for i in 0..<300 {
            // Every tag distinct and never completed; keys, ASC, lengths out of range; a CDB of 300 bytes.
            text += "1@1795400000.\(String(format: "%06d", i)):virtio_scsi_cmd_req virtio_scsi_cmd_req lun=4294967295 tag=0x\(String(i, radix: 16)) cmd=0xffff\n"
            text += "1@1795400000.\(String(format: "%06d", i)):scsi_req_parsed target -2147483648 lun -1 tag \(i) command 2147483647 dir 9 length -1\n"
            text += "1@1795400000.\(String(format: "%06d", i)):scsi_req_parsed_lba target 0 lun 0 tag \(i) command 138 lba 18446744073709551615\n"
            text += "1@1795400000.\(String(format: "%06d", i)):scsi_disk_new_request Command: lun=0 tag=0x\(String(i, radix: 16)) data=" + String(repeating: " 0x8a", count: 300) + "\n"
            text += "1@1795400000.\(String(format: "%06d", i)):scsi_req_build_sense target 0 lun 0 tag \(i) key 0x7fffffff asc 0xfff ascq 0x100\n"
            text += "1@1795400000.\(String(format: "%06d", i)):nbd_co_request_fail Request failed { .from = 18446744073709551615, .len = 4294967295, .handle = 1, .flags = 0x0, .type = 1 (\(i)\(long)) } ret = -2147483648, err: \(long)\n"
            text += "1@1795400000.\(String(format: "%06d", i)):nbd_reconnect_attempt_result ret \(-i) in_flight 4294967295\n"
        }
        text += "1@1795400001.000000:virtio_scsi_cmd_resp virtio_scsi_cmd_resp lun=0 tag=0x5 response=-2147483648 status=0xff\n"
        let r = try TraceSession.analyse(MemoryByteSource(text, name: "hostile.log"), catalog: .bundled)
        #expect(r.scsi.failuresTotal == 1 && r.scsi.inFlightTotal == 299)
        let f = try #require(r.scsi.failures.first)
        #expect(f.command?.cdb?.split(separator: " ").count == 32)      // kept to 32 bytes
        #expect(f.sense?.key == 0xff && f.sense?.keyName == "sense key 0xff")
        // The CDB's LBA (0x8a8a…) wins over scsi_req_parsed_lba; no block size shown: 512 assumed.
        #expect(f.command?.lba == 0x8a8a_8a8a_8a8a_8a8a && f.sector == f.command?.lba && f.blockSizeSource == "assumed")
        let n = try #require(r.backend.nbd)
        #expect(n.failedRequestsTotal == 300 && n.failedRequests.count == NbdClientTracker.maxGroups)
        #expect(n.failedRequests.allSatisfy { $0.type.utf8.count <= NbdClientTracker.maxReasonBytes + 3 && $0.endOffset == UInt64.max })
        #expect(n.reconnectsSucceeded == 1 && n.reconnectFailures.count == NbdClientTracker.maxGroups)
    }
}
