import KVMScope

/// tracefs `per_cpu/cpuN/trace_pipe_raw` pages → kfree_skb records → drops, as
/// TracefsDropSource.drainBinary does, with the 6.18 header_page and kfree_skb format of the
/// test fixtures. The first byte picks the layout: 64-bit (local_t of 8 bytes), 32-bit (4),
/// and each with a short sub-buffer so that one input holds several pages.
public enum RingPageFuzz {
    static let layout64: RingBufferLayout = {
        do {
            return try RingBufferLayout.parse(headerPage: Fixtures.text("Tests/Fixtures/drops/header_page-6.18.txt"),
                                              headerEvent: Fixtures.text("Tests/Fixtures/drops/header_event-6.18.txt"))
        } catch { fatalError("header_page fixture: \(error)") }
    }()
    static let decoder: KfreeSkbRecordDecoder = {
        do {
            return try KfreeSkbRecordDecoder(format: TracepointFormat.parse(
                Fixtures.text("Tests/Fixtures/drops/kfree_skb-format-6.18.txt")))
        } catch { fatalError("kfree_skb format fixture: \(error)") }
    }()

    static func layout(_ selector: UInt8) -> RingBufferLayout {
        var l = layout64
        if selector & 1 != 0 {            // 32-bit kernel: `local_t commit` is 4 bytes, data at 12
            l.commitSize = 4
            l.dataOffset = 12
        }
        if selector & 2 != 0 { l.dataSize = 240 }
        return l
    }

    struct Outcome: Equatable {
        var stats: RingBufferPageDecoder.Stats
        var drops: [String]
        var records = 0
    }

    static func decode(_ body: ArraySlice<UInt8>, layout: RingBufferLayout) -> Outcome {
        var pages = RingBufferPageDecoder(layout: layout)
        var aggregator = DropAggregator()
        var out = Outcome(stats: .init(), drops: [])
        let decoder = Self.decoder
        let bytes = Array(body)
        bytes.withUnsafeBytes { all in
            var start = 0
            while start < all.count {
                let end = min(start + layout.pageSize, all.count)
                let page = UnsafeRawBufferPointer(rebasing: all[start..<end])
                pages.decode(page: page) { ts, payload in
                    out.records += 1
                    FuzzCheck.require(payload.baseAddress! >= page.baseAddress! && payload.baseAddress! + payload.count <= page.baseAddress! + page.count,
                                      "ring page: payload outside its page")
                    guard let r = decoder.decode(payload) else { return }
                    let e = DropEvent(time: Double(ts) / 1e9, cpu: 1, pid: r.pid, location: DropLocation(address: r.location),
                                      protocolNumber: r.protocolNumber, reason: decoder.dropReason(r.reason))
                    aggregator.add(e)
                    out.drops.append("\(r.pid) \(r.skbaddr) \(r.location) \(r.protocolNumber) \(r.reason.map(String.init) ?? "-")")
                }
                start = end
            }
        }
        out.stats = pages.stats
        var tally = aggregator.closeInterval(end: nil)
        tally.start = nil
        FuzzCheck.validJSON((try? DropJSONRenderer.interval(tally)) ?? "", "ring drops interval")
        FuzzCheck.require(tally.total == out.drops.count, "ring drops: tally \(tally.total) != \(out.drops.count) records")
        return out
    }

    public static func run(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let layout = layout(selector)
        let body = bytes.dropFirst()
        let out = decode(body, layout: layout)
        let s = out.stats
        FuzzCheck.require(s.events == out.records, "ring stats: \(s.events) events counted, \(out.records) handed on")
        let fullPages = (body.count + layout.pageSize - 1) / layout.pageSize
        FuzzCheck.require(s.pages <= fullPages && s.pagesAfterLoss <= s.pages, "ring stats: page counts exceed the pages given")
        FuzzCheck.require(s.corruptPages <= fullPages, "ring stats: more corrupt pages than pages")
        guard FuzzCheck.thorough(bytes) else { return }
        FuzzCheck.require(decode(body, layout: layout) == out, "ring pages: same input gave a different result")
    }
}
