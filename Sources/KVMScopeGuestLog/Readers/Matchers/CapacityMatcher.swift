/// virtio-blk announcing a disk's size (drivers/block/virtio_blk.c `virtblk_update_capacity`):
///
///   `virtio_blk virtio%d: [%s] %s%llu %d-byte logical blocks (%s/%s)`
///
/// where the second %s is empty at probe and `new size: ` after a resize, e.g.
/// `virtio_blk virtio0: [vda] 131072 512-byte logical blocks (67.1 MB/64.0 MiB)`.
/// (SCSI disks print their size through SCSIMatcher.)
enum CapacityMatcher {
    public static func match(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        guard line.matches("virtio_blk virtio", at: s), let (_, e) = line.decimal(at: s + 17),
              line.matches(": [", at: e) else { return .noMatch }
        guard let (device, devEnd) = line.deviceName(at: e + 3, stop: UInt8(ascii: "]")),
              line.matches("] ", at: devEnd) else { return .noMatch }
        var i = devEnd + 2
        var resized = false
        if line.matches("new size: ", at: i) { resized = true; i += 10 }
        guard let (blocks, be) = line.decimal(at: i), line.matches(" ", at: be) else { return .noMatch }
        guard let (size, se) = line.decimal(at: be + 1), line.matches("-byte logical blocks", at: se),
              size > 0, size <= UInt64(UInt32.max) else { return .malformed }
        return .event(.capacity(DiskCapacityEvent(device: device, driver: "virtio_blk", logicalBlocks: blocks,
                                                  logicalBlockSize: UInt32(size), resized: resized,
                                                  location: ctx.location)))
    }
}
