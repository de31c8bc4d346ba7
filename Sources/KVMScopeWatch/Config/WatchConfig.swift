import Foundation
import KVMScopeCore
import TOMLKit

/// `watch`'s settings as given: by the configuration file (`--config FILE`, TOML) or the
/// command line, each field nil where that one says nothing. The command line wins field by
/// field (`merged(over:)`); `resolved()` fills in the defaults and checks every value.
///
/// The file's keys are the long options' names:
///
///     qmp = ["/run/kvmscope/qmp/*.sock", "tcp:10.0.0.5:4444"]
///     listen = "127.0.0.1:9177"
///     interval = 15
///     events = "-"
///     host-kernel = true
///     block-tracepoint = true
///     drops = false
///     libvirt = ["qemu:///system"]
///     libvirt-read-only = false
///     libvirt-passthrough = false
///     auto-record = "/var/lib/kvmscope/captures"
///     auto-record-limit = 2
///     auto-record-disk = "2G"
///     latency-histograms = false
///
/// A key it does not know is an error, not ignored: a misspelt `host_kernel` must not leave
/// host errors silently uncounted.
public struct WatchConfig: Equatable, Sendable {
    public var qmp: [String]?
    public var listen: String?
    public var interval: Double?
    public var events: String?
    public var hostKernel: Bool?
    public var blockTracepoint: Bool?
    public var drops: Bool?
    /// libvirt URIs whose running domains are watched (`--libvirt`).
    public var libvirt: [String]?
    public var libvirtReadOnly: Bool?
    public var libvirtPassthrough: Bool?
    /// `--auto-record DIR` and its bounds (captures at once; DIR's size in bytes).
    public var autoRecord: String?
    public var autoRecordLimit: Int?
    public var autoRecordDisk: Int?
    /// `--latency-histograms`: turn on QEMU's latency histograms (changes the VMs while watched).
    public var latencyHistograms: Bool?

    public init(qmp: [String]? = nil, listen: String? = nil, interval: Double? = nil, events: String? = nil,
                hostKernel: Bool? = nil, blockTracepoint: Bool? = nil, drops: Bool? = nil,
                libvirt: [String]? = nil, libvirtReadOnly: Bool? = nil, libvirtPassthrough: Bool? = nil,
                autoRecord: String? = nil, autoRecordLimit: Int? = nil, autoRecordDisk: Int? = nil,
                latencyHistograms: Bool? = nil) {
        self.qmp = qmp; self.listen = listen; self.interval = interval; self.events = events
        self.hostKernel = hostKernel; self.blockTracepoint = blockTracepoint; self.drops = drops
        self.libvirt = libvirt; self.libvirtReadOnly = libvirtReadOnly; self.libvirtPassthrough = libvirtPassthrough
        self.autoRecord = autoRecord; self.autoRecordLimit = autoRecordLimit; self.autoRecordDisk = autoRecordDisk
        self.latencyHistograms = latencyHistograms
    }

    /// Larger than any sensible configuration: a file this big is a mistake (or /dev/zero).
    public static let maxFileBytes = 1 << 20
    public static let keys = ["qmp", "listen", "interval", "events", "host-kernel", "block-tracepoint", "drops",
                              "libvirt", "libvirt-read-only", "libvirt-passthrough", "auto-record", "auto-record-limit", "auto-record-disk", "latency-histograms"]

    /// Reads and parses the file; every problem is `WatchError.badConfig` in one line.
    public static func load(path: String) throws -> WatchConfig {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WatchError.badConfig(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw WatchError.badConfig(path: path, reason: "not a regular file")
        }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw WatchError.badConfig(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 { break }
            data += buf[..<n]
            if data.count > maxFileBytes { throw WatchError.badConfig(path: path, reason: "larger than \(maxFileBytes >> 20) MiB") }
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw WatchError.badConfig(path: path, reason: "not UTF-8 text (TOML is UTF-8)")
        }
        do { return try parse(text) } catch let e as ConfigProblem {
            throw WatchError.badConfig(path: path, reason: e.text)
        }
    }

    struct ConfigProblem: Error { let text: String }

