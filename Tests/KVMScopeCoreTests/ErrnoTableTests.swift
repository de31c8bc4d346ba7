import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeCore

@Suite struct ErrnoTableTests {
    let table = ErrnoTable.standard

    @Test func everyNumberFrom1To133ExceptTheUnusedOnes() {
        for n in 1...133 {
            let e = table.entry(number: Int64(n))
            if n == 41 || n == 58 { #expect(e == nil, "\(n) is unused on x86-64") }
            else { #expect(e?.number == Int32(n), "missing \(n)") }
        }
        #expect(table.entry(number: 133)?.name == "EHWPOISON")
        #expect(table.entry(number: 134) == nil)
        #expect(table.entries.filter { !$0.kernelInternal }.count == 131)
    }

    /// The messages must be glibc's: compare with this machine's strerror() for every number.
    @Test func messagesAreGlibcStrerror() {
        // The kernel-internal numbers have no glibc text ("Unknown error 512"): theirs are the
        // kernel header's comments, checked in kernelInternalNumbersFromLinuxErrnoH.
        for e in table.entries where !e.kernelInternal {
            let glibc = String(cString: strerror(e.number))
            #expect(e.message == glibc, "\(e.name): \(e.message) vs glibc \(glibc)")
        }
        #expect(table.entry(name: "EIO")?.message == "Input/output error")
        #expect(table.entry(number: 11)?.message == "Resource temporarily unavailable")
        #expect(table.entry(number: 95)?.message == "Operation not supported")
        #expect(table.entry(number: 122)?.message == "Disk quota exceeded")
    }

    /// The numbers must be the kernel's: parse the installed asm-generic headers when present.
    @Test func numbersMatchInstalledKernelHeaders() throws {
        var defines: [String: Int32] = [:]
        var aliases: [String: String] = [:]
        for path in ["/usr/include/asm-generic/errno-base.h", "/usr/include/asm-generic/errno.h"] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard f.count >= 3, f[0] == "#define", f[1].hasPrefix("E") else { continue }
                if let n = Int32(f[2]) { defines[String(f[1])] = n } else { aliases[String(f[1])] = String(f[2]) }
            }
        }
        guard !defines.isEmpty else {
            print("asm-generic headers not installed (linux-libc-dev): header cross-check not run")
            return
        }
        #expect(defines.count >= 130)
        for (name, number) in defines {
            #expect(table.entry(name: name)?.number == number, "\(name) should be \(number)")
        }
        for (alias, canonical) in aliases {
            #expect(table.entry(name: alias)?.number == defines[canonical], "\(alias) → \(canonical)")
        }
    }

    /// include/linux/errno.h's numbers, which kernel logs print (`probe failed with error -517`,
    /// `-512` from an interrupted wait) and glibc does not know: on every architecture.
    @Test func kernelInternalNumbersFromLinuxErrnoH() {
        let expected: [(Int32, String, String)] = [
            (512, "ERESTARTSYS", "To be restarted if SA_RESTART is set"), (513, "ERESTARTNOINTR", "To be restarted"),
            (514, "ERESTARTNOHAND", "Restart if no handler"), (515, "ENOIOCTLCMD", "No ioctl command"),
            (516, "ERESTART_RESTARTBLOCK", "Restart by calling sys_restart_syscall"),
            (517, "EPROBE_DEFER", "Driver requests probe retry"), (518, "EOPENSTALE", "Open found a stale dentry"),
            (519, "ENOPARAM", "Parameter not supported"), (521, "EBADHANDLE", "Illegal NFS file handle"),
            (522, "ENOTSYNC", "Update synchronization mismatch"), (523, "EBADCOOKIE", "Cookie is stale"),
            (524, "ENOTSUPP", "Operation is not supported"), (525, "ETOOSMALL", "Buffer or request is too small"),
            (526, "ESERVERFAULT", "An untranslatable error occurred"), (527, "EBADTYPE", "Type not supported by server"),
            (528, "EJUKEBOX", "Request initiated, but will not complete before timeout"),
            (529, "EIOCBQUEUED", "iocb queued, will get completion event"),
            (530, "ERECALLCONFLICT", "Conflict with recalled state"), (531, "ENOGRACE", "NFS file lock reclaim refused"),
        ]
        for arch in ErrnoArchitecture.allCases {
            let t = ErrnoTable.forArchitecture(arch)
            for (number, name, message) in expected {
                let e = t.entry(number: -Int64(number))
                #expect(e?.name == name && e?.message == message && e?.kernelInternal == true, "\(arch): \(number)")
                #expect(t.entry(name: name.lowercased())?.number == number, "\(arch): \(name)")
            }
            #expect(t.entry(number: 520) == nil, "520 is unused")
            #expect(t.entries.filter(\.kernelInternal).count == 19, "\(arch)")
        }
        #expect(table.describe(returnValue: -517) == "EPROBE_DEFER (Driver requests probe retry)")
        #expect(ErrnoRenderer.line(table.entry(number: 512)!) == "ERESTARTSYS 512 To be restarted if SA_RESTART is set (kernel-internal, never returned to user space)")
        #expect(ErrnoRenderer.line(table.entry(number: 5)!) == "EIO 5 Input/output error")
    }

