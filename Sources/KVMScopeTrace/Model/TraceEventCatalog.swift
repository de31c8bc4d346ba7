import Foundation

/// Every trace event kvmscope can decode: definitions parsed from QEMU's trace-events files,
/// indexed by name. A name can have several definitions (QEMU changed some signatures over
/// the years); the first is the primary one, the others are tried when it does not match.
public struct TraceEventCatalog: Sendable {
    /// All definitions; `definitions[i].id == i`.
    public let definitions: [TraceEventDefinition]
    /// Definition ids per name, primary first.
    public let idsByName: [String: [Int]]
    /// Where the definitions came from, e.g. `/usr/share/qemu/trace-events-all (5078 events)`.
    public let sources: [String]
    /// Lines of the given files that looked like definitions but did not parse.
    public let badLines: Int

    /// The installed merged definition files kvmscope looks for (Debian/Ubuntu, then RHEL/Fedora).
    public static let installedPaths = ["/usr/share/qemu/trace-events-all",
                                        "/usr/share/qemu-kvm/trace-events-all"]

    /// Merges definition files in order: the first definition of a name is primary; a later one
    /// is added as an alternative only when its signature differs.
    public init(sources texts: [(text: String, origin: String)]) {
        var defs: [TraceEventDefinition] = []
        var byName: [String: [Int]] = [:]
        var sourceNotes: [String] = []
        var bad = 0
        for (text, origin) in texts {
            let parser = TraceEventsFileParser(text: text)
            bad += parser.badLines.count
            var added = 0
            for e in parser.entries {
                let candidate = TraceEventDefinition(
                    id: defs.count, name: e.name, properties: e.properties, arguments: e.arguments,
                    rawFormat: e.rawFormat, origin: "\(origin):\(e.line)")
                let existing = byName[e.name] ?? []
                if existing.contains(where: { defs[$0].hasSameSignature(as: candidate) }) { continue }
                byName[e.name, default: []].append(candidate.id)
                defs.append(candidate)
                added += 1
            }
            sourceNotes.append("\(origin) (\(parser.entries.count) definitions, \(added) used)")
        }
        definitions = defs
        idsByName = byName
        sources = sourceNotes
        badLines = bad
    }

    /// Only the bundled definitions (the events the request analysis reads, all signatures).
    public static let bundled = TraceEventCatalog(sources: [(BundledTraceEvents.text, BundledTraceEvents.origin)])

    /// The catalog a command uses: `eventsFile` when given, else the installed
    /// trace-events-all when present, each completed by the bundled definitions.
    public static func load(eventsFile: String? = nil,
                            installedPaths: [String] = TraceEventCatalog.installedPaths) throws -> TraceEventCatalog {
        var texts: [(String, String)] = []
        if let path = eventsFile {
            texts.append((try readText(path), path))
        } else if let path = installedPaths.first(where: { FileManager.default.isReadableFile(atPath: $0) }) {
            texts.append((try readText(path), path))
        }
        texts.append((BundledTraceEvents.text, BundledTraceEvents.origin))
        let catalog = TraceEventCatalog(sources: texts)
        if let path = eventsFile, catalog.sources.first?.contains("(0 definitions") == true {
            throw TraceInputError.noEventDefinitions(path: path)
        }
        return catalog
    }

    static func readText(_ path: String) throws -> String {
        let source = try FileByteSource(path: path)
        let bytes = try source.readAll(limit: 64 << 20) { TraceInputError.eventsFileTooLarge(path: path) }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var count: Int { definitions.count }

    /// The primary definition of `name`.
    public func definition(named name: String) -> TraceEventDefinition? {
        idsByName[name].map { definitions[$0[0]] }
    }

    /// Every definition of `name`, primary first.
    public func definitions(named name: String) -> [TraceEventDefinition] {
        (idsByName[name] ?? []).map { definitions[$0] }
    }

    /// Distinct event names.
    public var names: [String] { Array(idsByName.keys) }

    /// Names matching a QEMU-style pattern (`virtio_blk_*`, `*complete`, exact names).
    public func names(matching pattern: String) -> [String] {
        idsByName.keys.filter { TracePattern.matches(pattern, $0) }.sorted()
    }
}

/// QEMU's `-trace` patterns: `*` matches any run of characters, everything else literally.
enum TracePattern {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.utf8), s = Array(name.utf8)
        var pi = 0, si = 0, star = -1, mark = 0
        while si < s.count {
            if pi < p.count, p[pi] == UInt8(ascii: "*") { star = pi; mark = si; pi += 1 }
            else if pi < p.count, p[pi] == s[si] { pi += 1; si += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; si = mark }
            else { return false }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
