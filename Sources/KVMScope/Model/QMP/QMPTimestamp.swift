/// Which QMP timestamps are readings of a host clock. QEMU stamps each event with
/// g_get_real_time() split into `seconds` and `microseconds` (qapi/qmp-event.c timestamp_put),
/// and virsh prints the same clock; a value before 1970 or after year 9999 (a four-digit year's
/// last second), or one that is not finite, comes from a corrupted or hostile file. Rejecting it
/// here keeps everything downstream (microsecond rounding, offsets between clocks) in range.
public enum QMPTimestamp {
    /// 10000-01-01T00:00:00Z in seconds since the epoch.
    public static let endOfYear9999 = 253_402_300_800.0

    public static func isPlausible(_ seconds: Double) -> Bool {
        seconds.isFinite && seconds >= 0 && seconds < endOfYear9999
    }

    /// QMP's `{"seconds": S, "microseconds": U}` as seconds, nil when either part is out of range.
    public static func seconds(_ s: Double, microseconds us: Double) -> Double? {
        guard isPlausible(s), us.isFinite, us >= 0, us < 1_000_000 else { return nil }
        let t = s + us / 1e6
        return isPlausible(t) ? t : nil
    }
}
