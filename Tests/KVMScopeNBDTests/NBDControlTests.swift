import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeNBD

/// `nbd serve --control PATH` with `kvmscope nbd control PATH ...`: rules listed, added, removed
/// and cleared while qemu-io keeps using the server; bad commands, bad files and hostile
/// control clients get an error and change nothing.
@Suite(.serialized) struct NBDControlTests {
    static let writeEIO = "[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\nerrno = \"5\"\n"
    static let readENOSPC = "[inject-error]\nevent = \"none\"\niotype = \"read\"\nsector = \"0\"\nerrno = \"28\"\n"

    static func control(_ socket: String, _ words: [String]) throws -> ProcessResult {
        try CLIRunner.run(["nbd", "control", socket] + words)
    }

    /// A server of a 4 MiB image with the write-EIO rules file and a control socket.
    static func serverWithControl() throws -> (dir: TempDir, rules: String, more: String, socket: String, server: NBDServerProcess) {
        let dir = TempDir()
        let rules = dir.file("write-eio.cfg", Self.writeEIO)
        let more = dir.file("read-enospc.cfg", Self.readENOSPC)
        let socket = dir.path + "/ctl.sock"
        let s = try NBDServerProcess(size: 4 << 20, arguments: ["-f", "raw", "--rules", rules, "--control", socket])
        return (dir, rules, more, socket, s)
    }

    /// qemu-io's answers to `cmds` on the server, without its timing lines.
    static func io(_ qemuIO: String, _ s: NBDServerProcess, _ cmds: [String]) throws -> [Substring] {
        let r = try runProcess(qemuIO, ["-f", "raw", s.uri] + cmds.flatMap { ["-c", $0] })
        return r.stdout.split(separator: "\n").filter { !$0.contains("ops/sec") }
    }

    @Test func rulesChangeWhileTheServerRuns() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let (dir, rules, more, socket, s) = try Self.serverWithControl()
        func io(_ cmds: [String]) throws -> [Substring] { try Self.io(qemuIO, s, cmds) }
        var st = stat()
        #expect(stat(socket, &st) == 0 && st.st_mode & 0o077 == 0)
        #expect(try io(["write 1M 4k"]) == ["write failed: Input/output error"])
        let list = try Self.control(socket, ["list"])
        #expect(list.status == 0 && list.stdout == "#1 \(rules):1 [inject-error] event=none iotype=write sector=2048 errno=5 (hits 1)\nstate 1; 1 rule (last file: \(rules))\nok\n", "\(list.stdout)")
        let add = try Self.control(socket, ["add", more])
        #expect(add.status == 0 && add.stdout.hasPrefix("added \(more): 2 rules in force"), "\(add.stdout)")
        #expect(try io(["read 0 4k", "write 1M 4k"]) == ["read failed: No space left on device", "write failed: Input/output error"])
        let remove = try Self.control(socket, ["remove", "\(rules):1"])
        #expect(remove.status == 0, "\(remove.stdout)")
        #expect(try io(["read 0 4k", "write 1M 4k"]) == ["read failed: No space left on device", "wrote 4096/4096 bytes at offset 1048576"])
        #expect(try Self.control(socket, ["clear"]).status == 0)
        #expect(try io(["read 0 4k"]) == ["read 4096/4096 bytes at offset 0"])
        let reload = try Self.control(socket, ["reload"])      // the last file loaded: --rules
        #expect(reload.status == 0 && reload.stdout.hasPrefix("reloaded \(rules) (1 rule); kept no added rules: 1 rule in force"), "\(reload.stdout)")
        #expect(try io(["write 1M 4k"]) == ["write failed: Input/output error"])

