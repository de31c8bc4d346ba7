import Foundation
import Testing
import KVMScopeTestSupport
import KVMScope
@testable import KVMScopeFaults   // internals the CLI does not expose (see Package.swift)

/// The kvmscope binary under test. KVMSCOPE_TEST_BINARY points these tests at another build
/// (used to show that they fail on the code before the image-safety work).
private var kvmscope: String {
    ProcessInfo.processInfo.environment["KVMSCOPE_TEST_BINARY"] ?? CLIRunner.binary.path
}

private func sha256(_ path: String) throws -> String {
    let r = try runProcess("/usr/bin/sha256sum", [path])
    return String(r.stdout.prefix(64))
}

/// A long-running process (kvmscope nbd serve, a kvmscope io session, a QEMU guest) that the
/// test stops, by its pid, however it ends.
private final class Holder {
    let process = Process()
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()

    init(_ executable: String, _ args: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Whatever happens, nothing outlives the test by more than a minute.
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { kill(pid, SIGKILL) }
    }

    /// Reads stdout up to and including the next newline ("" at end of file).
    func line() -> String {
        return stdout.fileHandleForReading.readNextLine()
    }

    func send(_ text: String) { stdin.fileHandleForWriting.write(Data(text.utf8)) }

    func stop(_ signal: Int32 = SIGKILL) {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
    }

    deinit { stop(SIGKILL) }
}

