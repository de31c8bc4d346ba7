import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults

@Suite struct QemuIOFormatTests {
    @Test func sizesAsQemuIOPrintsThem() {
        #expect(QemuIOFormat.size(4096) == "4 KiB")
        #expect(QemuIOFormat.size(40) == "40 bytes")
        #expect(QemuIOFormat.size(1_217_479.0) == "1.161 MiB")
        #expect(QemuIOFormat.size(648_728.6) == "633.524 KiB")
        #expect(QemuIOFormat.size(123.456) == "123.456000 bytes")
        #expect(QemuIOFormat.size(Double(1 << 30)) == "1 GiB")
    }

    @Test func timesAndReportLines() {
        #expect(QemuIOFormat.time(0.0123, fixed: false) == "00.01 sec")
        #expect(QemuIOFormat.time(0.0123, fixed: true) == "0:00:00.01")
        #expect(QemuIOFormat.time(3725.5, fixed: false) == "1:02:05.50")
        #expect(QemuIOFormat.report("wrote", seconds: 4096.0 / (37.127 * 1048576), offset: 0, count: 4096, total: 4096, ops: 1, machine: false)
                == "wrote 4096/4096 bytes at offset 0\n4 KiB, 1 ops; 00.00 sec (37.127 MiB/sec and 9504.5120 ops/sec)\n")
        #expect(QemuIOFormat.report("read", seconds: 0.5, offset: 0, count: 512, total: 512, ops: 1, machine: true)
                == "512,1,0:00:00.50,1024.000,2.000\n")
    }

    @Test func dumpLayoutMatchesQemuIO() {
        // qemu-io 7.2, `write -P 0xab 0 4k` then `read -v 0 40` (hex, two blanks, letters/digits only).
        let bytes = [UInt8](repeating: 0xab, count: 40)
        let text = bytes.withUnsafeBytes { QemuIOFormat.dump($0, offset: 0) }
        #expect(text == """
        00000000:  ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab  ................
        00000010:  ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab  ................
        00000020:  ab ab ab ab ab ab ab ab  ........

        """)
        let mixed: [UInt8] = Array("Az09 .-\u{7f}".utf8)
        #expect(mixed.withUnsafeBytes { QemuIOFormat.dump($0, offset: 0x1230) } == "00001230:  41 7a 30 39 20 2e 2d 7f  Az09....\n")
    }

    @Test func sizeArgumentsLikeCvtnum() {
        #expect(QemuIOFormat.parseSize("4k") == 4096)
        #expect(QemuIOFormat.parseSize("1M") == 1 << 20)
        #expect(QemuIOFormat.parseSize("1.5k") == 1536)
        #expect(QemuIOFormat.parseSize("0x1000") == 4096)
        #expect(QemuIOFormat.parseSize("512") == 512)
        #expect(QemuIOFormat.parseSize("4q") == nil)
        #expect(QemuIOFormat.parseSize("1.5") == nil)
        #expect(QemuIOFormat.parseSize("") == nil)
    }
}

/// The same commands and rules through real qemu-io (`blkdebug:rules:image`) and `kvmscope io`:
/// the outputs must be the same except for the measured rates, and the images must end equal.
