import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScope   // FormatRegistry: detection across every domain's formats
@testable import KVMScopeGuestLog

/// The real lab captures (6.1 guest under QEMU 7.2, blkdebug-injected errors): serial console
/// output followed by the guest's full dmesg, so every error line appears twice.
@Suite struct GuestLabCaptureTests {
    typealias F = GuestFixtures

    func vda(_ scenario: String) throws -> (GuestDiskReport, GuestDeviceReport) {
        let r = try F.report(file: F.lab(scenario))
        #expect(r.devices.map(\.name) == ["vda"], "\(scenario)")
        let vda = try #require(F.device(r, "vda"))
        #expect(vda.capacity?.sectors == 131_072, "\(scenario): /dev/vda is 131072 sectors")
        #expect(vda.capacity?.driver == "virtio_blk")
        #expect(r.input.malformedLines == 0)
        #expect(r.input.binaryLines == 0)
        return (r, vda)
    }

    @Test func writeEIO() throws {
        let (r, vda) = try vda("write-eio")
        #expect(vda.totalBlockErrors == 1)
        let e = try #require(vda.blockErrors.first)
        #expect(e.sector == 2048)
        #expect(e.operation == .write)
        #expect(e.errorType == .io)
        #expect(e.shape == .op)
        #expect(r.input.duplicateEvents == 1)
        #expect(r.hasDiskErrors)
    }

    @Test func readOnceReportsTheRequestStart() throws {
        // blkdebug fails sector 8200; the guest reports the 64 KiB request's first sector.
        let (_, vda) = try vda("read-once")
        #expect(vda.operations == ["read": 1])
        #expect(vda.sectorRanges.map(\.first) == [8192])
    }

    @Test func flushEIOIsAFlush() throws {
        let (_, vda) = try vda("flush-eio")
        #expect(vda.operations == ["flush": 1])
        #expect(vda.blockErrors.first?.reportedOperation == .write)
        #expect(vda.blockErrors.first?.physSegments == 0)
        #expect(vda.sectorRanges.isEmpty)
    }

    @Test func discardErrors() throws {
        let (_, vda) = try vda("discard-errors")
        #expect(vda.operations == ["discard": 1])
        #expect(vda.sectorRanges.map(\.first) == [12288])
    }

    @Test func asyncWriteLossIsTheWritersBlindSpot() throws {
        let (r, vda) = try vda("async-write-esrch")
        #expect(vda.totalBlockErrors == 2)
        #expect(vda.sectorRanges == [SectorRange(first: 6144, last: 6144, errors: 2, operations: BlockIOOperationSet(.write))])
        #expect(vda.totalBufferErrors == 8)
        #expect(vda.lostBlocks.asyncWrite == 8)
        #expect(Set(vda.bufferErrors.compactMap(\.event.logicalBlock)) == [768, 769, 770, 771])
        #expect(vda.inferredBlockSize == 4096)   // 6144 = 768 × 8
        #expect(r.input.duplicateEvents == 10)
        #expect(GuestReportRenderer.text(r).contains("8 lost async writes"))
    }

    @Test func ext4GoesReadOnly() throws {
        let (r, vda) = try vda("ext4-readonly")
        #expect(vda.totalBlockErrors == 10)
        #expect(vda.operations == ["write": 10])
        #expect(vda.sectorRanges.map { [$0.first, UInt64($0.errors)] } == [[2, 6], [17026, 1], [32770, 3]])
        #expect(vda.totalBufferErrors == 16)
        #expect(vda.lostBlocks.syncWrite == 6)
        #expect(vda.lostBlocks.asyncWrite == 10)     // ext4 writeback of /mnt/file: `sync` still exited 0
        #expect(vda.inferredBlockSize == 1024)        // 32770 = 16385 × 2
        #expect(vda.firstError?.time.uptimeMicroseconds == 2_327_010)
        #expect(vda.lastError?.time.uptimeMicroseconds == 2_367_629)
        let fs = try #require(vda.filesystems.first)
        #expect(vda.filesystems.count == 1)
        #expect(fs.type == "ext4")
        #expect(fs.mounted)
        #expect(fs.journalAborted)
        #expect(fs.journalAbortedAt?.time.uptimeMicroseconds == 2_332_061)
        #expect(fs.readOnly)
        #expect(fs.readOnlyAt?.time.uptimeMicroseconds == 2_344_351)
        #expect(fs.errors == 4)
        #expect(fs.superblockWriteErrors == 4)
        #expect(fs.journalSuperblockErrors == 2)
        #expect(fs.journalDataFlushErrors == 1)
        #expect(fs.inodesWithWriteErrors == [12])
        #expect(fs.inodeWriteStatuses == ["BLK_STS_IOERR": 1])
        #expect(!fs.shutdown)
        #expect(r.input.duplicateEvents == 41)
        let text = GuestReportRenderer.text(r)
        #expect(text.contains("remounted read-only at 2.344351 s"))
        #expect(text.contains("journal aborted at 2.332061 s"))
    }

    @Test func nbdServerErrors() throws {
        // kvmscope's own NBD server failed a write at 2048 and a read covering 8200 (ESRCH sent as EIO).
        let (r, vda) = try vda("nbd-eio")
        #expect(vda.operations == ["write": 1, "read": 1])
        #expect(vda.sectorRanges.map(\.first) == [2048, 8192])
        #expect(vda.errorTypes == ["I/O": 2])
        #expect(r.input.duplicateEvents == 2)
    }

    @Test func enospcPauseLeavesTheGuestUnaware() throws {
        // werror=enospc paused the VM and `cont` retried the write: the guest saw nothing.
        let (r, vda) = try vda("enospc-pause")
        #expect(!vda.hasErrors)
        #expect(!r.hasDiskErrors)
    }

    @Test func werrorStopNeverGotToTheKernelLog() throws {
        let r = try F.report(file: F.lab("werror-stop"))
        #expect(r.devices.isEmpty)
        #expect(!r.hasDiskErrors)
        #expect(r.input.lines == 5)
    }

    @Test func registryDetectsTheConsoleAsPrintk() throws {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: F.lab("write-eio"))).prefix(InputSample.size))
        let format = bytes.withUnsafeBytes { FormatRegistry.detect(.guestLog, sample: $0) }
        #expect(format?.name == "kernel-log/dmesg")
        let kmsg = try Array(Data(contentsOf: URL(fileURLWithPath: F.fixture("kmsg-4.13-scsi-ext4.log"))))
        #expect(kmsg.withUnsafeBytes { FormatRegistry.detect(.guestLog, sample: $0) }?.name == "kernel-log/kmsg")
    }
}
