import ArgumentParser
import Dispatch
import Foundation
import KVMScope
import KVMScopeNBD

struct NbdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nbd",
        abstract: "A fault-injecting NBD server that QEMU, qemu-io, qemu-img and the Linux NBD client use.",
        discussion: """
        Exit status: 0 this help (`kvmscope nbd` without a subcommand), 2 usage error (an unknown subcommand); `kvmscope nbd serve --help` gives serve's.
        """,
        subcommands: [NbdServeCommand.self, NbdControlCommand.self]
    )
}

struct NbdServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a raw image, or another NBD server's export, over NBD with blkdebug rules in front of it.",
        discussion: """
        Fixed-newstyle NBD (NBD_OPT_GO/INFO/EXPORT_NAME/LIST/ABORT, structured replies, extended headers with 64-bit lengths, base:allocation block status); READ, WRITE (FUA), FLUSH, TRIM, WRITE_ZEROES, BLOCK_STATUS, DISC. Flushes and FUA writes fsync the image. Injected errnos the NBD wire cannot carry are sent as EIO (EDQUOT/EFBIG as ENOSPC). Send SIGHUP to re-read the rules (the state machine restarts at state 1; rules added with kvmscope nbd control add are kept); SIGINT/SIGTERM stop the server.

        The format is probed as qemu-nbd probes it when -f is not given; images that are not raw are refused (serve them with qemu-nbd -f FORMAT), -f raw serves any file's bytes. QEMU's image locks are taken: an image a running guest or qemu-io writes is not served, and while kvmscope serves it they cannot open it for writing; --read-only -U serves it anyway.

        Rules (--rules FILE; kvmscope blkdebug check --for-kvmscope FILE checks one, docs/faults.md has every key): QEMU's blkdebug sections [inject-error] and [set-state] (with kvmscope's keys probability, delay, after, up, down), and kvmscope's own sections, which QEMU's blkdebug refuses: [error-rate] (errors at a seeded rate, while a file exists: nbdkit's error filter), [delay] (per operation: nbdkit's delay filter), [rate] (bandwidth, overall and per connection: nbdkit's rate filter), [stall] (a reply held until a file is gone or a timeout), [bad-blocks] (unreadable sectors until written: dm-dust, null_blk), [bit-flips] (nbdkit's evil filter), [flakey] (up and down intervals: dm-flakey). kvmscope nbd control changes them while the server runs.
          $ cat slow-writes.cfg
          [delay]
          read = "20ms"

          [error-rate]
          write-rate = "50%"
          errno = "ENOSPC"
          seed = "7"
          $ kvmscope nbd serve disk.img -f raw --rules slow-writes.cfg
          kvmscope: serving disk.img (64 MiB) with 2 rules from slow-writes.cfg
          nbd://127.0.0.1:10809
          kvmscope: client 127.0.0.1:41444 connected
          kvmscope: slow-writes.cfg:1 (delay) delayed read 0+4096 by 20.000 ms from 127.0.0.1:41444
          kvmscope: slow-writes.cfg:4 (error-rate) failed write 0+4096 with ENOSPC from 127.0.0.1:41444
          kvmscope: slow-writes.cfg:4 (error-rate) failed write 4096+4096 with ENOSPC from 127.0.0.1:41444
          $ qemu-io -f raw nbd://127.0.0.1:10809 -c 'read 0 4k' -c 'write 0 4k' -c 'write 4k 4k'
          read 4096/4096 bytes at offset 0
          4 KiB, 1 ops; 00.02 sec (187.169 KiB/sec and 46.7923 ops/sec)
          write failed: No space left on device
          write failed: No space left on device
        Examples:
          $ kvmscope nbd serve disk.img --rules write-eio.cfg --log faults.jsonl
          kvmscope: serving disk.img (64 MiB) with 1 rule from write-eio.cfg
          nbd://127.0.0.1:10809
          $ qemu-io -f raw nbd://127.0.0.1:10809 -c 'write 1M 4k'
          write failed: Input/output error
          $ kvmscope nbd serve disk.img --socket /tmp/nbd.sock
          (QEMU: -drive file=nbd:unix:/tmp/nbd.sock,format=raw)

        TLS (NBD_OPT_STARTTLS): --tls-certificates DIR (QEMU's and nbdkit's layout: server-cert.pem, server-key.pem, ca-cert.pem for --tls-verify-peer) or --tls-psk FILE (IDENTITY:HEXKEY lines, as psktool writes); --tls require (the default with credentials: clients in the clear are refused, the URI is nbds://) or allow.
          $ kvmscope nbd serve disk.img -f raw --tls-certificates /etc/pki/qemu
          kvmscope: serving disk.img (64 MiB) without rules; TLS required (X.509 certificate /etc/pki/qemu/server-cert.pem)
          nbds://127.0.0.1:10809
          $ qemu-io --object tls-creds-x509,id=tls0,endpoint=client,dir=/etc/pki/qemu --image-opts driver=nbd,host=127.0.0.1,port=10809,tls-creds=tls0 -c 'read 0 4k'

        Proxy mode: --upstream nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH (through TLS: nbds://… or nbds+unix://… with ?tls-certificates=DIR, QEMU's layout: ca-cert.pem, client-cert.pem, client-key.pem) forwards every request to that NBD server (qemu-nbd serving a qcow2, nbdkit, remote storage) with the rules applied on the way; the export has the upstream's size, read-only flag, block sizes, and only the commands the upstream offers. Flushes are forwarded and answered after the upstream's reply. When the upstream goes away, requests fail with EIO (one log line says why); nothing waits for ever. With --upstream-reconnect SECONDS (QEMU's reconnect-delay) kvmscope connects again in the background, and requests wait up to SECONDS for the new connection and are resent on it; an upstream that comes back with another size or other flags is not used.
          $ qemu-nbd -f qcow2 -k /tmp/q.sock disk.qcow2 &
          $ kvmscope nbd serve --upstream 'nbd+unix:///?socket=/tmp/q.sock' --rules write-eio.cfg
        Exit status: 0 stopped by a signal, 1 failure (rules, image, address), 2 usage error.
        """
    )

    @Argument(help: "Raw disk image to serve (or --upstream).")
    var image: String?

    @Option(help: "Serve this NBD server's export instead of an image: nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH (nbds://, nbds+unix:// for TLS).")
    var upstream: String?

    @Option(help: "Seconds an upstream may take to answer a request (no byte received) before it is given up on.")
    var upstreamTimeout: Double = 30

    @Option(help: ArgumentHelp("Reconnect to a lost upstream; requests wait up to this many seconds for it and are resent (0: fail at once, the default, as QEMU's reconnect-delay).", valueName: "seconds"))
    var upstreamReconnect: Double = 0

    @Option(help: "blkdebug rules file (kvmscope blkdebug check explains problems).")
    var rules: String?

    @Option(help: "Address to listen on (default 127.0.0.1; other addresses get a warning: NBD has no authentication).")
    var listen: String?

    @Option(help: "TCP port (0: any free port; the URI printed on stdout has the real one).")
    var port: Int?

    @Option(help: "Also (or, without --listen/--port, only) listen on this UNIX socket.")
    var socket: String?

    @Option(help: "Export name (clients may also ask for the default export \"\").")
    var exportName: String = ""

    @Option(name: .customLong("export"), help: ArgumentHelp("Also serve IMAGE as the export NAME (repeat for several; same rules, format and locking as the main image). The main image stays the default export.", valueName: "NAME=IMAGE"))
    var moreExports: [String] = []

    @Flag(help: "Refuse writes, trims and write-zeroes (EPERM) and announce a read-only export.")
    var readOnly = false

    @Option(name: [.customShort("f"), .long], help: "Image format: raw only. Without it the format is probed as qemu-nbd probes it, and any other format is refused; -f raw serves any file's bytes as a raw disk.")
    var format: String?

    @Flag(name: [.customShort("U"), .customLong("force-share")], help: "With --read-only: serve the image even while another process (a guest, qemu-io) writes it, as qemu-io -U (qemu-nbd has no such option).")
    var forceShare = false

    @Option(help: "Append one JSON line per injected fault to this file (and one per change of rules that let waiting replies go or shortened their wait).")
    var log: String?

    @Option(help: "Seed for the rules' probability key.")
    var seed: UInt64 = 1

    @Option(help: "Event-loop threads (default: one per core).")
    var threads: Int?

    @Option(help: "Threads for flushes and FUA requests (default: one per event loop, at least 2; 0: on the event loops, where a slow fsync stalls the loop's other clients).")
    var ioThreads: Int?

    @Flag(help: "Do not print connections and injected faults on stderr.")
    var quiet = false

    @Option(help: "Clients connected at once; more are closed at once, with a log line.")
    var maxConnections: Int = 128

    @Option(help: "Requests of one client in flight (unanswered) at once.")
    var maxRequestsInFlight: Int = 128

    @Option(help: "MiB one client's read data, write payloads and queued replies may hold (at least 33).")
    var maxConnectionBuffer: Int = 64

    @Option(help: "MiB all clients together may hold.")
    var maxTotalBuffer: Int = 256

    @Option(help: ArgumentHelp("TLS (NBD_OPT_STARTTLS): require (clients must use it; the URI printed is nbds://) or allow (clients choose). Default: require when credentials are given.", valueName: "require|allow"))
    var tls: String?

    @Option(help: ArgumentHelp("X.509 credentials in QEMU's and nbdkit's layout: DIR/server-cert.pem, DIR/server-key.pem (and DIR/ca-cert.pem for --tls-verify-peer).", valueName: "DIR"))
    var tlsCertificates: String?

    @Option(help: ArgumentHelp("TLS-PSK keys, one IDENTITY:HEXKEY per line (psktool's format; QEMU's keys.psk, nbdkit --tls-psk). TLS 1.2.", valueName: "FILE"))
    var tlsPsk: String?

    @Flag(help: "With --tls-certificates: clients must present a certificate signed by DIR/ca-cert.pem (QEMU's verify-peer=on).")
    var tlsVerifyPeer = false

    @Option(help: ArgumentHelp("A UNIX socket (only its owner may connect) taking rule changes while the server runs: kvmscope nbd control PATH list|load FILE|add FILE|remove FILE:LINE|clear|reload.", valueName: "PATH"))
    var control: String?

    @Option(help: "Seconds from connect to the end of option negotiation.")
    var handshakeTimeout: Double = 10

    @Option(help: "Disconnect a client that reads none of its replies for this many seconds.")
    var writeTimeout: Double = 60

    @Option(help: "Seconds a WRITE's payload may take to arrive after its header.")
    var requestTimeout: Double = 60

    @Option(help: "Disconnect a client idle for this many seconds (0: never; QEMU turns a dropped connection into guest I/O errors).")
    var idleTimeout: Double = 0

    func validate() throws {
        switch (image, upstream) {
        case (nil, nil): throw ValidationError("give an image to serve, or --upstream URI")
        case (.some, .some): throw ValidationError("give an image or --upstream, not both")
        default: break
        }
        if upstream != nil {
            if format != nil { throw ValidationError("-f applies to an image file; an upstream serves its own format (qemu-nbd -f FORMAT)") }
            if forceShare { throw ValidationError("-U applies to an image file; the upstream server does its own locking") }
            // Every upstream request waits on the network: on an event loop it would stall the loop's other clients.
            if ioThreads == 0 { throw ValidationError("--io-threads 0 cannot be used with --upstream (every request waits on the upstream)") }
            if !(upstreamTimeout > 0 && upstreamTimeout <= 86_400) { throw ValidationError("--upstream-timeout must be a number of seconds above 0 and at most 86400") }
            if !(upstreamReconnect >= 0 && upstreamReconnect <= 86_400) { throw ValidationError("--upstream-reconnect must be a number of seconds from 0 to 86400") }
        }
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0...65535") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let problem = RawImageOpener.validate(format: format, readOnly: readOnly, forceShare: forceShare, tool: .nbdServe) {
            throw ValidationError(problem)
        }
        if let ioThreads, !(0...1024).contains(ioThreads) { throw ValidationError("--io-threads must be 0...1024") }
        for (name, value) in [("--handshake-timeout", handshakeTimeout), ("--write-timeout", writeTimeout),
                              ("--request-timeout", requestTimeout)] where !(value > 0 && value <= 86_400) {
            throw ValidationError("\(name) must be a number of seconds above 0 and at most 86400")
        }
        if !(idleTimeout >= 0 && idleTimeout <= 86_400 * 365) { throw ValidationError("--idle-timeout must be 0 (never) or a number of seconds") }
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be 1...1000000") }
        guard (1...1_000_000).contains(maxRequestsInFlight) else { throw ValidationError("--max-requests-in-flight must be 1...1000000") }
        guard (1...(1 << 20)).contains(maxConnectionBuffer), (1...(1 << 20)).contains(maxTotalBuffer) else {
            throw ValidationError("--max-connection-buffer and --max-total-buffer are MiB, 1...1048576")
        }
        if maxConnectionBuffer < 33 { throw ValidationError("--max-connection-buffer must hold one 32 MiB request and its header: at least 33 (MiB)") }
        if maxTotalBuffer < maxConnectionBuffer { throw ValidationError("--max-total-buffer must be at least --max-connection-buffer") }
        if let problem = limits.problem { throw ValidationError(problem) }
        if !moreExports.isEmpty {
            if upstream != nil { throw ValidationError("--export NAME=IMAGE serves image files: it cannot be combined with --upstream") }
            var names: Set<String> = [exportName]
            for e in moreExports {
                guard let eq = e.firstIndex(of: "="), eq != e.startIndex, e.index(after: eq) != e.endIndex else {
                    throw ValidationError("--export takes NAME=IMAGE, not '\(e)'")
                }
                let name = String(e[..<eq])
                guard name.utf8.count <= 4096 else { throw ValidationError("--export: an export name is at most 4096 bytes (proto.md)") }
                guard names.insert(name).inserted else {
                    throw ValidationError("--export \(name): two exports with that name (the main image's is '\(exportName)', --export-name)")
                }
            }
        }
        if let tls, NBDTLS.Mode(rawValue: tls) == nil { throw ValidationError("--tls must be require or allow, not '\(tls)'") }
        if tlsCertificates != nil && tlsPsk != nil { throw ValidationError("give --tls-certificates or --tls-psk, not both") }
        if tls != nil && tlsCertificates == nil && tlsPsk == nil {
            throw ValidationError("--tls needs credentials: --tls-certificates DIR (X.509) or --tls-psk FILE")
        }
        if tlsVerifyPeer && tlsCertificates == nil { throw ValidationError("--tls-verify-peer checks X.509 client certificates: it needs --tls-certificates DIR") }
    }

    /// The TLS credentials, read before anything listens (a bad file is one line and exit 1).
    func loadTLS() throws -> NBDTLS? {
        let mode = tls.flatMap(NBDTLS.Mode.init(rawValue:)) ?? .require
        if let dir = tlsCertificates { return try NBDTLS.x509(directory: dir, verifyPeer: tlsVerifyPeer, mode: mode) }
        if let file = tlsPsk { return try NBDTLS.psk(file: file, mode: mode) }
        return nil
    }

    var limits: NBDServerLimits {
        let amount = NBDServerLimits.duration(seconds:)
        return NBDServerLimits(maxConnections: maxConnections, maxRequestsInFlight: maxRequestsInFlight,
                               maxConnectionBytes: maxConnectionBuffer << 20, maxTotalBytes: maxTotalBuffer << 20,
                               handshakeTimeout: amount(handshakeTimeout), writeTimeout: amount(writeTimeout),
                               requestTimeout: amount(requestTimeout), idleTimeout: idleTimeout > 0 ? amount(idleTimeout) : nil)
    }

    func run() throws {
        let file: any LowerDisk
        let served: String
        var upstreamDisk: NBDUpstreamDisk?
        if let upstream {
            let uri = try NBDURI.parse(upstream)
            let log: @Sendable (String) -> Void = { CLIOutput.error($0) }
            let reconnect = upstreamReconnect
            let afterDeath = reconnect > 0 ? "reconnecting; requests wait up to \(String(format: "%g", reconnect)) s for it"
                : "every request to it now fails with EIO"
            let timeout = upstreamTimeout
            let client = try NBDClient(uri: uri, timeout: timeout, afterDeath: afterDeath, log: log)
            let policy = reconnect > 0
                ? NBDUpstreamReconnector.Policy(delay: reconnect, connect: { try NBDClient(uri: uri, timeout: timeout, afterDeath: afterDeath, log: log) },
                                                log: log)
                : nil
            let disk = NBDUpstreamDisk(client: client, readOnly: readOnly, reconnect: policy)
            upstreamDisk = disk
            file = disk
            served = uri.text
        } else {
            // Probes the format and takes QEMU's image locks (an image kvmscope cannot lock is not
            // served); they last as long as `file`, which the backend keeps until the process exits.
            let opened = try RawImageOpener.open(path: image!, format: format, readOnly: readOnly, forceShare: forceShare, tool: .nbdServe)
            if let warning = opened.probedRawWarning { FileHandle.standardError.write(Data(warning.utf8)) }
            file = opened.file
            served = image!
        }
        let config = try rules.map { try RulesLoading.load($0, imageSize: file.size) }
        let backend = FaultInjectingBackend(image: file, rules: config, seed: seed)
        // More exports: each image opened, probed and locked as the main one, with its own rule
        // engine (rules are checked against each image's size; the state machines are separate).
        var exports = [NBDExport(name: exportName, description: "kvmscope: \(served)", backend: backend)]
        var servedExports = [NbdServedRules.Served(backend: backend, size: file.size, rules: config)]
        for e in moreExports {
            let eq = e.firstIndex(of: "=")!
            let name = String(e[..<eq]), path = String(e[e.index(after: eq)...])
            let opened = try RawImageOpener.open(path: path, format: format, readOnly: readOnly, forceShare: forceShare, tool: .nbdServe)
            if let warning = opened.probedRawWarning { FileHandle.standardError.write(Data(warning.utf8)) }
            let rulesForIt = try rules.map { try RulesLoading.load($0, imageSize: opened.file.size) }
            let b = FaultInjectingBackend(image: opened.file, rules: rulesForIt, seed: seed)
            servedExports.append(NbdServedRules.Served(backend: b, size: opened.file.size, rules: rulesForIt))
            exports.append(NBDExport(name: name, description: "kvmscope: \(path)", backend: b))
            CLIOutput.error("export '\(name)': \(path) (\(QemuIOFormat.size(Double(opened.file.size))))")
        }
        let writer = try log.map { try FaultLogWriter(path: $0) }
        let observer = ServeObserver(writer: writer, quiet: quiet)
        if let config { observer.warnUnmappable(config) }

        let tlsCredentials = try loadTLS()
        var addresses: [NBDServer.Listen] = []
        if socket == nil || listen != nil || port != nil {
            let host = listen ?? "127.0.0.1"
            // Only a PSK or a checked client certificate, required, tells who connects.
            let authenticated = tlsCredentials?.mode == .require && (tlsPsk != nil || tlsVerifyPeer)
            if !Self.isLoopback(host) && !authenticated {
                let why = tlsCredentials == nil ? "NBD has no authentication"
                    : "TLS without --tls require and a PSK or --tls-verify-peer does not check who connects"
                CLIOutput.warning("listening on \(host): anyone who can reach it can read and write \(served) (\(why))")
            }
            addresses.append(.tcp(host: host, port: port ?? 10809))
        }
        if let socket { addresses.append(.unix(path: socket)) }

        let servedRules = NbdServedRules(served: servedExports, file: rules, seed: seed, observer: observer)
        let controlSocket = try control.map { path in try NBDControlSocket(path: path) { servedRules.handle($0) } }
        let server = NBDServer(exports: exports, listen: addresses, observer: observer, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
                               limits: limits, ioThreads: ioThreads, tls: tlsCredentials)
        servedRules.onChange = { server.rulesChanged() }
        let uris = try server.start()
        // The signals are taken before the URIs are printed: a client (or a script) that
        // starts the server, reads its URI and stops it must find SIGTERM handled.
        let signals = DispatchQueue(label: "kvmscope.signals")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: signals)
            // Requests waiting for a reconnection are let go first (they fail with EIO), or the
            // I/O threads they hold would keep the shutdown waiting for the whole delay.
            let disk = upstreamDisk
            s.setEventHandler { disk?.stopReconnecting(); server.shutdown() }
            s.resume()
            sources.append(s)
        }
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: signals)
        hup.setEventHandler { servedRules.reloadOnSignal() }
        hup.resume()
        sources.append(hup)
        let ruleText = config.map { c -> String in
            let n = c.injectErrors.count + c.setStates.count + c.kvmscope.count
            return " with \(n) rule\(n == 1 ? "" : "s") from \(rules!)"
        } ?? " without rules"
        let tlsText = tlsCredentials.map { "; TLS \($0.mode == .require ? "required" : "allowed") (\($0.summary))" } ?? ""
        CLIOutput.error("serving \(served) (\(QemuIOFormat.size(Double(file.size)))\(upstreamDisk.map { " " + Self.describe($0.client.export) } ?? ""))\(ruleText)\(tlsText)")
        CLIOutput.write(uris.joined(separator: "\n") + "\n")
        if let controlSocket {
            controlSocket.start()
            CLIOutput.error("control socket \(controlSocket.path) (kvmscope nbd control \(controlSocket.path) list)")
        }

        server.wait()
        server.shutdown()
        controlSocket?.stop()
        upstreamDisk?.close()
        CLIOutput.error("stopped; \(observer.faultCount) fault\(observer.faultCount == 1 ? "" : "s") injected")
        _ = sources
    }

    /// What the upstream offers, for the start-up line: "read-only", the commands, block sizes.
    static func describe(_ e: NBDClient.Export) -> String {
        typealias F = NBD.TransmissionFlag
        var parts: [String] = []
        if e.has(F.readOnly) { parts.append("read-only") }
        for (flag, name) in [(F.sendFlush, "flush"), (F.sendFUA, "fua"), (F.sendTrim, "trim"), (F.sendWriteZeroes, "write-zeroes")]
        where e.has(flag) { parts.append(name) }
        if e.allocationContext != nil { parts.append("base:allocation") }
        if e.extendedHeaders { parts.append("extended-headers") }
        parts.append("blocks \(e.minimumBlockSize)/\(e.preferredBlockSize)/\(e.maximumPayload)")
        return "upstream: " + parts.joined(separator: " ")
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.") || host == "[::1]"
    }
}

