import Foundation

/// Writes SYNTHETIC trace-cmd trace.dat files (version 6, either byte order) with the layout
/// Documentation/trace-cmd/trace-cmd.dat.v6.5.txt describes, for tests that need records this
/// host cannot produce (KVM emits no kvm_exit here) or damage a real file cannot have. Files
/// written by the real trace-cmd are in Tests/Fixtures/tracedat; these are built, not recorded.
public struct TraceDatBuilder {
    public struct Event {
        public var timestamp: UInt64
        public var payload: [UInt8]
        public init(timestamp: UInt64, payload: [UInt8]) {
            self.timestamp = timestamp
            self.payload = payload
        }
    }

    public var bigEndian = false
    public var version = "6"
    public var pageSize = 4096
    public var headerPage: String
    public var headerEvent: String
    /// (system, [format text]).
    public var systems: [(String, [String])] = []
    public var kallsyms = ""
    public var cmdlines = ""
    public var clock = "[local] global counter uptime perf mono mono_raw boot tai x86-tsc"
    /// Events per CPU, each list in time order.
    public var cpus: [[Event]] = []

    public init(headerPage: String, headerEvent: String) {
        self.headerPage = headerPage
        self.headerEvent = headerEvent
    }

    /// The real kernel's header_page/header_event (linux 6.18, 64-bit), from the fixtures.
    public static func withFixtureHeaders() throws -> TraceDatBuilder {
        TraceDatBuilder(headerPage: try String(contentsOfFile: TestFixtures.path("tracedat/header_page"), encoding: .utf8),
                        headerEvent: try String(contentsOfFile: TestFixtures.path("tracedat/header_event"), encoding: .utf8))
    }

    func n<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { Array($0) }
    }

    /// A record payload in this file's byte order: `fields` are (offset, size, value).
    public func record(size: Int, _ fields: [(Int, Int, UInt64)]) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: size)
        for (offset, width, value) in fields {
            var bytes: [UInt8] = []
            switch width {
            case 1: bytes = [UInt8(truncatingIfNeeded: value)]
            case 2: bytes = n(UInt16(truncatingIfNeeded: value))
            case 4: bytes = n(UInt32(truncatingIfNeeded: value))
            default: bytes = n(value)
            }
            p.replaceSubrange(offset..<offset + width, with: bytes)
        }
        return p
    }

    /// Ring-buffer pages for one CPU (kernel/trace/ring_buffer.c layout, 64-bit commit).
    public func pages(_ events: [Event]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < events.count {
            var data: [UInt8] = []
            let start = events[i].timestamp
            var clock = start
            while i < events.count {
                var ev: [UInt8] = []
                let delta = events[i].timestamp - clock
                if delta >= 1 << 27 {
                    ev += header(type: 30, delta: UInt32(delta & 0x7FF_FFFF)) + n(UInt32(truncatingIfNeeded: delta >> 27))
                }
                let d = delta >= 1 << 27 ? 0 : UInt32(delta)
                var p = events[i].payload
                while p.count % 4 != 0 { p.append(0) }
                if p.count <= 112 { ev += header(type: UInt32(p.count / 4), delta: d) } else { ev += header(type: 0, delta: d) + n(UInt32(p.count + 4)) }
                ev += p
                if 16 + data.count + ev.count > pageSize { break }
                data += ev
                clock = events[i].timestamp
                i += 1
            }
            var page = n(start) + n(UInt64(data.count)) + data
            page += [UInt8](repeating: 0, count: pageSize - page.count)
            out += page
        }
        return out
    }

    func header(type: UInt32, delta: UInt32) -> [UInt8] {
        n(bigEndian ? type << 27 | delta : type | delta << 5)
    }

    public func build() -> [UInt8] {
        var f: [UInt8] = [0x17, 0x08, 0x44] + Array("tracing".utf8) + Array(version.utf8) + [0]
        f += [bigEndian ? 1 : 0, 8] + n(UInt32(pageSize))
        f += Array("header_page\0".utf8) + n(UInt64(headerPage.utf8.count)) + Array(headerPage.utf8)
        f += Array("header_event\0".utf8) + n(UInt64(headerEvent.utf8.count)) + Array(headerEvent.utf8)
        f += n(UInt32(0))                                  // no ftrace formats
        f += n(UInt32(systems.count))
        for (system, formats) in systems {
            f += Array(system.utf8) + [0] + n(UInt32(formats.count))
            for text in formats { f += n(UInt64(text.utf8.count)) + Array(text.utf8) }
        }
        f += n(UInt32(kallsyms.utf8.count)) + Array(kallsyms.utf8)
        f += n(UInt32(0))                                  // no trace_printk formats
        f += n(UInt64(cmdlines.utf8.count)) + Array(cmdlines.utf8)
        f += n(UInt32(cpus.count))
        f += Array("flyrecord\0".utf8)
        let tableAt = f.count
        f += [UInt8](repeating: 0, count: 16 * cpus.count)
        f += n(UInt64(clock.utf8.count)) + Array(clock.utf8)
        for (cpu, events) in cpus.enumerated() {
            while f.count % pageSize != 0 { f.append(0) }
            let data = pages(events)
            let offset = data.isEmpty ? 0 : UInt64(f.count)
            f.replaceSubrange(tableAt + 16 * cpu..<tableAt + 16 * cpu + 16, with: n(offset) + n(UInt64(data.count)))
            f += data
        }
        return f
    }
}
