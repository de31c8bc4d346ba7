import Foundation

/// Writes QEMU `simple` trace backend files from the format's definition (trace/simple.c and
/// scripts/simpletrace.py): Debian's QEMU is built with the `log` backend only, so the tests
/// make their simpletrace inputs with this.
///
///     header   u64 0xffffffffffffffff, u64 0xf2b177cb0aa429b4, u64 version
///     mapping  u64 0, u64 id, u32 len, name
///     event    u64 1, u64 id, u64 timestamp_ns, u32 length (24 + args), u32 pid, args
///     args     u64 per integer/pointer; u32 len + bytes per string
public struct SimpleTraceWriter {
    public enum Argument {
        case u64(UInt64)
        case int(Int64)                 // stored as `(uint64_t)value`, i.e. sign-extended
        case string([UInt8])

        public static func text(_ s: String) -> Argument { .string(Array(s.utf8)) }
    }

    public private(set) var bytes: [UInt8] = []
    public let bigEndian: Bool

    public init(version: UInt64 = 4, bigEndian: Bool = false) {
        self.bigEndian = bigEndian
        u64(0xffff_ffff_ffff_ffff)
        u64(0xf2b1_77cb_0aa4_29b4)
        u64(version)
    }

    public mutating func mapping(id: UInt64, name: String) {
        u64(0)
        u64(id)
        u32(UInt32(name.utf8.count))
        bytes += name.utf8
    }

    public mutating func event(id: UInt64, timestampNs: UInt64, pid: UInt32, _ args: [Argument]) {
        var payload = SimpleTraceWriter(raw: bigEndian)
        for a in args {
            switch a {
            case let .u64(v): payload.u64(v)
            case let .int(v): payload.u64(UInt64(bitPattern: v))
            case let .string(s): payload.u32(UInt32(s.count)); payload.bytes += s
            }
        }
        u64(1)
        u64(id)
        u64(timestampNs)
        u32(UInt32(24 + payload.bytes.count))
        u32(pid)
        bytes += payload.bytes
    }

    /// The record QEMU writes when its trace buffer overflowed.
    public mutating func dropped(count: UInt64, timestampNs: UInt64, pid: UInt32) {
        event(id: 0xffff_ffff_ffff_fffe, timestampNs: timestampNs, pid: pid, [.u64(count)])
    }

    public mutating func raw(_ b: [UInt8]) { bytes += b }

    private init(raw bigEndian: Bool) { self.bigEndian = bigEndian }

    private mutating func u64(_ v: UInt64) {
        let x = bigEndian ? v.bigEndian : v.littleEndian
        withUnsafeBytes(of: x) { bytes += $0 }
    }

    private mutating func u32(_ v: UInt32) {
        let x = bigEndian ? v.bigEndian : v.littleEndian
        withUnsafeBytes(of: x) { bytes += $0 }
    }

    /// The trace the simpletrace tests and the committed fixture use: a write failing with
    /// ENOSPC, the VM pausing, the retry succeeding; a read failing with EIO; strings with
    /// quotes and control bytes; an event without arguments; a dropped-events record; time
    /// going backwards (two threads); an id mapped but never used.
    public static func fixture() -> [UInt8] {
        var w = SimpleTraceWriter()
        let names = ["pflash_reset", "virtio_blk_req_complete", "virtio_blk_rw_complete", "virtio_blk_handle_write",
                     "virtio_blk_handle_read", "usb_ehci_port_attach", "virtqueue_fill", "virtqueue_pop",
                     "virtio_set_status", "runstate_set", "dbus_vmstate_pre_save", "qxl_interface_set_mm_time",
                     "an_event_this_qemu_has_but_the_file_not"]
        for (i, n) in names.enumerated() { w.mapping(id: UInt64(i), name: n) }
        let vdev: UInt64 = 0x55d0_c8a1_b2c0, vq: UInt64 = 0x7f09_0767_4010
        let req: UInt64 = 0x55d0_c8a1_c000, req2: UInt64 = 0x55d0_c8a1_d800
        let pid: UInt32 = 4242
        var t: UInt64 = 1_000_000_000
        func next(_ d: UInt64) -> UInt64 { t += d; return t }
        w.event(id: 8, timestampNs: next(0), pid: pid, [.u64(vdev), .u64(15)])
        w.event(id: 7, timestampNs: next(1_500), pid: pid, [.u64(vq), .u64(req), .u64(1), .u64(2)])
        w.event(id: 3, timestampNs: next(2_250), pid: pid, [.u64(vdev), .u64(req), .u64(4096), .u64(8)])
        w.event(id: 2, timestampNs: next(41_001), pid: pid, [.u64(vdev), .u64(req), .int(-28)])
        w.event(id: 9, timestampNs: next(999), pid: pid, [.int(9), .text("running"), .int(3), .text("io-error")])
        w.event(id: 9, timestampNs: next(1_003_000_123), pid: pid, [.int(3), .text("io-error"), .int(9), .text("running")])
        w.event(id: 3, timestampNs: next(7), pid: pid, [.u64(vdev), .u64(req), .u64(4096), .u64(8)])
        w.event(id: 2, timestampNs: next(164_000), pid: pid, [.u64(vdev), .u64(req), .int(0)])
        w.event(id: 1, timestampNs: next(4_000), pid: pid, [.u64(vdev), .u64(req), .int(0)])
        w.event(id: 6, timestampNs: next(2_000), pid: pid, [.u64(vq), .u64(req), .u64(1), .u64(0)])
        w.dropped(count: 17, timestampNs: next(10_000), pid: pid)
        w.event(id: 7, timestampNs: next(5_000), pid: pid, [.u64(vq), .u64(req2), .u64(2), .u64(1)])
        w.event(id: 4, timestampNs: next(3_000), pid: pid, [.u64(vdev), .u64(req2), .u64(8192), .u64(128)])
        // An iothread's event stamped slightly earlier than the previous one.
        w.event(id: 2, timestampNs: t - 500, pid: pid, [.u64(vdev), .u64(req2), .int(-5)])
        w.event(id: 1, timestampNs: next(800), pid: pid, [.u64(vdev), .u64(req2), .int(1)])
        w.event(id: 6, timestampNs: next(600), pid: pid, [.u64(vq), .u64(req2), .u64(1), .u64(0)])
        w.event(id: 0, timestampNs: next(1), pid: pid, [.text("system.flash0")])
        w.event(id: 5, timestampNs: next(1), pid: pid, [.u64(1), .string(Array("it's \"q\"\\".utf8) + [0x09, 0x0A, 0x00, 0x7F, 0xC3, 0xA9]), .text("usb-tablet's")])
        w.event(id: 5, timestampNs: next(1), pid: pid, [.u64(2), .text("o'k"), .string([])])
        w.event(id: 10, timestampNs: next(123_456_789_012), pid: pid, [])
        w.event(id: 11, timestampNs: next(1), pid: pid, [.int(-1), .u64(0xffff_ffff)])
        w.event(id: 8, timestampNs: next(1), pid: pid, [.u64(vdev), .u64(0)])
        return w.bytes
    }
}
