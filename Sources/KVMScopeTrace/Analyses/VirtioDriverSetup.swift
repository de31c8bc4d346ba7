/// Follows the status a guest driver writes to one virtio device (`virtio_set_status vdev val`)
/// to find when a *Linux* driver finished setting it up.
///
/// Linux (drivers/virtio/virtio.c) resets the device, writes ACKNOWLEDGE (1) on its own in
/// `register_virtio_device()`, then DRIVER (2), FEATURES_OK (8) and, at the end of the probe,
/// DRIVER_OK (4): 0, 1, 3, 11, 15. Firmware drivers (SeaBIOS `vp_init_simple()`) write
/// ACKNOWLEDGE|DRIVER at once (0, 3, 11, 15), so "ACKNOWLEDGE alone since the last reset" tells
/// the guest kernel's setup from the BIOS's. virtio_blk logs the disk's size during that probe.
struct VirtioDriverSetup {
    static let acknowledge: UInt64 = 1
    static let driverOK: UInt64 = 4
    /// Enough for a VM rebooted many times; later ones are not needed to place a boot.
    static let maxKept = 64

    private var acknowledgedAlone = false
    private var ready = false
    private(set) var readyTimes: [Int64] = []

    mutating func status(_ value: UInt64, at t: Int64?) {
        if value == 0 {
            acknowledgedAlone = false
            ready = false
            return
        }
        if value == Self.acknowledge { acknowledgedAlone = true }
        if value & Self.driverOK != 0, !ready {
            ready = true
            if acknowledgedAlone, let t, readyTimes.count < Self.maxKept { readyTimes.append(t) }
        }
    }
}