    @Test func namesAliasesNegativeAndCaseInsensitive() {
        #expect(table.entry(query: "5")?.name == "EIO")
        #expect(table.entry(query: "-5")?.name == "EIO")
        #expect(table.entry(query: "eio")?.number == 5)
        #expect(table.entry(query: "EIO")?.number == 5)
        #expect(table.entry(query: "0x1c")?.name == "ENOSPC")
        #expect(table.entry(query: "EWOULDBLOCK")?.name == "EAGAIN")
        #expect(table.entry(query: "EDEADLOCK")?.name == "EDEADLK")
        #expect(table.entry(query: "ENOTSUP")?.name == "EOPNOTSUPP")
        #expect(table.entry(query: "EAGAIN")?.aliases == ["EWOULDBLOCK"])
        #expect(table.entry(query: "ENOSUCH") == nil)
        #expect(table.entry(query: "99999999999999999999") == nil)
        #expect(table.entry(query: "") == nil)
        #expect(table.describe(returnValue: -28) == "ENOSPC (No space left on device)")
        #expect(table.describe(returnValue: -999) == "errno 999 (unknown)")
    }

    @Test func searchNeedsEveryWord() {
        #expect(table.search(["quota"]).map(\.name) == ["EDQUOT"])
        #expect(table.search(["NO", "space"]).map(\.name) == ["ENOSPC", "ENOBUFS"])
        #expect(table.search(["space", "left"]).map(\.name) == ["ENOSPC"])
        #expect(table.search(["input/output"]).map(\.name) == ["EIO"])
        #expect(table.search(["wouldblock"]).map(\.name) == ["EAGAIN"])
        #expect(table.search(["xyzzy"]).isEmpty)
    }

    /// Numbers from arch/<arch>/include/uapi/asm/errno.h.
    @Test(arguments: [
        (ErrnoArchitecture.mips, "EDQUOT", Int32(1133)), (.mips, "EAGAIN", 11), (.mips, "EDEADLOCK", 56),
        (.mips, "ENOTSUP", 122), (.mips, "ECANCELED", 158), (.mips, "EHWPOISON", 168), (.mips, "EINIT", 141),
        (.sparc, "EDQUOT", 69), (.sparc, "EOPNOTSUPP", 45), (.sparc, "ENOSYS", 90), (.sparc, "EDEADLK", 78),
        (.sparc, "EPROCLIM", 67), (.sparc, "EHWPOISON", 135), (.sparc, "EWOULDBLOCK", 11),
        (.alpha, "EAGAIN", 35), (.alpha, "EDEADLK", 11), (.alpha, "EDEADLOCK", 11), (.alpha, "ENOSPC", 28),
        (.alpha, "EDQUOT", 69), (.alpha, "EILSEQ", 116), (.alpha, "EHWPOISON", 139),
        (.parisc, "EOPNOTSUPP", 223), (.parisc, "ENOTSUP", 252), (.parisc, "ECANCELED", 253),
        (.parisc, "ECANCELLED", 253), (.parisc, "EDQUOT", 69), (.parisc, "ENOSYS", 251), (.parisc, "EHWPOISON", 257),
        (.parisc, "EREFUSED", 239),
        (.powerpc, "EDEADLOCK", 58), (.powerpc, "EDEADLK", 35), (.powerpc, "EDQUOT", 122), (.powerpc, "EIO", 5),
    ])
    func architectureNumbers(arch: ErrnoArchitecture, name: String, number: Int32) {
        #expect(ErrnoTable.forArchitecture(arch).entry(name: name)?.number == number)
    }

    @Test func architectureDecodesTheSameNumberDifferently() {
        #expect(ErrnoTable.forArchitecture(.sparc).entry(number: -69)?.name == "EDQUOT")
        #expect(ErrnoTable.standard.entry(number: -69)?.name == "ESRMNT")
        #expect(ErrnoTable.forArchitecture(.mips).entry(number: 1133)?.message == "Disk quota exceeded")
        #expect(ErrnoTable.forArchitecture(.powerpc).entry(number: 58)?.message == "File locking deadlock error")
        #expect(ErrnoTable.forArchitecture(.parisc).entry(number: 252)?.message == "Not supported")
        #expect(ErrnoTable.forArchitecture(.alpha).entry(number: 11)?.aliases == ["EDEADLOCK"])
    }

    /// Every architecture defines every errno name that asm-generic has, each number once.
    @Test(arguments: ErrnoArchitecture.allCases)
    func architectureIsComplete(arch: ErrnoArchitecture) {
        let t = ErrnoTable.forArchitecture(arch)
        for e in ErrnoTable.standard.entries {
            #expect(t.entry(name: e.name) != nil, "\(arch): \(e.name) missing")
        }
        #expect(Set(t.entries.map(\.number)).count == t.entries.count)
        #expect(t.entries.allSatisfy { !$0.message.hasPrefix("Unknown error") })
    }

    @Test func userArchitectureNames() {
        #expect(ErrnoArchitecture(userName: "mips64el") == .mips)
        #expect(ErrnoArchitecture(userName: "ppc64le") == .powerpc)
        #expect(ErrnoArchitecture(userName: "aarch64") == .generic)
        #expect(ErrnoArchitecture(userName: "x86_64") == .generic)
        #expect(ErrnoArchitecture(userName: "hppa") == .parisc)
        #expect(ErrnoArchitecture(userName: "vax") == nil)
    }
}
