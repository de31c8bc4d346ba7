import KVMScopeQMP

/// Groups BLOCK_IO_ERRORs into the attempts of one guest request. The Linux SCSI midlayer
/// retries a command that ended in ABORTED COMMAND at once (scsi_check_sense() →
/// NEEDS_RETRY, up to the command's allowed retries: 5 for sd), so one failing write shows
/// as a run of errors on one drive, of one kind, milliseconds apart.
enum QMPRetryBursts {
    /// Attempts of one request follow each other within this; separate requests of a guest
    /// that goes on after an error are further apart (each waits for its own failure).
    static let gapSeconds = 0.5
    /// sd's SD_MAX_RETRIES (drivers/scsi/sd.h) plus the first attempt.
    static let maxAttempts = 6

    /// Indices into `errors`, in bursts, in stream order.
    static func split(_ errors: [QMPTimeline.IOError]) -> [[Int]] {
        var bursts: [[Int]] = []
        var open: [String: Int] = [:]      // drive+kind → index into bursts
        for (i, e) in errors.enumerated() {
            let key = e.device + "/" + e.operation.rawValue
            if let b = open[key], let prev = bursts[b].last, bursts[b].count < maxAttempts,
               let t0 = errors[prev].time, let t1 = e.time, t1 - t0 >= 0, t1 - t0 <= gapSeconds {
                bursts[b].append(i)
            } else {
                open[key] = bursts.count
                bursts.append([i])
            }
        }
        return bursts
    }
}