/// Prints what the server does on stderr and writes the JSON fault log.
final class ServeObserver: NBDServerObserver, @unchecked Sendable {
    private let writer: FaultLogWriter?
    private let quiet: Bool
    private let lock = NSLock()
    private var mappingsReported: Set<String> = []
    private(set) var faultCount = 0

    init(writer: FaultLogWriter?, quiet: Bool) {
        self.writer = writer
        self.quiet = quiet
    }

    func warnUnmappable(_ config: BlkdebugConfig) {
        for r in config.injectErrors where r.errno != 0 {
            let wire = NBD.WireError(hostErrno: r.errno)
            if wire.rawValue != UInt32(r.errno) { reportMapping(r, wire) }
        }
    }

    private func reportMapping(_ r: InjectErrorRule, _ wire: NBD.WireError) {
        let key = "\(r.location)/\(r.errno)"
        lock.lock()
        let fresh = mappingsReported.insert(key).inserted
        lock.unlock()
        guard fresh else { return }
        let name = ErrnoTable.standard.entry(number: Int64(r.errno))?.name ?? "errno \(r.errno)"
        CLIOutput.warning("\(r.location): errno \(r.errno) (\(name)) has no NBD error value; clients get \(wire.name) (NBD carries only EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN)")
    }

    /// A change of rules let held replies go or shortened their wait: one line on stderr (also
    /// with --quiet, as the change's own line) and a `rules-change` record in the --log file.
    func heldRepliesChanged(_ counts: NBDHeldRepliesChanged, by change: String, via: String) {
        guard !counts.isEmpty else { return }
        writer?.write(RulesChangeLogRecord(change: change, via: via, released: counts.released, shortened: counts.shortened))
        let replies = counts.released == 1 ? "reply" : "replies"
        CLIOutput.error("\(via): \(change): \(counts.released) waiting \(replies) released, \(counts.shortened) shortened")
    }

