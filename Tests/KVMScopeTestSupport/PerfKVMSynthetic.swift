import Foundation
import KVMScopeTracefs

/// A SYNTHETIC kvm_exit/kvm_entry sample set: this host's KVM emits no exits (TCG), so the
/// exits tests build samples themselves from the kvm_exit/kvm_entry formats that the real
/// `perf record -e kvm:kvm_exit -e kvm:kvm_entry` stored in Fixtures/perf/kvm.data.xz, and
/// write them into a perf.data with PerfDataWriter. Fixtures/perf/kvm-synthetic.perf-script.txt
/// is `perf script --ns` of the file `write()` returns (see that directory's README).
public enum PerfKVMSynthetic {
    /// Two vCPU threads on two CPUs, VMX reasons, latencies 1-90 µs, rounds of 8 samples.
    public static func writer(exit: PerfTracepoint, entry: PerfTracepoint) -> (PerfDataWriter, [PerfDataWriter.Sample]) {
        var w = PerfDataWriter(events: [
            .init(system: "kvm", formatText: exit.text, id: exit.format.id),
            .init(system: "kvm", formatText: entry.text, id: entry.format.id),
        ])
        w.comms = [(5000, 5001, "CPU 0/KVM"), (5000, 5002, "CPU 1/KVM")]
        w.roundEvery = 8
        let reasons: [UInt64] = [1, 30, 48, 12, 30, 1, 31, 48]
        var samples: [PerfDataWriter.Sample] = []
        var t: UInt64 = 42_000_000_000_000
        for i in 0..<64 {
            for vcpu in 0..<2 {
                let tid = Int32(5001 + vcpu)
                let reason = reasons[(i + vcpu) % reasons.count]
                let latency = UInt64(1_000 + (i * 7_919 + vcpu * 3_001) % 89_000)
                let rip: UInt64 = 0xffff_ffff_8100_0000 + UInt64(i * 16)
                samples.append(.init(event: 0, pid: 5000, tid: tid, timeNs: t + UInt64(vcpu) * 500, cpu: UInt32(vcpu),
                                     payload: payload(exit.format, tid: tid, [
                                        "exit_reason": reason, "guest_rip": rip, "isa": 1, "info1": UInt64(i), "info2": 0x80,
                                        "intr_info": 0x8000_00ef, "error_code": 0, "vcpu_id": UInt64(vcpu)])))
                samples.append(.init(event: 1, pid: 5000, tid: tid, timeNs: t + UInt64(vcpu) * 500 + latency, cpu: UInt32(vcpu),
                                     payload: payload(entry.format, tid: tid, ["vcpu_id": UInt64(vcpu), "rip": rip + 2])))
            }
            t += 100_000
        }
        return (w, samples)
    }

    /// A record of `format` with the given fields (host order).
    public static func payload(_ format: TracepointFormat, tid: Int32, _ values: [String: UInt64]) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: format.recordSize)
        func put(_ name: String, _ v: UInt64) {
            guard let f = format.field(name), f.offset + f.size <= p.count else { return }
            withUnsafeBytes(of: v.littleEndian) { b in
                for k in 0..<min(f.size, 8) { p[f.offset + k] = b[k] }
            }
        }
        put("common_type", UInt64(format.id))
        put("common_pid", UInt64(UInt32(bitPattern: tid)))
        for (k, v) in values { put(k, v) }
        return p
    }
}
