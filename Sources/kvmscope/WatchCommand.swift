import ArgumentParser
import Foundation
import KVMScope
import KVMScopeWatch
import KVMScopeLibvirt

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch every VM on this host: Prometheus metrics on /metrics and a JSON Lines event log.",
        discussion: """
        Finds QEMU monitors by path or glob (rescanned every interval), names each VM by QEMU's \
        -name (query-name), else by its socket's file name, and its disks by their QEMU drive or \
        device id. Per VM it reads QMP events as they come (BLOCK_IO_ERROR, STOP, RESUME, \
        SHUTDOWN, RESET, DEVICE_DELETED, BLOCK_JOB_ERROR…) and polls query-status, query-block and \
        query-blockstats every interval; a scrape serves the last poll, never asks QEMU. Each VM \
        has its own connection and thread: one that hangs, sends garbage, exits or whose socket \
        comes and goes delays only itself (kvmscope_watch_qmp_errors_total counts why). It only \
        reads (it never pauses, resumes or changes a VM) unless --auto-record or \
        --latency-histograms says otherwise. QEMU serves one client per monitor, so \
        give each VM a monitor of its own for kvmscope (not libvirt's).
        --libvirt URI watches every running domain of that libvirt instead, through libvirt: \
        domains and their state and read/write/flush counters from libvirt's statistics (disks \
        named by their target, vda), kept current by libvirt's lifecycle events; BLOCK_IO_ERROR \
        and the other QMP events with QEMU's errno text from libvirt's QMP event subscription, \
        which sends no command and does not taint the domain. libvirt has no failed or invalid \
        counts: those series are absent for its domains unless --libvirt-passthrough (which \
        taints them). When libvirtd restarts, watch keeps serving and reconnects.


        Examples:
          $ kvmscope watch --qmp '/run/kvmscope/*.qmp'                     # every VM with a socket there
          $ kvmscope watch --qmp /run/vm1.qmp --qmp /run/vm2.qmp --events -   # events as JSON Lines on stdout
          $ kvmscope watch --qmp '/run/qemu/*/qmp.sock' --listen 0.0.0.0:9177 --interval 5
          $ kvmscope watch --qmp '/run/kvmscope/*.qmp' --events /var/log/kvmscope/events.jsonl
          $ kvmscope watch --libvirt qemu:///system --events -                # every libvirt domain
          $ kvmscope watch --qmp '/run/kvmscope/*.qmp' --auto-record /var/lib/kvmscope/captures
          $ curl -s 127.0.0.1:9177/metrics | grep kvmscope_vm_paused
        A VM's QEMU needs a monitor like:
          -chardev socket,id=kvmscope,path=/run/kvmscope/vm1.qmp,server=on,wait=off -mon chardev=kvmscope,mode=control
        Metrics (docs/watch.md says what each means and what to do):
          kvmscope_block_io_errors_total{domain,device,node,operation,action,errno}
          kvmscope_vm_paused{domain,reason="io-error"}  kvmscope_vm_running{domain}  kvmscope_vm_qmp_up{domain}
          kvmscope_block_{operations,bytes,operation_seconds,failed_operations,invalid_operations}_total{domain,device,operation}
          kvmscope_host_block_errors_total{device,kind} (--host-kernel)  kvmscope_net_drops_total{reason,location} (--drops)
        --host-kernel counts the host kernel's block/SCSI/NVMe/multipath/filesystem errors from \
        /dev/kmsg (root or CAP_SYSLOG) and, as root, every failed request from the \
        block:block_rq_error tracepoint (the log is rate-limited); only messages from when watch \
        starts are counted, not what the ring holds already. --drops counts packet drops as \
        `kvmscope drops` sees them (root: tracefs; or CAP_NET_ADMIN: NET_DM).
        --auto-record DIR changes a VM while it records it: on its first BLOCK_IO_ERROR a capture \
        starts, as `kvmscope record --flight-recorder 64M` would make it, over watch's own \
        connection to the VM (QEMU serves one client per monitor); it turns on the trace events \
        kvmscope reads and points QEMU's log at a file, and turns them off and back when it ends \
        (on the next failure and 30 s after, after 1 h, at the --auto-record-disk limit, or when \
        watch stops). The error that started it is before it: it is in the event log, the next \
        one is in the capture. A capture per VM at a time, a new one an hour after the last \
        ended at the soonest. A --libvirt domain is recorded through libvirt as `record --domain` \
        does (libvirt marks it tainted, custom-monitor). The event log says each capture's start \
        and end (type capture).
        --latency-histograms turns on QEMU's own latency histograms (block-latency-histogram-set, \
        buckets 100 µs to 10 s) on each disk of a --qmp VM that has none, and turns them off \
        when watch stops; histograms another tool set are read as they are. \
        --config FILE reads the same settings from a TOML file (keys: qmp, listen, interval, \
        events, host-kernel, block-tracepoint, drops, libvirt, libvirt-read-only, \
        libvirt-passthrough, auto-record, auto-record-limit, auto-record-disk, latency-histograms; \
        options given on the command line win); \
        SIGHUP reads it again (systemctl reload): QMP patterns, interval and the host-kernel, \
        block-tracepoint and drops switches change at once, VMs still found keep their \
        connections; listen, events, the libvirt, auto-record and latency-histograms keys wait \
        for a restart (said in one line); a bad file changes nothing and is counted in \
        kvmscope_watch_config_reloads_total{result="failed"}.
        SIGTERM or SIGINT stops it cleanly. Exit status: 0 stopped by a signal, 1 a host-wide \
        source that cannot be opened (e.g. /dev/kmsg without CAP_SYSLOG), 2 usage error \
        (bad --listen, port in use, bad --interval, unwritable --events, bad --config); an \
        unreachable libvirt is not one: watch serves the rest and keeps trying.
        """
    )

    @Option(name: .long, help: ArgumentHelp("A QMP monitor: a socket path, a glob of socket paths (quote it), unix:PATH or tcp:HOST:PORT. Repeatable.", valueName: "PATH|GLOB"))
    var qmp: [String] = []

    @Option(name: .long, help: ArgumentHelp("Watch every running domain of this libvirt (qemu:///system for the system's): domains listed and polled through libvirt's statistics, their QMP events through libvirt's event subscription; sends no monitor command and does not taint them. Repeatable.", valueName: "URI"))
    var libvirt: [String] = []

    @Flag(name: .customLong("libvirt-read-only"), help: "Open the --libvirt connections read-only (libvirt's read-only socket, which any user may use): state and counters, but libvirt gives no QMP events there, so no BLOCK_IO_ERROR.")
    var libvirtReadOnly = false

    @Flag(name: .customLong("libvirt-passthrough"), help: "Also poll each libvirt domain's query-blockstats through libvirt's QMP passthrough, for the failed and invalid operation counts libvirt's statistics lack. Changes the domains: libvirt marks each tainted (custom-monitor) until it shuts down.")
    var libvirtPassthrough = false

    @Option(name: .long, help: ArgumentHelp("Where /metrics is served (default 127.0.0.1:9177, loopback: put a reverse proxy in front for TLS or auth).", valueName: "ADDR:PORT"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("Seconds between polls and rescans (0.1-3600, default 15).", valueName: "SECONDS"))
    var interval: String?

    @Option(name: .long, help: ArgumentHelp("Write every event as a JSON Line to FILE (appended), or - for standard output.", valueName: "FILE|-"))
    var events: String?

    @Flag(name: .customLong("host-kernel"), inversion: .prefixedNo,
          help: "Count the host kernel's storage errors (/dev/kmsg, and the block:block_rq_error tracepoint as root) in kvmscope_host_block_errors_total.")
    var hostKernel: Bool?

    @Flag(name: .customLong("block-tracepoint"), inversion: .prefixedNo,
          help: "With --host-kernel: also read block:block_rq_error, which sees every failed request the rate-limited log leaves out (default on; needs root).")
    var blockTracepoint: Bool?

    @Flag(name: .long, inversion: .prefixedNo, help: "Count the host's packet drops by reason and kernel function in kvmscope_net_drops_total (root or CAP_NET_ADMIN).")
    var drops: Bool?

    @Option(name: .customLong("auto-record"), help: ArgumentHelp("On a VM's first BLOCK_IO_ERROR, record it into a new directory here (`record --flight-recorder`: the last 64 MiB of trace until its next failure, 30 s after it, at most 1 h), so explain has the evidence. Turns trace events on in that VM while it records (and off after, as record does).", valueName: "DIR"))
    var autoRecord: String?

    @Option(name: .customLong("auto-record-limit"), help: ArgumentHelp("With --auto-record: captures recording at once (1-64, default 2).", valueName: "N"))
    var autoRecordLimit: Int?

    @Option(name: .customLong("auto-record-disk"), help: ArgumentHelp("With --auto-record: the most DIR may hold, earlier captures included (bytes, or with K, M, G, T: at least 64M; default 2G): at it, captures stop and no new one starts.", valueName: "SIZE"))
    var autoRecordDisk: SizeArgument?

    @Flag(name: .customLong("latency-histograms"), help: "Turn on QEMU's latency histograms of each disk that has none (block-latency-histogram-set: changes the VM while watched; off again when watch stops) and export them as kvmscope_block_operation_latency_seconds.")
    var latencyHistograms = false

    @Option(name: .long, help: ArgumentHelp("Read the settings from this TOML file too (options given here win); SIGHUP reads it again.", valueName: "FILE"))
    var config: String?

    func run() throws {
        // SIGHUP's default action ends the process: ignored from the start, so a reload sent
        // while watch is still starting is not a kill (the reload handler comes below).
        signal(SIGHUP, SIG_IGN)
        var interval: Double?
        if let text = self.interval {
            guard let seconds = Double(text), seconds.isFinite, seconds >= 0.1, seconds <= 3600 else { throw WatchError.badInterval(text) }
            interval = seconds
        }
        let commandLine = WatchConfig(qmp: qmp.isEmpty ? nil : qmp, listen: listen, interval: interval, events: events,
                                      hostKernel: hostKernel, blockTracepoint: blockTracepoint, drops: drops,
                                      libvirt: libvirt.isEmpty ? nil : libvirt, libvirtReadOnly: libvirtReadOnly ? true : nil,
                                      libvirtPassthrough: libvirtPassthrough ? true : nil,
                                      autoRecord: autoRecord, autoRecordLimit: autoRecordLimit, autoRecordDisk: autoRecordDisk?.bytes,
                                      latencyHistograms: latencyHistograms ? true : nil)
        let options = try WatchService.options(commandLine: commandLine, configPath: config)
        let libvirt = options.libvirt
        let log: WatchEventLog? = try options.events.map { $0 == "-" ? WatchEventLog() : try WatchEventLog(path: $0) }

        let connectors = try libvirt.map { try LibvirtURIConnector(uri: $0, readOnly: options.libvirtReadOnly) }
        let metrics = WatchMetrics()
        var autoRecorder: AutoRecorder?
        if let a = options.autoRecord {
            try AutoRecorder.prepare(a)
            let recorder = AutoRecorder(settings: a, metrics: metrics, events: log)
            let held = recorder.directoryBytes
            if held >= a.maxDiskBytes {
                CLIOutput.warning("watch: --auto-record \(a.directory) holds \(held >> 20) MiB, at or past its --auto-record-disk limit of \(a.maxDiskBytes >> 20) MiB: no capture starts until earlier ones are moved away")
            }
            autoRecorder = recorder
        }
        let watcher = Watcher(discoveries: [options.discovery], libvirt: connectors, libvirtPassthrough: options.libvirtPassthrough,
                              settings: options.settings, metrics: metrics, events: log, autoRecorder: autoRecorder,
                              notice: { CLIOutput.error($0) })
        let service = WatchService(options: options, configPath: config, commandLine: commandLine, watcher: watcher,
                                   otherSources: !libvirt.isEmpty, log: { CLIOutput.error($0) })
        service.events = log
        try service.startSources()
        let server: MetricsHTTPServer
        do { server = try MetricsHTTPServer.start(options.listen) { metrics.render() } } catch { service.stop(); throw error }
        watcher.start()
        var sourcesOn = ""
        if options.hostKernel { sourcesOn += ", host kernel log" + (options.blockTracepoint ? " and block_rq_error" : "") }
        if options.drops { sourcesOn += ", packet drops" }
        let libvirtSaid = libvirt.isEmpty ? "" : ", and the domains of libvirt at \(libvirt.joined(separator: ", "))"
        if let a = options.autoRecord { sourcesOn += ", recording a VM into \(a.directory) on its first I/O error" }
        CLIOutput.error("watch: /metrics on http://\(server.boundAddress)/metrics, \(watcher.watched.count) VM(s) found\(libvirtSaid), polling every \(options.intervalSeconds) s\(sourcesOn)")

        // SIGTERM (systemd stop) and SIGINT end it: workers leave their bounded waits, the server closes.
        // The drops and tracepoint sources install the tracefs StopSignals handler (it removes
        // their instances on a signal), which takes these signals from the dispatch sources:
        // its flag is checked too.
        let stopped = DispatchSemaphore(value: 0)
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { stopped.signal() }
            s.resume()
            sources.append(s)
        }
        // SIGHUP (systemctl reload) re-reads --config, one reload at a time.
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "kvmscope-watch-reload"))
        hup.setEventHandler { service.reload() }
        hup.resume()
        sources.append(hup)
        while stopped.wait(timeout: .now() + 0.5) == .timedOut, !StopSignals.requested {}
        service.stop()
        watcher.stop(waiting: 5)
        server.close()
        log?.close(waiting: 2)
        if let n = log?.droppedLines, n > 0 {
            CLIOutput.warning("watch: \(n) event log line(s) dropped (the log's reader fell behind by more than \(WatchEventLog.maxQueuedBytes >> 20) MiB, or writing failed)")
        }
        for s in sources { s.cancel() }
    }
}