/// Waits until some process holds QEMU's lock byte `byte` on `path` (a guest starting up).
private func waitForLockByte(_ path: String, _ byte: Int64) -> Bool {
    for _ in 0..<600 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        if fd >= 0, case .held = QemuImageLock.testLock(fd, byte) { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return false
}

@Suite(.serialized) struct ImageSafetyCLITests {
    // MARK: - formats

    @Test func qcow2IsRefusedAndUnchanged() throws {
        guard let qemuImg = QemuTools.require("qemu-img") else { return }
        let dir = TempDir()
        let img = dir.path + "/d.qcow2"
        _ = try runProcess(qemuImg, ["create", "-q", "-f", "qcow2", img, "16M"])
        let before = try sha256(img)
        let io = try runProcess(kvmscope, ["io", img, "-c", "write -P 0x55 0 4k"])
        #expect(io.status == 1)
        #expect(io.stdout == "")
        #expect(io.stderr == "kvmscope: \(img) is a qcow2 image (magic QFI\\xfb, version 3), and kvmscope io reads and writes raw images only: for a qcow2 image use `qemu-io -f qcow2 \(img)` (faults through blkdebug: `kvmscope blkdebug check`), or pass -f raw to treat its bytes as a raw disk\n")
        let serve = try runProcess(kvmscope, ["nbd", "serve", img, "--port", "0"], timeout: 20)
        #expect(serve.status == 1)
        #expect(serve.stderr.hasPrefix("kvmscope: \(img) is a qcow2 image (magic QFI\\xfb, version 3), and kvmscope nbd serve serves raw images only: serve a qcow2 image with `qemu-nbd -f qcow2 -k SOCKET \(img)` and `kvmscope nbd serve --upstream 'nbd+unix:///?socket=SOCKET'` in front of it"))
        #expect(try sha256(img) == before)
        let info = try runProcess(qemuImg, ["info", "--output=json", img])
        #expect(info.stdout.contains("\"format\": \"qcow2\""))

        // -f qcow2 is refused as a usage error; -f raw treats the bytes as a raw disk.
        let explicit = try runProcess(kvmscope, ["io", "-f", "qcow2", img, "-c", "read 0 4k"])
        #expect(explicit.status == 2 && explicit.stderr.contains("-f qcow2: kvmscope io reads and writes raw images only (-f raw)"))
        let raw = try runProcess(kvmscope, ["io", "-f", "raw", img, "-c", "read -v 0 8"])
        #expect(raw.status == 0 && raw.stdout.hasPrefix("00000000:  51 46 49 fb 00 00 00 03  "), "\(raw.stdout)\(raw.stderr)")
        #expect(!raw.stderr.contains("WARNING"))
        #expect(try sha256(img) == before)
    }

    @Test func otherFormatsAreRefusedByName() throws {
        guard let qemuImg = QemuTools.require("qemu-img") else { return }
        let dir = TempDir()
        // A fixed-size VHD: QEMU probes it as raw (its footer is at the end), kvmscope refuses it.
        for (format, options) in [("qed", []), ("vmdk", []), ("vdi", []), ("vhdx", []), ("vpc", []),
                                  ("vpc", ["-o", "subformat=fixed"])] {
            let img = dir.path + "/d\(options.count).\(format)"
            _ = try runProcess(qemuImg, ["create", "-q", "-f", format] + options + [img, "4M"])
            let before = try sha256(img)
            let r = try runProcess(kvmscope, ["io", img, "-c", "write 0 4k"])
            #expect(r.status == 1 && r.stderr.hasPrefix("kvmscope: \(img) is a \(format) image ("), "\(format): \(r.stderr)")
            #expect(try sha256(img) == before, "\(format)")
        }
    }

    /// A probed raw image gets qemu-io's warning (block/raw-format.c raw_open) and its first
    /// sector may not be turned into another format's header (raw_co_pwritev: EPERM).
    @Test func probedRawWarnsAndGuardsBlockZero() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let img = dir.image("disk.img", size: 4 << 20)
        let io = try runProcess(kvmscope, ["io", img, "-c", "write -q 0 4k"])
        #expect(io.status == 0)
        #expect(io.stderr == "WARNING: Image format was not specified for '\(img)' and probing guessed raw.\n         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n         Specify the 'raw' format explicitly to remove the restrictions.\n")
        let reference = try runProcess(qemuIO, ["-c", "write -q 0 4k", img])
        #expect(reference.stderr == io.stderr)
        #expect(try runProcess(kvmscope, ["io", "-r", img, "-c", "read -q 0 4k"]).stderr == "")

        // Through NBD: a qcow2 header written to sector 0 of the probed image is refused, like
        // qemu-io refuses it on a probed image; with -f raw it is written.
        var header = [UInt8](repeating: 0, count: 512)
        header.replaceSubrange(0..<8, with: [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3])
        let hdr = dir.path + "/hdr"
        _ = FileManager.default.createFile(atPath: hdr, contents: Data(header))
        let before = try sha256(img)
        for (args, expected) in [([String](), "write failed: Operation not permitted\n"), (["-f", "raw"], "")] {
            let server = try Holder(kvmscope, ["nbd", "serve", img, "--port", "0", "--quiet"] + args)
            let uri = server.line().trimmingCharacters(in: .whitespacesAndNewlines)
            let w = try runProcess(qemuIO, ["-f", "raw", uri, "-c", "write -q -s \(hdr) 0 512"])
            #expect(w.stdout == expected, "\(args): \(w.stdout)\(w.stderr)")
            server.stop()
            if args.isEmpty { #expect(try sha256(img) == before) }
        }
        #expect(Array((FileManager.default.contents(atPath: img) ?? Data()).prefix(8)) == [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3])
    }

    // MARK: - locks

    /// A QEMU guest with the image on a virtio disk holds bytes 100, 101 and 201: kvmscope may
    /// neither write it nor (without -U) read it, nor serve it.
    @Test func runningGuestKeepsKvmscopeOut() throws {
        guard let qemu = QemuTools.require("qemu-system-x86_64") else { return }
        let dir = TempDir()
        let img = dir.image("lock.img", size: 4 << 20)
        let guest = try Holder(qemu, ["-S", "-nodefaults", "-display", "none", "-machine", "pc", "-accel", "tcg",
                                      "-drive", "file=\(img),format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0"])
        defer { guest.stop() }
        #expect(waitForLockByte(img, QemuImageLock.sharedBase + 1), "the guest never locked \(img)")
        let before = try sha256(img)

        let write = try runProcess(kvmscope, ["io", "-f", "raw", img, "-c", "write -P 0x55 0 4k"])
        #expect(write.status == 1)
        #expect(write.stderr == "kvmscope: can't open \(img): Failed to get \"write\" lock; is another process using the image [\(img)]?\n")
        let read = try runProcess(kvmscope, ["io", "-f", "raw", "-r", img, "-c", "read 0 4k"])
        #expect(read.status == 1 && read.stderr.contains("Failed to get shared \"write\" lock") && read.stderr.contains("-U reads it anyway"))
        let shared = try runProcess(kvmscope, ["io", "-f", "raw", "-r", "-U", img, "-c", "read -q 0 4k"])
        #expect(shared.status == 0, "\(shared.stderr)")
        let serve = try runProcess(kvmscope, ["nbd", "serve", "-f", "raw", img, "--port", "0"], timeout: 20)
        #expect(serve.status == 1 && serve.stderr.contains("Failed to get \"write\" lock"))
        #expect(serve.stdout == "")   // no URI: nothing was served
        let readOnly = try runProcess(kvmscope, ["nbd", "serve", "-f", "raw", "--read-only", img, "--port", "0"], timeout: 20)
        #expect(readOnly.status == 1 && readOnly.stderr.contains("Failed to get shared \"write\" lock"))
        // --read-only -U serves it, and a client reads through it.
        if let qemuIO = QemuTools.require("qemu-io") {
            let sharing = try Holder(kvmscope, ["nbd", "serve", "-f", "raw", "--read-only", "-U", img, "--port", "0", "--quiet"])
            let uri = sharing.line().trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(uri.hasPrefix("nbd://127.0.0.1:"))
            let r = try runProcess(qemuIO, ["-f", "raw", "-r", uri, "-c", "read -q 0 4k"])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            sharing.stop()
        }
        #expect(try sha256(img) == before)
    }

    /// qemu-io holding the image read-write (it shares everything but takes write): kvmscope,
    /// which does not share write, refuses because someone else writes.
    @Test func qemuIOWriterKeepsKvmscopeWriterOut() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let img = dir.image("lock.img", size: 1 << 20)
        let holder = try Holder(qemuIO, ["-f", "raw", img])
        defer { holder.stop() }
        #expect(waitForLockByte(img, QemuImageLock.permBase + 1))
        let r = try runProcess(kvmscope, ["io", "-f", "raw", img, "-c", "write 0 4k"])
        #expect(r.status == 1 && r.stderr.contains("Failed to get shared \"write\" lock"), "\(r.stderr)")
    }

    /// kvmscope io (a session reading commands from a pipe) and kvmscope nbd serve hold the
    /// image: qemu-io and QEMU cannot write it; reading with qemu-io and qemu-img info -U work.
    @Test func kvmscopeKeepsQemuWritersOut() throws {
        guard let qemuIO = QemuTools.require("qemu-io"), let qemuImg = QemuTools.require("qemu-img") else { return }
        let dir = TempDir()
        let img = dir.image("held.img", size: 1 << 20)
        for holderArgs in [["io", "-f", "raw", img], ["nbd", "serve", "-f", "raw", img, "--port", "0", "--quiet"]] {
            let holder = try Holder(kvmscope, holderArgs)
            if holderArgs[0] == "io" {
                holder.send("info\n")
                #expect(holder.line() == "qemu-io> format name: raw\n")   // open and locked
            } else {
                #expect(holder.line().hasPrefix("nbd://127.0.0.1:"))
            }
            let before = try sha256(img)
            let write = try runProcess(qemuIO, ["-f", "raw", "-c", "write -P 0x77 0 4k", img])
            #expect(write.status == 1, "\(holderArgs[0])")
            #expect(write.stderr == "qemu-io: can't open device \(img): Failed to get \"write\" lock\nIs another process using the image [\(img)]?\n")
            let read = try runProcess(qemuIO, ["-f", "raw", "-r", "-c", "read -q 0 4k", img])
            #expect(read.status == 0, "\(read.stderr)")
            let info = try runProcess(qemuImg, ["info", "-U", img])
            #expect(info.status == 0 && info.stdout.hasPrefix("image: \(img)\nfile format: raw\n"))
            #expect(try sha256(img) == before)
            holder.stop()
        }
        // Locks go with the process: afterwards qemu-io writes again.
        #expect(try runProcess(qemuIO, ["-f", "raw", "-c", "write -q 0 4k", img]).status == 0)
    }

    @Test func forceShareNeedsReadOnly() throws {
        let dir = TempDir()
        let img = dir.image("disk.img", size: 1 << 20)
        let io = try runProcess(kvmscope, ["io", "-U", img, "-c", "read 0 4k"])
        #expect(io.status == 2 && io.stderr.contains("-U/--force-share can only be used with read-only images (add -r)"))
        let serve = try runProcess(kvmscope, ["nbd", "serve", "-U", img, "--port", "0"], timeout: 20)
        #expect(serve.status == 2 && serve.stderr.contains("(add --read-only)"))
    }

    // MARK: - durability

    /// "Nothing acknowledged is lost": what qemu-io wrote and flushed through kvmscope nbd serve
    /// is in the image file after the server is killed with SIGKILL (no chance to flush later).
    @Test func flushedWritesSurviveSIGKILL() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let dir = TempDir()
        let img = dir.image("disk.img", size: 4 << 20)
        let server = try Holder(kvmscope, ["nbd", "serve", "-f", "raw", img, "--port", "0", "--quiet"])
        let uri = server.line().trimmingCharacters(in: .whitespacesAndNewlines)
        let w = try runProcess(qemuIO, ["-f", "raw", "-t", "writeback", uri, "-c", "write -q -P 0x5a 1M 64k",
                                        "-c", "write -q -f -P 0xa5 2M 4k", "-c", "flush"])
        #expect(w.status == 0, "\(w.stdout)\(w.stderr)")
        server.stop(SIGKILL)
        let bytes = [UInt8](FileManager.default.contents(atPath: img) ?? Data())
        #expect(bytes.count == 4 << 20)
        #expect(bytes[(1 << 20)..<((1 << 20) + 65536)].allSatisfy { $0 == 0x5a })
        #expect(bytes[(2 << 20)..<((2 << 20) + 4096)].allSatisfy { $0 == 0xa5 })
    }

    /// "Durable before the reply", seen in the system calls: a FUA write is pwrite + fdatasync
    /// before its reply; a flush's fdatasync comes before the flush's reply (strace of the server).
    @Test func fuaAndFlushSyncBeforeTheReply() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        guard let strace = QemuTools.path("strace") else {
            Issue.record("strace not found in PATH: apt-get install -y strace")
            return
        }
        let dir = TempDir()
        let img = dir.image("disk.img", size: 4 << 20)
        let log = dir.path + "/strace.log"
        let traced = try Holder(strace, ["-f", "-qq", "-o", log, "-e", "trace=pwrite64,fdatasync,fsync,write",
                                         kvmscope, "nbd", "serve", "-f", "raw", img, "--port", "0", "--quiet"])
        let uri = traced.line().trimmingCharacters(in: .whitespacesAndNewlines)
        let w = try runProcess(qemuIO, ["-f", "raw", "-t", "writeback", uri, "-c", "write -q -f -P 0xa5 2M 4k",
                                        "-c", "write -q -P 0x5a 1M 4k", "-c", "flush"])
        #expect(w.status == 0, "\(w.stdout)\(w.stderr)")
        // Stop the server (strace's child, by its pid), then strace, which then has written it all.
        let tracer = traced.process.processIdentifier
        let children = (try? String(contentsOfFile: "/proc/\(tracer)/task/\(tracer)/children", encoding: .utf8)) ?? ""
        for pid in children.split(separator: " ").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        traced.process.waitUntilExit()
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        var events: [String] = []
        for l in lines {
            if l.contains("pwrite64(") && l.contains("\"\\245\\245") { events.append("write-fua") }
            else if l.contains("pwrite64(") && l.contains("\"ZZZZ") { events.append("write") }
            else if l.contains("fdatasync(") || l.contains("fsync(") { events.append("sync") }
            else if l.contains("write(") && l.contains("\"gDf\\230") { events.append("reply") }   // NBD simple reply magic
        }
        #expect(Array(events.prefix(7)) == ["write-fua", "sync", "reply", "write", "reply", "sync", "reply"], "\(events)")
    }
}
