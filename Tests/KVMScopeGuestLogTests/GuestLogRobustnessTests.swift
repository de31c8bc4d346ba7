import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeGuestLog

/// Every prefix of every real line, and random byte edits of them, through the prefix parser
/// and all matchers. Debug builds check every buffer index, so a read past the end of a line
/// would trap here; the test also checks that nothing but known verdicts come out.
@Suite struct GuestLogRobustnessTests {
    static func seedLines() throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        let files = ["classic-report.log", "ubuntu-2.6.31-usb-ext4.log", "kmsg-4.13-scsi-ext4.log",
                     "kernlog-5.x-critical-medium.log", "mixed-styles.log", "guest-internal-6.1.log"].map { GuestFixtures.fixture($0) }
            + ["ext4-readonly", "async-write-esrch", "flush-eio", "scsi-write-eio", "ext4-corrupt"].map { GuestFixtures.lab($0) }
        for f in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: f))
            for line in data.split(separator: 0x0A) {
                let bytes = [UInt8](line)
                // Boot noise is plentiful; keep the lines the matchers care about and a sample of the rest.
                let text = String(decoding: bytes, as: UTF8.self)
                if text.contains("rror") || text.contains("Sense") || text.contains("suppressed") || text.contains("blocks")
                    || text.contains("journal") || text.contains("XFS") || text.contains("BTRFS") || text.contains("CDB")
                    || text.contains("blocked") || text.contains("nvme") || text.contains("sd ") || lines.count % 17 == 0 {
                    lines.append(bytes)
                }
            }
        }
        return lines
    }

    static func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buf in
            let line = LineBytes(buf)
            for previous in [false, true] {
                switch KernelLinePrefixParser.parse(line, previousWasKmsg: previous) {
                case .notKernel: break
                case .kernel(let p):
                    #expect(p.messageStart >= 0 && p.messageStart <= line.count)
                    _ = GuestLogMatchers.match(MatchContext(line: line, start: p.messageStart, lineNumber: 1, time: p.time))
                    // Matchers must also survive being pointed anywhere in the line.
                    for start in stride(from: 0, through: line.count, by: max(1, line.count / 8)) {
                        _ = GuestLogMatchers.match(MatchContext(line: line, start: start, lineNumber: 1, time: p.time))
                    }
                }
            }
        }
    }

    @Test func everyTruncationOfEveryRealLine() throws {
        let lines = try Self.seedLines()
        #expect(lines.count > 100)
        for line in lines {
            for n in 0...line.count { Self.run(Array(line[..<n])) }
        }
    }

    @Test func randomEditsOfRealLines() throws {
        var rng = SplitMix64(seed: 0x6b766d73636f7065)
        let interesting: [UInt8] = Array("[]():,;.- 0123456789xX<>".utf8) + [0, 0x0D, 0xFF, 0x1B]
        for line in try Self.seedLines() where !line.isEmpty {
            for _ in 0..<60 {
                var m = line
                for _ in 0..<Int(rng.next() % 4 + 1) {
                    let at = Int(rng.next() % UInt64(m.count))
                    switch rng.next() % 3 {
                    case 0: m[at] = interesting[Int(rng.next() % UInt64(interesting.count))]
                    case 1: m.remove(at: at); if m.isEmpty { m = [0x5B] }
                    default: m.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: at)
                    }
                }
                Self.run(m)
            }
        }
    }

    @Test func hugeNumbersDoNotOverflow() {
        for text in ["[99999999999999999999.999999] I/O error, dev vda, sector 99999999999999999999999 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2",
                     "[    1.000000] I/O error, dev vda, sector 18446744073709551615 op 0xffffffffffffffffff:(WRITE) flags 0x0 phys_seg 1 prio class 2",
                     "[    1.000000] virtio_blk virtio0: [vda] 18446744073709551615 4096-byte logical blocks (x/y)",
                     "99999999999999999999,1,1,-;I/O error, dev vda, sector 1",
                     "3,1,99999999999999999999,-;I/O error, dev vda, sector 1",
                     "[    1.000000] buffer_io_error: 99999999999999999999 callbacks suppressed",
                     "[    1.000000] EXT4-fs warning (device vda): ext4_end_bio:343: I/O error -9223372036854775808 writing to inode 99999999999999999999 starting block 1)"] {
            Self.run(Array(text.utf8))
        }
        // A 2^64-1 sector count that overflows bytes: the event is kept, the size says nil.
        let e = DiskCapacityEvent(device: "vda", driver: "virtio_blk", logicalBlocks: .max, logicalBlockSize: 4096,
                                  resized: false, location: GuestLogLocation(line: 1))
        #expect(e.bytes == nil)
        #expect(e.sectors == nil)
    }
}
