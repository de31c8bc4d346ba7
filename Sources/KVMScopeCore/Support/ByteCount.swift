/// A size as an admin writes one on kvmscope's command line or in its configuration file:
/// `4096`, `512K`, `256M`, `1G`, `2GiB`, `1T` (powers of 1024; `B`/`iB` optional).
public enum ByteCount {
    /// The bytes, or nil for text that is not a positive size or overflows.
    public static func parse(_ argument: String) -> Int? {
        let units: [(String, Int)] = [("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)]
        var text = argument.uppercased()
        if text.hasSuffix("IB") { text.removeLast(2) } else if text.hasSuffix("B") { text.removeLast() }
        var scale = 1
        for (u, s) in units where text.hasSuffix(u) { text.removeLast(); scale = s; break }
        guard let v = Int(text), v > 0, v <= Int.max / scale else { return nil }
        return v * scale
    }
}
