import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults

/// `ImageFormatProbe` against files the real `qemu-img create -f FMT` made, with `qemu-img info`
/// (which probes the same way) as the referee, plus the probes no qemu-img can create for.
@Suite struct ImageFormatProbeTests {
    private func firstBytes(_ path: String) -> [UInt8] {
        Array((FileManager.default.contents(atPath: path) ?? Data()).prefix(ImageFormatProbe.bufferSize))
    }

    private func size(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.int64Value ?? -1
    }

    /// qemu-img info's probed "format" (no -f given), the ground truth.
    private func qemuProbe(_ qemuImg: String, _ path: String) throws -> String? {
        let r = try runProcess(qemuImg, ["info", "-U", "--output=json", path])
        let obj = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return obj?["format"] as? String
    }

    @Test(arguments: [
        ("qcow2", [String]()), ("qcow", []), ("qed", []), ("vmdk", []), ("vdi", []), ("vhdx", []), ("vpc", []),
        ("parallels", []), ("vmdk", ["-o", "subformat=monolithicFlat"]),
        ("luks", ["--object", "secret,id=sec0,data=kvmscope", "-o", "key-secret=sec0"]),
    ])
    func recognisesWhatQemuImgCreates(format: String, options: [String]) throws {
        guard let qemuImg = QemuTools.require("qemu-img") else { return }
        let dir = TempDir()
        let path = dir.path + "/disk.\(format)"
        var made = try runProcess(qemuImg, ["create", "-q", "-f", format] + options + [path, "4M"])
        // qemu-img's LUKS key-slot PBKDF calibration can fail on a busy machine ("Unable to get
        // accurate CPU usage"): that is qemu-img's flake, so try again.
        for _ in 0..<5 where made.status != 0 && made.stderr.contains("Unable to get accurate CPU usage") {
            made = try runProcess(qemuImg, ["create", "-q", "-f", format] + options + [path, "4M"])
        }
        #expect(made.status == 0, "\(made.stdout)\(made.stderr)")
        let match = ImageFormatProbe.probe(header: firstBytes(path), fileSize: size(path), filename: path)
        #expect(match.format == format)
        #expect(try qemuProbe(qemuImg, path) == format)
    }

    @Test func garbageAndZeroesAndEmptyAreRaw() throws {
        guard let qemuImg = QemuTools.require("qemu-img") else { return }
        let dir = TempDir()
        var rng = SystemRandomNumberGenerator()
        for (name, bytes) in [("garbage.img", (0..<65536).map { _ in UInt8.random(in: 0...255, using: &rng) }),
                              ("zero.img", [UInt8](repeating: 0, count: 65536)),
                              ("empty.img", [UInt8]())] {
            var b = bytes
            if name == "garbage.img" { b[0] = 0x00 }   // no magic starts with NUL; random bytes cannot form one
            let path = dir.path + "/" + name
            _ = FileManager.default.createFile(atPath: path, contents: Data(b))
            #expect(ImageFormatProbe.probe(header: firstBytes(path), fileSize: size(path), filename: path).isRaw, "\(name)")
            #expect(try qemuProbe(qemuImg, path) == "raw", "\(name)")
        }
    }

    /// A short file is zero-padded to 512 bytes before probing, as QEMU's block layer pads it.
    @Test func shortFileIsPaddedWithZeroes() {
        // "QED" + NUL is the QED magic only once the missing fourth byte reads as zero.
        #expect(ImageFormatProbe.probe(header: Array("QED".utf8), fileSize: 3, filename: "x").format == "qed")
        #expect(ImageFormatProbe.probe(header: Array("QEDx".utf8), fileSize: 4, filename: "x").isRaw)
    }

    @Test func probesQemuImgCannotCreate() {
        func sector(_ parts: [(Int, [UInt8])]) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: 512)
            for (at, bytes) in parts { b.replaceSubrange(at..<(at + bytes.count), with: bytes) }
            return b
        }
        let bochs = sector([(0, Array("Bochs Virtual HD Image".utf8)), (32, Array("Redolog".utf8)),
                            (48, Array("Growing".utf8)), (64, [0, 0, 2, 0])])
        #expect(ImageFormatProbe.probe(header: bochs, fileSize: 1 << 20, filename: "b.img").format == "bochs")
        var bochsBadVersion = bochs
        bochsBadVersion[66] = 3
        #expect(ImageFormatProbe.probe(header: bochsBadVersion, fileSize: 1 << 20, filename: "b.img").isRaw)

        let cloop = Array("#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n".utf8)
        let c = ImageFormatProbe.probe(header: cloop, fileSize: 1 << 20, filename: "c.img")
        #expect(c.format == "cloop" && c.score == 2)

        let zeroes = [UInt8](repeating: 0, count: 512)
        #expect(ImageFormatProbe.probe(header: zeroes, fileSize: 1 << 20, filename: "/srv/mac.dmg").format == "dmg")
        #expect(ImageFormatProbe.probe(header: zeroes, fileSize: 1 << 20, filename: ".dmg").isRaw)   // needs len > 4

        // qcow version 0 is neither qcow (1) nor qcow2 (>= 2); LUKS version 2 is not QEMU 7.2's LUKS.
        #expect(ImageFormatProbe.probe(header: sector([(0, [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 0])]), fileSize: 512, filename: "q").isRaw)
        #expect(ImageFormatProbe.probe(header: sector([(0, [0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0, 2])]), fileSize: 512, filename: "l").isRaw)

        // VMDK text descriptors: comments and blank lines may come before version=.
        let descriptor = Array("# Disk DescriptorFile\n   \r\nversion=1\r\nCID=fffffffe\n".utf8)
        #expect(ImageFormatProbe.probe(header: descriptor, fileSize: 64, filename: "d.vmdk").format == "vmdk")
        #expect(ImageFormatProbe.probe(header: Array("\nversion=1\n".utf8), fileSize: 64, filename: "d.vmdk").isRaw)
        #expect(ImageFormatProbe.probe(header: Array("# only a comment".utf8), fileSize: 16, filename: "d").isRaw)
    }
}
