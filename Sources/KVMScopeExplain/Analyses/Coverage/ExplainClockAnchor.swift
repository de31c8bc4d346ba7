import KVMScopeTrace
import KVMScopeGuestLog

/// Places the guest's uptime on the trace's wall clock when no failed request can: a Linux
/// guest logs each virtio disk while its driver sets it up (`virtio_blk virtioN: [vda] …
/// logical blocks`, virtblk_probe()), and the trace records that setup's end
/// (`virtio_set_status … val 15`, see VirtioDriverSetup in KVMScopeTrace). Host time of the
/// setup minus the line's uptime is the guest's boot time on the host clock, to a few ms.
enum ExplainClockAnchor {
    /// How far the capacity line and DRIVER_OK may be apart: the probe logs the size
    /// before virtio_device_ready(); under TCG the two are a few ms apart, never seconds.
    static let probeToReadySeconds = 1.0

    /// The offset (host time − guest uptime), when every virtio-blk disk the guest announced
    /// pairs with exactly one driver setup in the trace and they agree. Nil when ambiguous
    /// (several boots, several setups of one device, a guest without uptime stamps).
    /// `time`: a guest location on the guest's clock (its uptime, or its wall clock in epoch
    /// seconds for logs stamped only so); default: uptime.
    static func offset(guest: GuestDiskReport?, host: TraceReport?,
                       time: (GuestLogLocation) -> Double? = { $0.time.uptimeSeconds }) -> Double? {
        guard let guest, let host, host.timeSpan?.clock == .wall else { return nil }
        let announced = guest.devices.compactMap { d -> Double? in
            guard let c = d.capacity, c.driver == "virtio_blk", !c.resized else { return nil }
            // A 1-second stamp cannot place a setup that takes milliseconds.
            if let p = c.location.time.precisionMicroseconds, p > 1000 { return nil }
            return time(c.location)
        }
        let ready = host.devices.map(\.driverReadyTimes)
        // One setup per device, and as many set-up devices as announced disks: one boot.
        guard !announced.isEmpty, ready.allSatisfy({ $0.count <= 1 }) else { return nil }
        let readyTimes = ready.compactMap(\.first).sorted()
        guard readyTimes.count == announced.count else { return nil }
        // Linux probes virtio devices in bus order and logs each before setting it ready:
        // the k-th announcement pairs with the k-th setup.
        let offsets = zip(announced.sorted(), readyTimes).map { $1 - $0 }
        guard let lo = offsets.min(), let hi = offsets.max(), hi - lo <= probeToReadySeconds else { return nil }
        return offsets.sorted()[offsets.count / 2]
    }
}
