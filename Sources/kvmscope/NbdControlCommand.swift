import ArgumentParser
import Foundation
import KVMScopeNBD

/// `kvmscope nbd control PATH COMMAND`: changes the rules of a running `nbd serve --control PATH`.
struct NbdControlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control",
        abstract: "List or change the rules of a running nbd serve (its --control socket), without signals.",
        discussion: """
        Commands: list (the rules in force, where each starts, [inject-error] hits, the state); load FILE (FILE's rules replace them); add FILE (appended after them); remove #N, ID or FILE:LINE (the rule list numbers N, the section [name "ID"], or the rule whose section starts at FILE:LINE; #N is always list's number, a bare N too unless it is also a rule's id); clear (no rules); reload (re-read the last file, as SIGHUP does, and keep the rules added since: the reply names them; load FILE replaces everything). Every change restarts the rules' state machine at state 1, as SIGHUP does; clients stay connected. FILE is read by the server, so give a path it can open.

        Examples:
          $ kvmscope nbd serve disk.img --rules write-eio.cfg --control /run/kvmscope-nbd.ctl
          $ kvmscope nbd control /run/kvmscope-nbd.ctl list
          #1 write-eio.cfg:1 [inject-error] event=none iotype=write sector=2048 errno=5 (hits 1)
          state 1; 1 rule (last file: write-eio.cfg)
          ok
          $ kvmscope nbd control /run/kvmscope-nbd.ctl remove 1
          removed write-eio.cfg:1: 0 rules in force, state machine back to state 1
          ok
        Exit status: 0 done, 1 the server refused the command (or cannot be reached), 2 usage error.
        """
    )

    @Argument(help: "The server's --control socket.")
    var socket: String

    @Argument(parsing: .captureForPassthrough, help: "list | load FILE | add FILE | remove #N|ID|FILE:LINE | clear | reload")
    var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give a command: list, load FILE, add FILE, remove #N|ID|FILE:LINE, clear or reload") }
    }

    func run() throws {
        var words = command
        // A relative FILE is the caller's: the server resolves paths from its own directory.
        if ["load", "add"].contains(words[0]), words.count == 2, !words[1].hasPrefix("/") {
            words[1] = FileManager.default.currentDirectoryPath + "/" + words[1]
        }
        // remove FILE:LINE with a FILE this caller can see: sent as an absolute path, which the
        // server matches by the file's identity, not its spelling. Anything else (an id, #N, the
        // path as list prints it from the server's directory) goes as it is.
        if words[0] == "remove", words.count == 2, !words[1].hasPrefix("/"), let colon = words[1].lastIndex(of: ":"),
           Int(words[1][words[1].index(after: colon)...]) != nil,
           FileManager.default.fileExists(atPath: String(words[1][..<colon])) {
            words[1] = FileManager.default.currentDirectoryPath + "/" + words[1]
        }
        let lines = try NBDControlSocket.send(words.joined(separator: " "), to: socket)
        for line in lines { CLIOutput.write(line + "\n") }
        if lines.last != "ok" { throw ExitCode.failure }
    }
}
