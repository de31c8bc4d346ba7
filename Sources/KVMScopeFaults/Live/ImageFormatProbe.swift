import Foundation

/// Guesses an image's format from its first bytes the way QEMU does when no format is given
/// (block.c `find_image_format` → `bdrv_probe_all`): every format driver scores the first
/// `BLOCK_PROBE_BUF_SIZE` (512) bytes, zero-padded past the end of a short file, and the first
/// highest score above 0 wins; raw scores 1 (block/raw-format.c `raw_probe`), so it is what is
/// left when nothing else matches. An empty file is raw without probing.
///
/// kvmscope reads and writes raw images only, so this is what keeps it from writing through a
/// qcow2 header (or any other format's metadata) as if it were guest data.
public enum ImageFormatProbe {
    /// include/block/block_int-common.h `BLOCK_PROBE_BUF_SIZE`.
    public static let bufferSize = 512

    /// A format driver's verdict (QEMU's probe score: 100 = certain by magic, 2 = a weak hint
    /// such as a file name, 1 = raw, the fallback).
    public struct Match: Equatable, Sendable {
        /// QEMU's format name, as `qemu-img info` prints it and `-f` takes it.
        public let format: String
        public let score: Int
        /// What matched, for messages ("magic QFI\xfb, version 3").
        public let evidence: String
        public var isRaw: Bool { format == "raw" }
    }

    /// Probes the first bytes of an image (`header` may be shorter than 512: it is zero-padded,
    /// as QEMU's block layer pads a read past the end of a file). `fileSize` 0 is raw outright.
    public static func probe(header: [UInt8], fileSize: Int64, filename: String) -> Match {
        if fileSize == 0 { return Match(format: "raw", score: 1, evidence: "empty file") }
        var buf = Array(header.prefix(bufferSize))
        if buf.count < bufferSize { buf += [UInt8](repeating: 0, count: bufferSize - buf.count) }
        var best = Match(format: "raw", score: 1, evidence: "no other format's signature")
        for driver in drivers {
            if let m = driver(buf, filename), m.score > best.score { best = m }
        }
        return best
    }

    typealias Driver = @Sendable ([UInt8], String) -> Match?

    /// The drivers with a `bdrv_probe` in QEMU 7.2 (Debian's qemu-utils) and later. Ties cannot
    /// happen between the magic-number formats (their magics differ); the only two weak (score 2)
    /// probes are cloop's script header and dmg's file name, listed in that order.
    static let drivers: [Driver] = [qcow2, qcow, qed, vmdk, vdi, vhdx, vpc, luks, parallels, bochs, cloop, dmg]

    // MARK: - helpers

