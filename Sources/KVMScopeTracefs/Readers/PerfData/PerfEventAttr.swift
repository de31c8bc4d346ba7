/// The parts of a `struct perf_event_attr` (include/uapi/linux/perf_event.h) a sample reader
/// needs. The struct grows with kernel versions (PERF_ATTR_SIZE_VER0 = 64 bytes ... VER8 =
/// 136); its own `size` field says how much of it the writer filled, and every field read
/// here lies in the first 64 bytes, so any version can be read.
public struct PerfEventAttr: Sendable, Equatable {
    /// PERF_TYPE_TRACEPOINT: `config` is the tracepoint's id (its format's `ID:`).
    public static let typeTracepoint: UInt32 = 2
    /// Smallest attr any perf wrote (PERF_ATTR_SIZE_VER0).
    static let sizeVer0 = 64

    public var type: UInt32
    /// The writer's sizeof(perf_event_attr) (0 in files of perf before 2.6.33: VER0).
    public var size: UInt32
    public var config: UInt64
    public var sampleType: UInt64
    public var readFormat: UInt64
    /// attr.sample_id_all: non-sample records carry a `struct sample_id` trailer.
    public var sampleIDAll: Bool
    /// The kernel-assigned ids of this event's per-CPU/per-thread instances; samples name one
    /// of them in PERF_SAMPLE_ID / PERF_SAMPLE_IDENTIFIER.
    public var ids: [UInt64] = []
    /// perf's name for the event (HEADER_EVENT_DESC), e.g. `kvm:kvm_exit`.
    public var name: String?

    /// Parses the first `bytes.count` bytes of an attr written in `order`. The flags word is
    /// a C bitfield: bit 0 first on little-endian hosts, bit 63 first on big-endian ones, so
    /// sample_id_all (the 19th flag) is bit 18 or bit 45 of the u64 (perf reverses the bits
    /// the same way: session.c, perf_event__attr_swap / swap_bitfield).
    static func parse(_ bytes: UnsafeRawBufferPointer, order: PerfByteOrder, bigEndianFile: Bool, path: String) throws -> PerfEventAttr {
        guard bytes.count >= sizeVer0 else {
            throw PerfDataError(path: path, "event attribute of \(bytes.count) bytes, less than the 64 every perf writes")
        }
        let flags = order.u64(bytes, 40)
        let sampleIDAllBit: UInt64 = bigEndianFile ? 1 << (63 - 18) : 1 << 18
        return PerfEventAttr(type: order.u32(bytes, 0), size: order.u32(bytes, 4), config: order.u64(bytes, 8),
                             sampleType: order.u64(bytes, 24), readFormat: order.u64(bytes, 32),
                             sampleIDAll: flags & sampleIDAllBit != 0)
    }

    /// The attr's size as written: 0 means VER0 (perf's read_attr does the same).
    var declaredSize: Int { size == 0 ? Self.sizeVer0 : Int(size) }
}

/// Where each field of a PERF_RECORD_SAMPLE is, for one attr's sample_type (perf_event.h,
/// "struct { ... } && PERF_SAMPLE_*" under PERF_RECORD_SAMPLE). The fields up to PERIOD have
/// fixed sizes; READ and CALLCHAIN are counted from the record; RAW (the tracepoint's record)
/// comes after them. Fields after RAW are never needed, so any sample_type whose fields
/// before RAW are known can be read.
struct PerfSampleLayout: Sendable, Equatable {
    static let ip: UInt64 = 1 << 0, tid: UInt64 = 1 << 1, time: UInt64 = 1 << 2, addr: UInt64 = 1 << 3
    static let read: UInt64 = 1 << 4, callchain: UInt64 = 1 << 5, id: UInt64 = 1 << 6, cpu: UInt64 = 1 << 7
    static let period: UInt64 = 1 << 8, streamID: UInt64 = 1 << 9, raw: UInt64 = 1 << 10
    static let identifier: UInt64 = 1 << 16

    // read_format bits (perf_event.h enum perf_event_read_format).
    static let totalTimeEnabled: UInt64 = 1 << 0, totalTimeRunning: UInt64 = 1 << 1
    static let formatID: UInt64 = 1 << 2, formatGroup: UInt64 = 1 << 3, formatLost: UInt64 = 1 << 4
    static let knownReadFormat: UInt64 = (1 << 5) - 1

    let sampleType: UInt64
    /// Offsets inside the record body (after the 8-byte perf_event_header); -1 = absent.
    let identifierAt: Int, tidAt: Int, timeAt: Int, idAt: Int, cpuAt: Int
    /// Bytes of the fixed part (IDENTIFIER ... PERIOD).
    let fixedSize: Int
    let hasRead: Bool, hasCallchain: Bool, hasRaw: Bool
    let readGroup: Bool
    /// A non-group READ's size, or a group READ's header (nr + times) and per-member size.
    let readHead: Int, readPerMember: Int
    /// sample_id trailer of non-sample records (sample_id_all): size and where TIME is in it.
    let trailerSize: Int, trailerTimeAt: Int, trailerIdentifierAt: Int, trailerIDAt: Int

    init(sampleType st: UInt64, readFormat rf: UInt64, path: String) throws {
        sampleType = st
        var at = 0
        func field(_ bit: UInt64, _ size: Int) -> Int {
            guard st & bit != 0 else { return -1 }
            defer { at += size }
            return at
        }
        identifierAt = field(Self.identifier, 8)
        _ = field(Self.ip, 8)
        tidAt = field(Self.tid, 8)
        timeAt = field(Self.time, 8)
        _ = field(Self.addr, 8)
        idAt = field(Self.id, 8)
        _ = field(Self.streamID, 8)
        cpuAt = field(Self.cpu, 8)
        _ = field(Self.period, 8)
        fixedSize = at
        hasRead = st & Self.read != 0
        hasCallchain = st & Self.callchain != 0
        hasRaw = st & Self.raw != 0
        if hasRead, rf & ~Self.knownReadFormat != 0 {
            throw PerfDataError(path: path, "samples with read_format 0x\(String(rf, radix: 16)): bits kvmscope does not know change the size of PERF_SAMPLE_READ, so the samples cannot be read safely")
        }
        readGroup = rf & Self.formatGroup != 0
        let times = (rf & Self.totalTimeEnabled != 0 ? 8 : 0) + (rf & Self.totalTimeRunning != 0 ? 8 : 0)
        let perValue = 8 + (rf & Self.formatID != 0 ? 8 : 0) + (rf & Self.formatLost != 0 ? 8 : 0)
        if readGroup { readHead = 8 + times; readPerMember = perValue } else { readHead = perValue + times; readPerMember = 0 }

        // struct sample_id { TID, TIME, ID, STREAM_ID, CPU, IDENTIFIER }, at the record's end.
        var t = 0
        func trailer(_ bit: UInt64) -> Int {
            guard st & bit != 0 else { return -1 }
            defer { t += 8 }
            return t
        }
        _ = trailer(Self.tid)
        trailerTimeAt = trailer(Self.time)
        trailerIDAt = trailer(Self.id)
        _ = trailer(Self.streamID)
        _ = trailer(Self.cpu)
        trailerIdentifierAt = trailer(Self.identifier)
        trailerSize = t
    }
}
