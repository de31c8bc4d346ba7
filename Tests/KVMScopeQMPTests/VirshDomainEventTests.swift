import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeQMP

/// `virsh event --all --loop --timestamp` prints libvirt's own domain events, not QMP:
/// `event 'lifecycle' for domain 'D': Resumed Unpaused`, `event 'io-error' for domain 'D': PATH
/// (ALIAS) report` (tools/virsh-domain-event.c quotes the event's name; `virsh
/// qemu-monitor-event` prints the QMP name bare). The lab's libvirt-fs-full capture has both side
/// by side; only qemu-monitor-event's is QMP.
@Suite struct VirshDomainEventTests {
    func bytes(_ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: LabFixtures.path("libvirt-fs-full", file))))
    }

    @Test func virshEventOutputIsNotQMP() throws {
        let events = try bytes("libvirt-events.txt")
        #expect(!events.withUnsafeBytes { QMPEventFormat().recognizes($0) })
        let (read, _) = try QMPEventReader.readAll(MemoryByteSource(String(decoding: events, as: UTF8.self)))
        #expect(read.isEmpty)
        // Not one line of it is taken for QMP when a mixed input is split by content.
        for line in String(decoding: events, as: UTF8.self).split(separator: "\n") {
            let b = Array(line.utf8)
            #expect(!b.withUnsafeBufferPointer { QMPLineRecogniser.isQMPLine(LineBytes($0)) }, "\(line)")
        }
    }

    @Test func qemuMonitorEventOutputOfTheSameRunIsQMP() throws {
        let qmp = try bytes("qmp-events.txt")
        #expect(qmp.withUnsafeBytes { QMPEventFormat().recognizes($0) })
        let (read, skipped) = try QMPEventReader.readAll(MemoryByteSource(String(decoding: qmp, as: UTF8.self)))
        #expect(skipped == 0)
        #expect(read.map(\.name) == ["RESUME", "BLOCK_IO_ERROR", "BLOCK_IO_ERROR", "SHUTDOWN"])
        let e = try #require(read[1].blockIOError)
        #expect(e.nodeName == "libvirt-1-format" && e.operation == .write && e.action == .report)
        #expect(e.reason == "No space left on device")
    }
}