    /// The TOML document's settings.
    static func parse(_ text: String) throws -> WatchConfig {
        // toml++ reads a NUL as the end of its input: refused here, so what was checked is all there is.
        guard !text.utf8.contains(0) else { throw ConfigProblem(text: "a NUL byte in the file") }
        if let line = TOMLTableHeaderCheck.firstHeaderWithoutKey(in: text) {
            throw ConfigProblem(text: "line \(line): a table header must begin with a key (a letter, digit, '_', '-' or a quoted name)")
        }
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let e as TOMLParseError {
            throw ConfigProblem(text: "line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)")
        }
        var c = WatchConfig()
        for key in table.keys.sorted() {
            guard let value = table[key] else { continue }
            switch key {
            case "qmp": c.qmp = try strings(value, key, want: "a list of socket paths, globs or tcp:HOST:PORT")
            case "libvirt": c.libvirt = try strings(value, key, want: "a list of libvirt URIs (qemu:///system)")
            case "libvirt-read-only": c.libvirtReadOnly = try bool(value, key)
            case "libvirt-passthrough": c.libvirtPassthrough = try bool(value, key)
            case "listen": c.listen = try string(value, key)
            case "events": c.events = try string(value, key)
            case "interval":
                if let i = value.int { c.interval = Double(i) } else if let d = value.double { c.interval = d }
                else { throw ConfigProblem(text: "interval: want seconds, a number") }
            case "auto-record": c.autoRecord = try string(value, key)
            case "auto-record-limit":
                guard let i = value.int else { throw ConfigProblem(text: "auto-record-limit: want a number of captures") }
                c.autoRecordLimit = i
            case "auto-record-disk":
                if let i = value.int, i > 0 { c.autoRecordDisk = i }
                else if let t = value.string, let b = ByteCount.parse(t) { c.autoRecordDisk = b }
                else { throw ConfigProblem(text: "auto-record-disk: want a size, bytes or \"2G\"") }
            case "latency-histograms": c.latencyHistograms = try bool(value, key)
            case "host-kernel": c.hostKernel = try bool(value, key)
            case "block-tracepoint": c.blockTracepoint = try bool(value, key)
            case "drops": c.drops = try bool(value, key)
            default:
                throw ConfigProblem(text: "unknown key '\(key)' (known: \(keys.joined(separator: ", ")))")
            }
        }
        return c
    }

    /// One string or a list of them.
    private static func strings(_ v: any TOMLValueConvertible, _ key: String, want: String) throws -> [String] {
        if let one = v.string { return [one] }
        guard let array = v.array else { throw ConfigProblem(text: "\(key): want \(want)") }
        var list: [String] = []
        for item in array {
            guard let s = item.string else { throw ConfigProblem(text: "\(key): every entry must be a string") }
            list.append(s)
        }
        return list
    }

    private static func string(_ v: any TOMLValueConvertible, _ key: String) throws -> String {
        guard let s = v.string else { throw ConfigProblem(text: "\(key): want a string") }
        return s
    }

    private static func bool(_ v: any TOMLValueConvertible, _ key: String) throws -> Bool {
        guard let b = v.bool else { throw ConfigProblem(text: "\(key): want true or false") }
        return b
    }

    /// This (the command line) over `file`: each field given here wins.
    public func merged(over file: WatchConfig) -> WatchConfig {
        WatchConfig(qmp: qmp ?? file.qmp, listen: listen ?? file.listen, interval: interval ?? file.interval,
                    events: events ?? file.events, hostKernel: hostKernel ?? file.hostKernel,
                    blockTracepoint: blockTracepoint ?? file.blockTracepoint, drops: drops ?? file.drops,
                    libvirt: libvirt ?? file.libvirt, libvirtReadOnly: libvirtReadOnly ?? file.libvirtReadOnly,
                    libvirtPassthrough: libvirtPassthrough ?? file.libvirtPassthrough,
                    autoRecord: autoRecord ?? file.autoRecord, autoRecordLimit: autoRecordLimit ?? file.autoRecordLimit,
                    autoRecordDisk: autoRecordDisk ?? file.autoRecordDisk,
                    latencyHistograms: latencyHistograms ?? file.latencyHistograms)
    }

