import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeWatch

/// OpenMetrics for scrapers that ask for it, checked by the strict parser of the Python
/// client library (python3-prometheus-client: prometheus_client.openmetrics.parser), which
/// refuses what the specification does not allow (a counter family named with `_total`, no
/// `# EOF`, histogram buckets without `+Inf`…). promtool reads the Prometheus format only.
@Suite struct OpenMetricsTests {
    /// The parser's complaint, or nil when it accepts the text. Its absence fails the test (CI
    /// installs Debian's python3-prometheus-client).
    static func parserProblems(_ text: String) throws -> String? {
        let check = """
        import sys
        try:
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
        except ImportError:
            print("python3-prometheus-client is not installed (apt-get install -y python3-prometheus-client)"); sys.exit(3)
        fams = list(text_string_to_metric_families(sys.stdin.read()))
        print(len(fams), "families", file=sys.stderr)
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", check]
        let input = Pipe(), output = Pipe()
        p.standardInput = input; p.standardOutput = output; p.standardError = FileHandle.nullDevice
        try p.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return p.terminationStatus == 0 ? nil : "exit \(p.terminationStatus): \(said)"
    }

    func sample() -> WatchMetrics {
        let m = WatchMetrics()
        m.addVM(1, domain: "web1")
        m.increment(WatchMetricFamilies.blockIOErrors, vm: 1, ["drive0", "#block123", "write", "stop", "EIO"])
        _ = m.setCounter(WatchMetricFamilies.blockOperationSeconds, vm: 1, ["drive0", "read"], to: 2_500_000_000, scale: 1e-9)
        m.setState(WatchMetricFamilies.vmPaused, vm: 1, ["io-error"])
        m.recordPoll(seconds: 0.004)
        m.host.add(WatchMetricFamilies.hostBlockErrors, ["sdb", "block-error"])
        m.host.set(WatchMetricFamilies.watchSourceUp, ["host-kernel-log"], to: 1)
        return m
    }

    @Test func theConversionIsOpenMetrics() throws {
        let om = String(decoding: OpenMetricsText.convert(sample().render()), as: UTF8.self)
        #expect(om.hasSuffix("\n# EOF\n"))
        #expect(om.contains("# TYPE kvmscope_block_io_errors counter\n"))
        #expect(om.contains("# HELP kvmscope_block_io_errors QEMU BLOCK_IO_ERROR events"))
        #expect(om.contains(##"kvmscope_block_io_errors_total{domain="web1",device="drive0",node="#block123",operation="write",action="stop",errno="EIO"} 1"##))
        #expect(om.contains("# TYPE kvmscope_watch_poll_duration_seconds histogram\n"))
        if let problems = try Self.parserProblems(om) { Issue.record("OpenMetrics parser: \(problems)\n\(om)") }
        // The parser is strict: the Prometheus format as it is fails it (so the check can fail).
        #expect(try Self.parserProblems(String(decoding: sample().render(), as: UTF8.self)) != nil)
    }

    @Test func counterFamiliesWithoutTotalGetItOnTheirSamples() {
        let text = "# HELP a_events Events.\n# TYPE a_events counter\na_events{x=\"1\"} 3\n# HELP g A \"quoted\" gauge.\n# TYPE g gauge\ng 1.0\n"
        let om = String(decoding: OpenMetricsText.convert(Array(text.utf8)), as: UTF8.self)
        #expect(om == "# HELP a_events Events.\n# TYPE a_events counter\na_events_total{x=\"1\"} 3\n# HELP g A \\\"quoted\\\" gauge.\n# TYPE g gauge\ng 1.0\n# EOF\n")
    }

    @Test func acceptNegotiation() {
        #expect(OpenMetricsText.isAccepted("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"))
        #expect(OpenMetricsText.isAccepted("Application/OpenMetrics-Text; version=1.0.0"))
        #expect(!OpenMetricsText.isAccepted("application/openmetrics-text; q=0"))
        #expect(!OpenMetricsText.isAccepted("text/plain;version=0.0.4"))
        #expect(!OpenMetricsText.isAccepted(""))
    }
}