        // Refused, and nothing changes.
        let junk = dir.file("junk.cfg", "[inject-error]\nevent = \"nope\"\n")
        let bad = try Self.control(socket, ["load", junk])
        #expect(bad.status == 1 && bad.stdout.contains("the rules in force stay"), "\(bad.stdout)")
        #expect(try Self.control(socket, ["remove", "\(rules):9"]).stdout.hasPrefix("error: no rule starts at"))
        #expect(try Self.control(socket, ["frobnicate"]).status == 1)
        // A control client that sends one endless line gets an error, and the socket still works.
        let lines = try NBDControlSocket.send(String(repeating: "x", count: 100_000), to: socket)
        #expect(lines.first?.hasPrefix("error: a command is one line of at most") == true, "\(lines)")
        #expect(try io(["write 1M 4k"]) == ["write failed: Input/output error"])
        #expect(s.stop() != nil)
        #expect(!FileManager.default.fileExists(atPath: socket))       // removed at exit
        #expect(s.stderrLines(containing: "control: removed \(rules):1").count == 1, "\(s.stderr)")
    }

    /// `remove` takes what `list` shows: the number in front of each rule, the id of a
    /// `[section "id"]`, or FILE:LINE.
    @Test func removeTakesTheNumberOrTheIdThatListShows() throws {
        let dir = TempDir()
        let rules = dir.file("r.cfg", "[inject-error \"eio\"]\nevent = \"none\"\niotype = \"write\"\nerrno = \"5\"\n\n[delay \"slow\"]\nread = \"1ms\"\n\n[rate]\nrate = \"1G\"\n")
        let socket = dir.path + "/ctl.sock"
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--rules", rules, "--control", socket])
        let list = try Self.control(socket, ["list"])
        #expect(list.status == 0 && list.stdout == """
            #1 \(rules):1 [inject-error "eio"] event=none iotype=write errno=5 (hits 0)
            #2 \(rules):6 [delay "slow"]
            #3 \(rules):9 [rate]
            state 1; 3 rules (last file: \(rules))
            ok

            """, "\(list.stdout)")
        let byNumber = try Self.control(socket, ["remove", "#3"])
        #expect(byNumber.status == 0 && byNumber.stdout.hasPrefix("removed \(rules):9: 2 rules in force"), "\(byNumber.stdout)")
        let byID = try Self.control(socket, ["remove", "slow"])
        #expect(byID.status == 0 && byID.stdout.hasPrefix("removed \(rules):6: 1 rule in force"), "\(byID.stdout)")
        let bare = try Self.control(socket, ["remove", "1"])
        #expect(bare.status == 0 && bare.stdout.hasPrefix("removed \(rules):1: 0 rules in force"), "\(bare.stdout)")
        let gone = try Self.control(socket, ["remove", "1"])
        #expect(gone.status == 1 && gone.stdout.hasPrefix("error: no rule #1: 0 rules in force"), "\(gone.stdout)")
        let unknown = try Self.control(socket, ["remove", "fast"])
        #expect(unknown.status == 1 && unknown.stdout.hasPrefix("error: no rule has the id 'fast'"), "\(unknown.stdout)")
        #expect(s.stop() != nil)
    }

    /// An all-digit id is an id: `remove 7` with four rules removes the rule named "7"; a bare
    /// `2` that is rule #2's number and another rule's id is refused, not guessed (`#2` is
    /// always the number). FILE:LINE takes any path to the file, not only list's spelling.
    @Test func removeTellsNumbersFromAllDigitIdsAndFilesByIdentity() throws {
        let dir = TempDir()
        func section(_ name: String, _ sector: Int) -> String {
            "[inject-error\(name.isEmpty ? "" : " \"\(name)\"")]\nevent = \"none\"\niotype = \"read\"\nsector = \"\(sector)\"\n\n"
        }
        // Sections start at lines 1 ("7"), 6, 11 ("2") and 16 ("x").
        _ = dir.file("r.cfg", section("7", 0) + section("", 8) + section("2", 16) + section("x", 24))
        let link = dir.path + "/link.cfg"
        #expect(symlink(dir.path + "/r.cfg", link) == 0)
        let socket = dir.path + "/ctl.sock"
        let s = try NBDServerProcess(size: 1 << 20, arguments: ["-f", "raw", "--rules", "r.cfg", "--control", socket], directory: dir.path)
        func remove(_ what: String) throws -> ProcessResult { try Self.control(socket, ["remove", what]) }
        let byID = try remove("7")                                      // no rule #7: the id
        #expect(byID.status == 0 && byID.stdout.hasPrefix("removed r.cfg:1: 3 rules in force"), "\(byID.stdout)")
        let same = try remove("2")                                      // #2 is the rule named "2"
        #expect(same.status == 0 && same.stdout.hasPrefix("removed r.cfg:11: 2 rules in force"), "\(same.stdout)")
        #expect(try Self.control(socket, ["reload"]).status == 0)       // the four rules again
        let clash = try remove("2")                                     // #2 is r.cfg:6, "2" names r.cfg:11
        #expect(clash.status == 1 && clash.stdout.hasPrefix("error: '2' is both rule #2 (r.cfg:6) and the id of the rule at r.cfg:11"),
                "\(clash.stdout)")
        let number = try remove("#2")
        #expect(number.status == 0 && number.stdout.hasPrefix("removed r.cfg:6: 3 rules in force"), "\(number.stdout)")
        let byLink = try remove(link + ":11")
        #expect(byLink.status == 0 && byLink.stdout.hasPrefix("removed r.cfg:11: 2 rules in force"), "\(byLink.stdout)")
        let nowhere = try remove(link + ":12")
        #expect(nowhere.status == 1 && nowhere.stdout.hasPrefix("error: no rule starts at \(link):12"), "\(nowhere.stdout)")
        #expect(s.stop() != nil)
    }

    /// `reload` (and SIGHUP) re-read the file and keep what `add` added since, and say so;
    /// `load` replaces everything.
    @Test func reloadKeepsTheRulesAddedSince() throws {
        guard let qemuIO = QemuTools.require("qemu-io") else { return }
        let (dir, rules, more, socket, s) = try Self.serverWithControl()
        func io(_ cmds: [String]) throws -> [Substring] { try Self.io(qemuIO, s, cmds) }
        let both: [Substring] = ["read failed: No space left on device", "write failed: Input/output error"]
        #expect(try Self.control(socket, ["add", more]).status == 0)
        let reload = try Self.control(socket, ["reload"])
        #expect(reload.status == 0 && reload.stdout == "reloaded \(rules) (1 rule); kept 1 added rule (\(more):1): 2 rules in force, state machine back to state 1\nok\n",
                "\(reload.stdout)")
        #expect(try io(["read 0 4k", "write 1M 4k"]) == both)
        kill(s.pid, SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while s.stderrLines(containing: "SIGHUP: reloaded").isEmpty && Date() < deadline { usleep(20_000) }
        #expect(s.stderrLines(containing: "SIGHUP: reloaded \(rules) (1 rule); kept 1 added rule (\(more):1): 2 rules in force").count == 1, "\(s.stderr)")
        #expect(try io(["read 0 4k", "write 1M 4k"]) == both)
        let load = try Self.control(socket, ["load", rules])
        #expect(load.status == 0 && load.stdout.hasPrefix("loaded \(rules): 1 rule in force"), "\(load.stdout)")
        #expect(try io(["read 0 4k"]) == ["read 4096/4096 bytes at offset 0"])
        #expect(s.stop() != nil)
    }

    /// Which rules a reload keeps as added is told by the file, not by how its path is
    /// spelled: `--rules write-eio.cfg` (relative to the server's directory) and `add` of the
    /// same file by its absolute path, or by a symlink to it, are the rules file itself, so a
    /// reload re-reads it once and keeps only the rules from other files.
    @Test func reloadTellsTheRulesFileByItsIdentityNotItsPath() throws {
        let dir = TempDir()
        let rules = dir.file("write-eio.cfg", Self.writeEIO)
        let more = dir.file("read-enospc.cfg", Self.readENOSPC)
        let link = dir.path + "/link.cfg"
        #expect(symlink(rules, link) == 0)
        let socket = dir.path + "/ctl.sock"
        let s = try NBDServerProcess(size: 4 << 20, arguments: ["-f", "raw", "--rules", "write-eio.cfg", "--control", socket],
                                     directory: dir.path)
        for file in [rules, link, more] { #expect(try Self.control(socket, ["add", file]).status == 0) }
        let reload = try Self.control(socket, ["reload"])
        #expect(reload.status == 0 && reload.stdout == "reloaded write-eio.cfg (1 rule); kept 1 added rule (\(more):1): 2 rules in force, state machine back to state 1\nok\n",
                "\(reload.stdout)")
        let list = try Self.control(socket, ["list"])
        #expect(list.stdout.hasPrefix("#1 write-eio.cfg:1 [inject-error]") && list.stdout.contains("#2 \(more):1 [inject-error]")
                && list.stdout.contains("; 2 rules"), "\(list.stdout)")
        #expect(s.stop() != nil)
    }

    @Test func theControlPathIsCheckedBeforeServing() throws {
        let dir = TempDir()
        let img = dir.image("d.img", size: 1 << 20)
        let file = dir.file("not-a-socket", "data\n")
        let r = try CLIRunner.run(["nbd", "serve", "-f", "raw", img, "--port", "0", "--control", file])
        #expect(r.status == 1 && r.stderr.contains("it exists and is not a socket"), "\(r.stderr)")
        #expect(FileManager.default.contents(atPath: file) == Data("data\n".utf8))
        let none = try Self.control(dir.path + "/absent.sock", ["list"])
        #expect(none.status == 1 && none.stderr.contains("cannot connect to \(dir.path)/absent.sock"))
        let usage = try CLIRunner.run(["nbd", "control", dir.path + "/absent.sock"])
        #expect(usage.status == 2)
    }
}