    /// With the defaults filled in and every value checked (a usage error in one line).
    /// `otherSources`: VMs come from elsewhere too (`--libvirt`), so no QMP pattern is needed.
    public func resolved(otherSources: Bool = false) throws -> WatchOptions {
        let qmp = self.qmp ?? []
        let libvirt = self.libvirt ?? []
        let readOnly = libvirtReadOnly ?? false, passthrough = libvirtPassthrough ?? false
        guard !qmp.isEmpty || !libvirt.isEmpty || otherSources else { throw WatchError.noMonitors }
        if libvirt.isEmpty, readOnly || passthrough {
            throw WatchError.libvirtFlagWithoutLibvirt(readOnly ? "--libvirt-read-only" : "--libvirt-passthrough")
        }
        if readOnly && passthrough { throw WatchError.passthroughReadOnly }
        let interval = self.interval ?? 15
        guard interval.isFinite, interval >= 0.1, interval <= 3600 else { throw WatchError.badInterval(String(interval)) }
        let listen = try ListenAddress(parsing: self.listen ?? "127.0.0.1:9177")
        let discovery = try QMPSocketDiscovery(patterns: qmp)
        var autoRecord: AutoRecordSettings?
        if let dir = self.autoRecord {
            guard !dir.isEmpty else { throw WatchError.badAutoRecord(path: dir, reason: "empty path") }
            // Absolute: the event log and the captures name it, and `explain DIR/…` must work from anywhere.
            let absolute = dir.hasPrefix("/") ? dir : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(dir)
            var a = AutoRecordSettings(directory: (absolute as NSString).standardizingPath)
            if let n = autoRecordLimit {
                guard (1...64).contains(n) else { throw WatchError.badAutoRecordSetting("--auto-record-limit \(n): want 1-64 captures at once") }
                a.maxConcurrent = n
            }
            if let b = autoRecordDisk {
                guard b >= 64 << 20 else { throw WatchError.badAutoRecordSetting("--auto-record-disk: \(b) bytes is less than the least it can be, 64M (a capture's trace alone is up to \(a.traceBytes >> 20) MiB)") }
                a.maxDiskBytes = Int64(b)
                a.traceBytes = min(a.traceBytes, b / 4)
            }
            autoRecord = a
        } else if autoRecordLimit != nil || autoRecordDisk != nil {
            throw WatchError.badAutoRecordSetting("\(autoRecordLimit != nil ? "--auto-record-limit" : "--auto-record-disk") goes with --auto-record DIR")
        }
        return WatchOptions(qmp: qmp, discovery: discovery, listen: listen, intervalSeconds: interval, events: events,
                            hostKernel: hostKernel ?? false, blockTracepoint: blockTracepoint ?? true, drops: drops ?? false,
                            libvirt: libvirt, libvirtReadOnly: readOnly, libvirtPassthrough: passthrough, autoRecord: autoRecord,
                            latencyHistograms: latencyHistograms ?? false)
    }
}

/// The settings `watch` runs with: every value present and checked.
public struct WatchOptions: Sendable {
    public var qmp: [String]
    public var discovery: QMPSocketDiscovery
    public var listen: ListenAddress
    public var intervalSeconds: Double
    public var events: String?
    public var hostKernel: Bool
    public var blockTracepoint: Bool
    public var drops: Bool
    /// Taken at start only (a reload says a change waits for a restart).
    public var libvirt: [String] = []
    public var libvirtReadOnly = false
    public var libvirtPassthrough = false
    /// `--auto-record`: taken at start only, like the libvirt settings.
    public var autoRecord: AutoRecordSettings?
    /// `--latency-histograms`: taken at start only.
    public var latencyHistograms = false

    /// The workers' settings for this interval (a command waits at most the interval, 1-5 s).
    public var settings: WatchSettings {
        var s = WatchSettings()
        s.intervalSeconds = intervalSeconds
        s.commandTimeoutSeconds = min(5, max(1, intervalSeconds))
        s.latencyHistograms = latencyHistograms
        return s
    }
}
