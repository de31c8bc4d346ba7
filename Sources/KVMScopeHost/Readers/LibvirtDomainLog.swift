import Foundation
import KVMScopeCore

/// libvirt's per-domain log (/var/log/libvirt/qemu/NAME.log) keeps every start of the VM: each
/// begins with `2026-12-01 14:54:36.933+0000: starting up libvirt version: …` (libvirt
/// src/qemu/qemu_process.c, qemuProcessLaunch → qemuDomainLogContextWrite "starting up"),
/// then the environment and QEMU's command line, then QEMU's stderr — its trace lines, whose
/// `N@` prefix is a thread id and cannot tell the runs apart — and `…: shutting down, reason=…`.
public enum LibvirtDomainLog {
    public struct Start: Equatable, Sendable {
        /// 1-based line number of the start line.
        public let line: Int
        /// `2026-12-01 14:54:36.933+0000`.
        public let stamp: String
    }

    /// The start lines of the QEMU runs in the log, in order (empty for anything else).
    public static func starts(in stream: ByteStream) throws -> [Start] {
        var out: [Start] = []
        var splitter = LineSplitter()
        let marker = Array(": starting up libvirt version".utf8)
        try splitter.forEachLine(in: stream) { line, number in
            // `YYYY-MM-DD HH:MM:SS.mmm+ZZZZ` is 28 bytes; the marker follows at once.
            guard line.count >= 28 + marker.count, line[0] >= 0x30, line[0] <= 0x39, line[4] == 0x2D else { return }
            for (k, b) in marker.enumerated() where line[28 + k] != b { return }
            if out.count < 100_000 {
                out.append(Start(line: number, stamp: String(decoding: (0..<28).map { line[$0] }, as: UTF8.self)))
            }
        }
        return out
    }
}
