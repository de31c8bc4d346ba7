import Foundation

/// The OpenMetrics 1.0.0 text format, for scrapers that ask for it (`Accept:
/// application/openmetrics-text`, which Prometheus sends first), made from the Prometheus text
/// format 0.0.4 that swift-prometheus 2.4.1 writes (it has no OpenMetrics encoder).
///
/// What differs for the metric types watch exports (counters, gauges, histograms), after the
/// OpenMetrics specification (prometheus/OpenMetrics, specification/OpenMetrics.md):
/// - a counter's MetricFamily is named without `_total`, its samples with it: `# TYPE
///   kvmscope_block_io_errors counter` over `kvmscope_block_io_errors_total{…} 1`;
/// - HELP escapes `"` as well as `\` and newline;
/// - the exposition ends with `# EOF`.
/// Samples, label escaping (`\\`, `\"`, `\n`), `le` buckets with `+Inf`, `_sum` and `_count`
/// are the same in both.
public enum OpenMetricsText {
    public static let contentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    /// True when an `Accept` header asks for OpenMetrics (any `application/openmetrics-text`
    /// range not refused with `q=0`).
    public static func isAccepted(_ accept: String) -> Bool {
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.first?.lowercased() == "application/openmetrics-text" else { continue }
            let q = parts.dropFirst().first { $0.lowercased().hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if q > 0 { return true }
        }
        return false
    }

    /// The same series in OpenMetrics. `text` is swift-prometheus' output: one `# HELP` and one
    /// `# TYPE` line per family, then its samples.
    public static func convert(_ text: [UInt8]) -> [UInt8] {
        let lines = text.split(separator: 0x0A, omittingEmptySubsequences: true)
        // Families typed counter: their TYPE comes after their HELP, so found first.
        var counters = Set<ArraySlice<UInt8>>()
        let typePrefix = Array("# TYPE ".utf8)
        for line in lines where line.starts(with: typePrefix) {
            let rest = line.dropFirst(typePrefix.count)
            guard let space = rest.firstIndex(of: 0x20), rest[(space + 1)...].elementsEqual("counter".utf8) else { continue }
            counters.insert(rest[..<space])
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.count + 64)
        let total = Array("_total".utf8)
        for line in lines {
            if line.first == UInt8(ascii: "#") {
                // `# HELP name text` / `# TYPE name type`
                let words = line.split(separator: 0x20, maxSplits: 3, omittingEmptySubsequences: false)
                guard words.count >= 3 else { continue }
                let keyword = words[1]
                var name = words[2]
                let isCounter = counters.contains(name)
                if isCounter, name.count > total.count, name.suffix(total.count).elementsEqual(total) {
                    name = name.dropLast(total.count)
                }
                out += "# ".utf8; out += keyword; out.append(0x20); out += name
                if words.count == 4 {
                    out.append(0x20)
                    if keyword.elementsEqual("HELP".utf8) {
                        for b in words[3] { if b == UInt8(ascii: "\"") { out += #"\""#.utf8 } else { out.append(b) } }
                    } else {
                        out += words[3]
                    }
                }
                out.append(0x0A)
                continue
            }
            // A sample: `name{labels} value` or `name value`.
            let nameEnd = line.firstIndex { $0 == UInt8(ascii: "{") || $0 == 0x20 } ?? line.endIndex
            let name = line[..<nameEnd]
            out += name
            // A counter family named without `_total` in 0.0.4: its samples get it in OpenMetrics.
            if counters.contains(name), !name.suffix(total.count).elementsEqual(total) { out += total }
            out += line[nameEnd...]
            out.append(0x0A)
        }
        out += "# EOF\n".utf8
        return out
    }
}
