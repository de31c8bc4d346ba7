import Foundation
import KVMScope
import KVMScopeNBD

/// The rules `nbd serve` applies, one set per export (each checked against its image's size),
/// changed by SIGHUP (re-read the file) and by the control socket (list, load, add, remove,
/// clear, reload). Every change is a fresh engine per export, as SIGHUP always was: the state
/// machine restarts at state 1 and `once` rules are armed again. A re-read of the file (reload,
/// SIGHUP) keeps the rules `add` added since.
final class NbdServedRules: @unchecked Sendable {
    struct Served { let backend: FaultInjectingBackend; let size: Int64; var rules: BlkdebugConfig? }

    private let lock = NSLock()
    private var served: [Served]
    private var file: String?
    private let seed: UInt64
    private let observer: ServeObserver
    /// Called after every change (the server tells its connections: replies held back by rules
    /// that are gone go out) and says how many held replies it let go or shortened. Set once,
    /// before the control socket and SIGHUP are handled.
    var onChange: (@Sendable () -> NBDHeldRepliesChanged)?

    init(served: [Served], file: String?, seed: UInt64, observer: ServeObserver) {
        self.served = served
        self.file = file
        self.seed = seed
        self.observer = observer
    }

    typealias Reply = (lines: [String], ok: Bool)

    /// One control command.
    func handle(_ line: String) -> Reply {
        let words = line.split(separator: " ", maxSplits: 1).map(String.init)
        let argument = words.count > 1 ? words[1].trimmingCharacters(in: .whitespaces) : ""
        switch words.first ?? "" {
        case "list" where argument.isEmpty: return list()
        case "reload" where argument.isEmpty:
            guard let file = currentFile() else { return (["error: no rules file to re-read (the server started without --rules; use load FILE)"], false) }
            return reload(file, via: "control")
        case "load" where !argument.isEmpty: return replace(from: argument, adding: false)
        case "add" where !argument.isEmpty: return replace(from: argument, adding: true)
        case "remove" where !argument.isEmpty: return remove(argument)
        case "clear" where argument.isEmpty: return apply({ _, _ in nil }, what: "cleared")
        default:
            return (["error: commands: list | load FILE | add FILE | remove #N|ID|FILE:LINE | clear | reload"], false)
        }
    }

    private func currentFile() -> String? {
        lock.lock(); defer { lock.unlock() }
        return file
    }

    private func list() -> Reply {
        lock.lock(); defer { lock.unlock() }
        guard let first = served.first else { return ([], true) }
        let rules = first.rules ?? BlkdebugConfig()
        let hits = first.backend.ruleHits()
        // Numbered as `remove N` takes them.
        var lines = rules.ruleLines().enumerated().map { i, line in
            "#\(i + 1) " + (i < rules.injectErrors.count && i < hits.count ? line + " (hits \(hits[i]))" : line)
        }
        if lines.isEmpty { lines = ["no rules"] }
        lines.append("state \(first.backend.currentState); \(rules.ruleCount) rule\(rules.ruleCount == 1 ? "" : "s")"
                     + (file.map { " (last file: \($0))" } ?? ""))
        return (lines, true)
    }

    /// `load FILE` (the file's rules replace the current ones) and `add FILE` (appended).
    private func replace(from path: String, adding: Bool) -> Reply {
        let loaded: Loaded
        switch load(path) {
        case let .success(l): loaded = l
        case let .failure(refused): return refused.reply
        }
        let reply = apply({ i, current in adding ? (current ?? BlkdebugConfig()).adding(loaded.rules[i]) : loaded.rules[i] },
                          what: adding ? "added \(path)" : "loaded \(path)")
        if !adding { lock.lock(); file = path; lock.unlock() }
        return (loaded.problems + reply.lines, reply.ok)
    }

    /// `reload` and SIGHUP: the last file read again, with the rules added since (`add`: every
    /// rule whose section is in another file) kept after its own, so that a re-read of the file
    /// does not lose an operator's live additions; the reply names them. `load FILE` replaces
    /// everything, `remove` and `clear` drop added rules for good.
    private func reload(_ path: String, via: String) -> Reply {
        let loaded: Loaded
        switch load(path) {
        case let .success(l): loaded = l
        case let .failure(refused): return refused.reply
        }
        let fromOtherFiles = Self.rulesFromOtherFiles(than: path)
        let added = snapshot().first.map { ($0.rules ?? BlkdebugConfig()).keeping(fromOtherFiles).ruleEntries() } ?? []
        let fromFile = loaded.rules.first?.ruleCount ?? 0
        let kept = added.isEmpty ? "kept no added rules"
            : "kept \(added.count) added rule\(added.count == 1 ? "" : "s") (\(added.map { "\($0.location)" }.joined(separator: ", ")))"
        let reply = apply({ i, current in loaded.rules[i].adding((current ?? BlkdebugConfig()).keeping(fromOtherFiles)) },
                          what: "reloaded \(path) (\(fromFile) rule\(fromFile == 1 ? "" : "s")); \(kept)", via: via)
        return (loaded.problems + reply.lines, reply.ok)
    }

