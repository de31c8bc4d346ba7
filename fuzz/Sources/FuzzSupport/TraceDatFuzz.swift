import KVMScope

/// A trace.dat of any shape: the header, options and sections parse or fail with one
/// TraceDatError; the events that come out lie inside their pages, come from the CPUs the file
/// lists, and are counted; the drops and exits readers on the same bytes give one clear error
/// or a report whose counts agree with the event reader's.
public enum TraceDatFuzz {
    public static func run(_ bytes: [UInt8]) {
        guard let input = try? TraceDatInput(stream: MemoryByteSource(bytes), regularFilePath: nil) else { return }
        let file: TraceDatFile
        do { file = try TraceDatFile.read(input) } catch {
            FuzzCheck.require(error is TraceDatError, "trace.dat header: unexpected error \(error)")
            return
        }
        FuzzCheck.require(file.version == 6 || file.version == 7, "trace.dat: version \(file.version) accepted")
        let cpus = Set(file.cpus.map(\.cpu))
        let reader = TraceDatEventReader(file: file, input: input)
        var events = 0
        var byType: [Int: Int] = [:]
        do {
            try reader.forEach { e in
                events += 1
                byType[e.type, default: 0] += 1
                FuzzCheck.require(cpus.contains(e.cpu), "trace.dat: event from CPU \(e.cpu), not listed")
                FuzzCheck.require(e.payload.count <= file.pageSize, "trace.dat: payload larger than a page")
            }
        } catch {
            FuzzCheck.require(error is TraceDatError, "trace.dat data: unexpected error \(error)")
            return
        }
        FuzzCheck.require(reader.stats.events == events && reader.stats.pages.events == events,
                          "trace.dat: \(events) events handed on, \(reader.stats.events)/\(reader.stats.pages.events) counted")
        guard FuzzCheck.thorough(bytes) else { return }
        if let kfree = file.format(system: "skb", name: "kfree_skb"),
           var drops = try? TraceDatDropReader(stream: MemoryByteSource(bytes)) {
            var n = 0
            if (try? drops.read { _ in n += 1 }) != nil {
                FuzzCheck.require(n + drops.stats.undecodable == byType[kfree.id, default: 0], "trace.dat drops: \(n) drops of \(byType[kfree.id, default: 0]) kfree_skb events")
            }
        }
        if let report = try? KVMExitTraceReader.analyze(MemoryByteSource(bytes)) {
            FuzzCheck.require(report.lines.total == events, "trace.dat exits: \(report.lines.total) events of \(events)")
            _ = FuzzCheck.json(report, "trace.dat exits report")
        }
    }
}
