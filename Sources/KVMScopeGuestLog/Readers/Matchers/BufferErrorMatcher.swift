/// Buffer-head errors (fs/buffer.c `buffer_io_error`, fs/ext4/page-io.c `buffer_io_error`):
///
///   fs/buffer.c ≤4.0 and ext4 page-io  `Buffer I/O error on device %s, logical block %Lu`
///   fs/buffer.c 4.1+                   `Buffer I/O error on dev %pg, logical block %llu%s`
///                                      %s = `, lost sync page write` | `, async page read` |
///                                           `, lost async page write` | ``
///   fs/buffer.c ≤4.0                   `lost page write due to I/O error on %s`
enum BufferErrorMatcher {
    public static func matchBuffer(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        let s = ctx.start
        guard line.matches("Buffer I/O error on dev", at: s) else { return .noMatch }
        var i = s + 23
        let shape: BufferErrorShape
        if line.matches("ice ", at: i) { shape = .onDevice; i += 4 }
        else if line.matches(" ", at: i) { shape = .onDev; i += 1 }
        else { return .malformed }
        guard let (device, devEnd) = line.deviceName(at: i, stop: UInt8(ascii: ",")),
              line.matches(", logical block ", at: devEnd),
              let (block, blockEnd) = line.decimal(at: devEnd + 16) else { return .malformed }
        var loss: BufferErrorLoss? = nil
        if blockEnd < line.count {
            if line.matches(", lost sync page write", at: blockEnd) { loss = .syncWrite }
            else if line.matches(", lost async page write", at: blockEnd) { loss = .asyncWrite }
            else if line.matches(", async page read", at: blockEnd) { loss = .asyncRead }
        }
        return .event(.bufferError(BufferErrorEvent(device: device, logicalBlock: block, loss: loss, shape: shape,
                                                    location: ctx.location)))
    }

    public static func matchLostPageWrite(_ ctx: MatchContext) -> MatchOutcome {
        let line = ctx.line
        guard line.matches("lost page write due to I/O error on ", at: ctx.start) else { return .noMatch }
        guard let (device, _) = line.deviceName(at: ctx.start + 36, stop: 0x20) else { return .malformed }
        return .event(.bufferError(BufferErrorEvent(device: device, logicalBlock: nil, loss: .write,
                                                    shape: .lostPageWrite, location: ctx.location)))
    }
}