    func clientConnected(_ client: String) {
        if !quiet { CLIOutput.error("client \(client) connected") }
    }

    func clientDisconnected(_ client: String, _ s: NBDConnectionSummary) {
        guard !quiet else { return }
        func plural(_ n: Int, _ word: String, _ words: String? = nil) -> String { "\(n) \(n == 1 ? word : words ?? word + "s")" }
        var line = "client \(client) disconnected after \(String(format: "%.1f", s.connectedSeconds)) s"
        let transport = [s.tls, s.extendedHeaders ? "extended headers" : nil].compactMap { $0 }
        if !transport.isEmpty { line += " (\(transport.joined(separator: ", ")))" }
        if let export = s.export { line += " from export '\(export)'" }
        if s.reachedTransmission {
            line += ": \(plural(s.requests, "request")) (\(plural(s.reads, "read")) \(QemuIOFormat.size(Double(s.bytesRead))), "
                + "\(plural(s.writes, "write")) \(QemuIOFormat.size(Double(s.bytesWritten))), "
                + (s.blockStatusQueries > 0 ? "\(plural(s.blockStatusQueries, "block status query", "block status queries")), " : "")
                + "\(plural(s.errorReplies, "error reply", "error replies")))"
        } else {
            line += " without choosing an export"
        }
        if s.unsentReplies > 0 {
            line += "; \(plural(s.unsentReplies, "reply", "replies")) not sent (held back or being written when the connection closed)"
        }
        if let why = s.closedBecause { line += "; closed by the server: \(why)" }
        if let cut = s.truncated { line += "; \(cut)" }
        CLIOutput.error(line)
    }