    static func be32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    static func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at + 3]) << 24 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 1]) << 8 | UInt32(b[at])
    }

    static func bytes(_ b: [UInt8], _ at: Int, equal s: String) -> Bool {
        let want = Array(s.utf8)
        return b[at..<(at + want.count)].elementsEqual(want)
    }

    /// C `strcmp(field, s) == 0` on a fixed-size field: `s` followed by a NUL.
    static func cString(_ b: [UInt8], _ at: Int, equal s: String) -> Bool {
        let want = Array(s.utf8)
        return bytes(b, at, equal: s) && b[at + want.count] == 0
    }

    // MARK: - the probes, one per QEMU driver

    /// block/qcow2.c `qcow2_probe`: big-endian magic "QFI\xfb" and version >= 2.
    static func qcow2(_ b: [UInt8], _: String) -> Match? {
        guard b[0...3].elementsEqual([0x51, 0x46, 0x49, 0xfb]), be32(b, 4) >= 2 else { return nil }
        return Match(format: "qcow2", score: 100, evidence: "magic QFI\\xfb, version \(be32(b, 4))")
    }

    /// block/qcow.c `qcow_probe`: the same magic with version exactly 1.
    static func qcow(_ b: [UInt8], _: String) -> Match? {
        guard b[0...3].elementsEqual([0x51, 0x46, 0x49, 0xfb]), be32(b, 4) == 1 else { return nil }
        return Match(format: "qcow", score: 100, evidence: "magic QFI\\xfb, version 1")
    }

    /// block/qed.c `bdrv_qed_probe`: little-endian magic 'Q' | 'E' << 8 | 'D' << 16 ("QED\0").
    static func qed(_ b: [UInt8], _: String) -> Match? {
        guard b[0...3].elementsEqual([0x51, 0x45, 0x44, 0x00]) else { return nil }
        return Match(format: "qed", score: 100, evidence: "magic QED\\0")
    }

    /// block/vmdk.c `vmdk_probe`: sparse-extent magic "KDMV" (VMDK4) or "COWD" (VMDK3), or a
    /// text descriptor whose first line that is neither a `#` comment nor blank is `version=1|2|3`.
    static func vmdk(_ b: [UInt8], _: String) -> Match? {
        if bytes(b, 0, equal: "KDMV") { return Match(format: "vmdk", score: 100, evidence: "magic KDMV") }
        if bytes(b, 0, equal: "COWD") { return Match(format: "vmdk", score: 100, evidence: "magic COWD") }
        var p = 0
        let end = b.count
        while p < end {
            if b[p] == UInt8(ascii: "#") {            // comment line
                while p < end && b[p] != UInt8(ascii: "\n") { p += 1 }
                p += 1
                continue
            }
            if b[p] == UInt8(ascii: " ") {            // blank line of spaces, maybe "\r"
                while p < end && b[p] == UInt8(ascii: " ") { p += 1 }
                if p < end && b[p] == UInt8(ascii: "\r") { p += 1 }
                if p == end || b[p] != UInt8(ascii: "\n") { return nil }
                p += 1
                continue
            }
            for v in ["1", "2", "3"] {
                for eol in ["\n", "\r\n"] {
                    let line = "version=" + v + eol
                    if end - p >= line.utf8.count && bytes(b, p, equal: line) {
                        return Match(format: "vmdk", score: 100, evidence: "text descriptor, version=\(v)")
                    }
                }
            }
            return nil
        }
        return nil
    }

    /// block/vdi.c `vdi_probe`: little-endian signature 0xbeda107f after the 64-byte text.
    static func vdi(_ b: [UInt8], _: String) -> Match? {
        guard le32(b, 64) == 0xbeda_107f else { return nil }
        return Match(format: "vdi", score: 100, evidence: "signature 0xbeda107f at byte 64")
    }

    /// block/vhdx.c `vhdx_probe`: file identifier "vhdxfile".
    static func vhdx(_ b: [UInt8], _: String) -> Match? {
        guard bytes(b, 0, equal: "vhdxfile") else { return nil }
        return Match(format: "vhdx", score: 100, evidence: "identifier vhdxfile")
    }

    /// block/vpc.c `vpc_probe`: footer copy "conectix" at the start (dynamic VHD images; a
    /// fixed VHD has its only footer at the end and QEMU probes it as raw: see `fixedVHDFooter`).
    static func vpc(_ b: [UInt8], _: String) -> Match? {
        guard bytes(b, 0, equal: "conectix") else { return nil }
        return Match(format: "vpc", score: 100, evidence: "cookie conectix")
    }

    /// block/crypto.c `block_crypto_probe_luks` → crypto/block-luks.c
    /// `qcrypto_block_luks_has_format`: magic "LUKS\xba\xbe" and big-endian version 1.
    static func luks(_ b: [UInt8], _: String) -> Match? {
        guard b[0...5].elementsEqual([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]),
              UInt16(b[6]) << 8 | UInt16(b[7]) == 1 else { return nil }
        return Match(format: "luks", score: 100, evidence: "magic LUKS\\xba\\xbe, version 1")
    }

    /// block/parallels.c `parallels_probe`: "WithoutFreeSpace" or "WithouFreSpacExt" and
    /// little-endian version 2.
    static func parallels(_ b: [UInt8], _: String) -> Match? {
        guard bytes(b, 0, equal: "WithoutFreeSpace") || bytes(b, 0, equal: "WithouFreSpacExt"),
              le32(b, 16) == 2 else { return nil }
        return Match(format: "parallels", score: 100, evidence: "magic \(String(decoding: b[0..<16], as: UTF8.self)), version 2")
    }

    /// block/bochs.c `bochs_probe`: NUL-terminated "Bochs Virtual HD Image" / "Redolog" /
    /// "Growing" in the 32/16/16-byte fields and little-endian version 0x00020000 or 0x00010000.
    static func bochs(_ b: [UInt8], _: String) -> Match? {
        guard cString(b, 0, equal: "Bochs Virtual HD Image"), cString(b, 32, equal: "Redolog"),
              cString(b, 48, equal: "Growing"), [0x0002_0000, 0x0001_0000].contains(le32(b, 64)) else { return nil }
        return Match(format: "bochs", score: 100, evidence: "Bochs Virtual HD Image, Redolog, Growing")
    }

    /// block/cloop.c `cloop_probe`: the V2.0 shell-script header (score 2).
    static func cloop(_ b: [UInt8], _: String) -> Match? {
        guard bytes(b, 0, equal: "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n") else { return nil }
        return Match(format: "cloop", score: 2, evidence: "cloop V2.0 script header")
    }

    /// block/dmg.c `dmg_probe`: by name only, a file name longer than 4 ending in ".dmg" (score 2).
    static func dmg(_: [UInt8], _ filename: String) -> Match? {
        let name = Array(filename.utf8)
        guard name.count > 4, name.suffix(4).elementsEqual(".dmg".utf8) else { return nil }
        return Match(format: "dmg", score: 2, evidence: "file name ends in .dmg")
    }

    /// Not a QEMU probe: a fixed-size VHD keeps its only footer (cookie "conectix") in the last
    /// 512 bytes, which QEMU's probe never reads, so QEMU calls the file raw and lets a write at
    /// the end of the disk overwrite the footer. kvmscope checks the end too and treats such a
    /// file as vpc, so that only an explicit -f raw writes there.
    public static func fixedVHDFooter(trailer: [UInt8]) -> Match? {
        guard trailer.count == bufferSize, bytes(trailer, 0, equal: "conectix") else { return nil }
        return Match(format: "vpc", score: 100, evidence: "fixed-size VHD: cookie conectix in the last 512 bytes, which QEMU's probe does not read")
    }
}
