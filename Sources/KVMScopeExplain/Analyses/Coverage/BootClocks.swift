/// The guest's uptime starts again at every boot, so each boot has its own clock offset (host
/// wall clock − guest uptime: when that boot started, by the host's clock). A single offset
/// across a reboot would place the second boot's errors in the first boot's time.
struct BootClocks: Equatable {
    /// Offset per boot index (1-based, as the guest report numbers boots).
    var offsets: [Int: Double] = [:]
    /// The offset for errors whose boot has none of its own (a single-boot log, a boot without
    /// a match): the one the whole correlation found.
    var fallback: Double?

    func offset(boot: Int?) -> Double? {
        if let b = boot, let o = offsets[b] { return o }
        return offsets.isEmpty ? fallback : (boot == nil ? fallback : nil)
    }

    /// A guest time (uptime of `boot`) on the host clock.
    func hostTime(uptime: Double?, boot: Int?) -> Double? {
        guard let u = uptime, let o = offset(boot: boot) else { return nil }
        return u + o
    }

    /// A host time in guest uptime: of the latest boot that had started by then.
    func guestUptime(hostTime t: Double) -> Double? {
        if offsets.isEmpty { return fallback.map { t - $0 } }
        guard let o = offsets.values.filter({ $0 <= t }).max() else { return nil }
        return t - o
    }

    var isMultiBoot: Bool { offsets.count > 1 }
}