    func connectionRefused(_ client: String, limit: Int, alsoRefused: Int) {
        let more = alsoRefused > 0 ? " (and \(alsoRefused) more in the last second)" : ""
        CLIOutput.warning("refused connection from \(client)\(more): \(limit) clients connected (--max-connections \(limit))")
    }

    func acceptFailed(_ error: String, pauseSeconds: Double, failures: Int) {
        CLIOutput.warning("accept failed: \(error); pausing new connections for \(String(format: "%.2f", pauseSeconds)) s (\(failures) accept failure\(failures == 1 ? "" : "s") so far)")
    }

    func protocolViolation(_ client: String, _ message: String) {
        CLIOutput.warning("client \(client): \(message); connection closed")
    }

    /// Every wait in one format, milliseconds to the microsecond ("20.000 ms", "3.906 ms"): a
    /// Double's own description gave "20.0", "3.90625" and "1e+12" for the same kind of number.
    static func milliseconds(_ nanoseconds: UInt64) -> String {
        String(format: "%.3f ms", Double(nanoseconds) / 1e6)
    }

    func faultInjected(_ fault: InjectedFault, client: String, command: String, wireError: NBD.WireError?) {
        lock.lock(); faultCount += 1; lock.unlock()
        writer?.write(FaultLogRecord(fault: fault, client: client, command: command, nbdError: wireError?.name))
        if let wireError, wireError.rawValue != UInt32(fault.errno) { reportMapping(fault.rule, wireError) }
        guard !quiet else { return }
        let what: String
        switch fault.effect {
        case .error, .delay:
            what = fault.errno == 0
                ? "delayed \(command) \(fault.offset)+\(fault.length) by \(Self.milliseconds(fault.delayNanoseconds))"
                : "failed \(command) \(fault.offset)+\(fault.length) with \(ErrnoTable.standard.entry(number: Int64(fault.errno))?.name ?? "errno \(fault.errno)")"
        case .stall: what = "stalled the reply to \(command) \(fault.offset)+\(fault.length)"
        case .dropWrite: what = "dropped \(command) \(fault.offset)+\(fault.length) (acknowledged, not written)"
        case .bitFlips: what = "flipped \(fault.bitsFlipped) bit\(fault.bitsFlipped == 1 ? "" : "s") in \(command) \(fault.offset)+\(fault.length)"
        }
        let source = fault.kind == .injectError ? fault.rule.event.rawValue : fault.kind.rawValue
        CLIOutput.error("\(fault.rule.location) (\(source)) \(what) from \(client)")
    }
}