    /// Which rules `add` added from another file than `path`, told by the files' identity
    /// (device and inode, looked up now), not by their path strings: `--rules x.cfg` and
    /// `nbd control add x.cfg` (which the control client makes absolute) are one file, so a
    /// reload must not keep the second copy as an added rule. A path that cannot be looked up
    /// (a file deleted since) is compared as a string.
    private static func rulesFromOtherFiles(than path: String) -> (RuleLocation) -> Bool {
        let reloaded = fileIdentity(path)
        var identities: [String: (dev_t, ino_t)?] = [:]
        return { location in
            if identities[location.file] == nil { identities[location.file] = .some(fileIdentity(location.file)) }
            guard let reloaded, let other = identities[location.file]! else { return location.file != path }
            return other != reloaded
        }
    }

    private struct Loaded { var rules: [BlkdebugConfig]; var problems: [String] }
    private struct Refused: Error { var reply: Reply }

    /// FILE's rules for every export (each checked against its size), or the reply refusing it.
    private func load(_ path: String) -> Result<Loaded, Refused> {
        var problems: [String] = []
        var loaded: [BlkdebugConfig] = []
        for s in snapshot() {
            do {
                loaded.append(try RulesLoading.load(path, imageSize: s.size, report: { problems.append($0.trimmingCharacters(in: .newlines)) }))
            } catch {
                return .failure(Refused(reply: (Array(Set(problems)).sorted() + ["error: \(error); the rules in force stay"], false)))
            }
        }
        if let first = loaded.first { observer.warnUnmappable(first) }
        return .success(Loaded(rules: loaded, problems: Array(Set(problems)).sorted()))
    }

    /// `remove #N` (the number `list` prints), `remove ID` (a section's `[name "ID"]`), `remove N`
    /// (the number, or an all-digit id: refused when it names two different rules), or
    /// `remove FILE:LINE` (where its section starts: FILE as `list` prints it, or any path to
    /// the same file).
    private func remove(_ argument: String) -> Reply {
        let usage = "error: remove takes #N (the number list prints), a rule's id, or FILE:LINE (where its section starts)"
        guard let entries = snapshot().first.map({ ($0.rules ?? BlkdebugConfig()).ruleEntries() }) else { return ([usage], false) }
        let named = entries.filter { $0.id == argument }
        guard Set(named.map(\.location)).count <= 1 else {
            return (["error: \(named.count) rules have the id '\(argument)' (\(named.map { "\($0.location)" }.joined(separator: ", "))); remove one by its number or FILE:LINE"], false)
        }
        let numbered = argument.hasPrefix("#") ? String(argument.dropFirst()) : argument
        let number = numbered.allSatisfy(\.isASCII) ? Int(numbered) : nil
        let location: RuleLocation
        if let n = number, argument.hasPrefix("#") || named.isEmpty {
            guard n >= 1 && n <= entries.count else {
                return (["error: no rule #\(n): \(entries.count) rule\(entries.count == 1 ? "" : "s") in force (list numbers them)"], false)
            }
            location = entries[n - 1].location
        } else if let id = named.first {
            if let n = number, n >= 1, n <= entries.count, entries[n - 1].location != id.location {
                return (["error: '\(argument)' is both rule #\(n) (\(entries[n - 1].location)) and the id of the rule at \(id.location); say #\(n) for the number, or \(id.location)"], false)
            }
            location = id.location
        } else {
            guard let colon = argument.lastIndex(of: ":"), let line = Int(argument[argument.index(after: colon)...]), line > 0 else {
                return (["error: no rule has the id '\(argument)'", usage], false)
            }
            let given = RuleLocation(file: String(argument[..<colon]), line: line)
            let sameFile = Self.sameFile(as: given.file)
            guard let found = entries.first(where: { $0.location == given })
                    ?? entries.first(where: { $0.location.line == line && sameFile($0.location.file) }) else {
                return (["error: no rule starts at \(given) (list shows where each does)"], false)
            }
            location = found.location
        }
        return apply({ _, current in current?.removing(at: location).config }, what: "removed \(location)")
    }

    /// Whether a path names the same file as `path` (device and inode); false when either
    /// cannot be looked up.
    private static func sameFile(as path: String) -> (String) -> Bool {
        guard let wanted = fileIdentity(path) else { return { _ in false } }
        return { fileIdentity($0).map { $0 == wanted } ?? false }
    }

    private static func fileIdentity(_ p: String) -> (dev_t, ino_t)? {
        var st = stat()
        return stat(p, &st) == 0 ? (st.st_dev, st.st_ino) : nil
    }

    private func snapshot() -> [Served] {
        lock.lock(); defer { lock.unlock() }
        return served
    }

    private func apply(_ change: (Int, BlkdebugConfig?) -> BlkdebugConfig?, what: String, via: String = "control") -> Reply {
        lock.lock()
        for i in served.indices {
            let next = change(i, served[i].rules)
            served[i].rules = (next?.isEmpty ?? true) ? nil : next
            served[i].backend.replaceRules(served[i].rules, seed: seed)
        }
        let n = served.first?.rules?.ruleCount ?? 0
        lock.unlock()
        let held = onChange?() ?? NBDHeldRepliesChanged()
        let line = "\(what): \(n) rule\(n == 1 ? "" : "s") in force, state machine back to state 1"
        CLIOutput.error("\(via): " + line)
        observer.heldRepliesChanged(held, by: what, via: via)
        return ([line], true)
    }

    /// SIGHUP: re-read the file the rules came from.
    func reloadOnSignal() {
        guard let file = currentFile() else {
            CLIOutput.warning("SIGHUP: no --rules file to re-read")
            return
        }
        let reply = reload(file, via: "SIGHUP")
        if !reply.ok { CLIOutput.error("SIGHUP: " + (reply.lines.last ?? "failed")) }
    }
}
