import Foundation

/// `--json`: one JSON object per line — `"type": "interval"` for each interval, then one
/// `"type": "summary"`. Every key is always present (null when unknown), keys sorted; the
/// README documents each.
public enum DropJSONRenderer {
    struct Group: Encodable {
        let count: Int
        let location: DropLocation
        let reason: DropReason?
        let protocolNumber: UInt16?
        let origin: DropOrigin
        let comm: String?
        let hardwareTrap: String?

        enum K: String, CodingKey {
            case count, location, symbol, offset, address, module, hashed, origin, reason, reasonCode
            case `protocol`, protocolNumber, comm, hardwareTrap
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: K.self)
            try c.encode(count, forKey: .count)
            try c.encode(location.displayText, forKey: .location)
            try c.encode(location.symbol, forKey: .symbol)
            try encodeHex(&c, location.offset, .offset)
            try c.encode(location.addressText, forKey: .address)
            try c.encode(location.module, forKey: .module)
            try c.encode(location.hashed, forKey: .hashed)
            try c.encode(origin.rawValue, forKey: .origin)
            try c.encode(reason?.displayName, forKey: .reason)
            try c.encode(reason?.code, forKey: .reasonCode)
            try c.encode(protocolNumber.map(EtherType.name), forKey: .protocol)
            try c.encode(protocolNumber, forKey: .protocolNumber)
            try c.encode(comm, forKey: .comm)
            try c.encode(hardwareTrap, forKey: .hardwareTrap)
        }
    }

    struct ReasonCount: Encodable {
        @NullEncoded var reason: String?
        @NullEncoded var code: UInt32?
        let count: Int
        @NullEncoded var explanation: String?
    }

    struct ProtocolCount: Encodable {
        @NullEncoded var name: String?
        @NullEncoded var number: UInt16?
        let count: Int
        enum CodingKeys: String, CodingKey { case name = "protocol", number, count }
    }

    struct Interval: Encodable {
        let tally: DropTally
        enum K: String, CodingKey { case type, clock, startTime, endTime, drops, lost, lostUnknown, groups, reasons, protocols }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: K.self)
            try c.encode("interval", forKey: .type)
            try c.encode(tally.clock, forKey: .clock)
            try c.encode(tally.start, forKey: .startTime)
            try c.encode(tally.end, forKey: .endTime)
            try encodeCounts(&c, tally, drops: .drops, lost: .lost, lostUnknown: .lostUnknown, groups: .groups,
                             reasons: .reasons, protocols: .protocols)
        }
    }

    struct Summary: Encodable {
        let s: DropRunSummary
        enum K: String, CodingKey {
            case type, source, sourceDetail, seconds, clock, startTime, endTime, drops, lost, lostUnknown, groups, reasons, protocols
            case filteredOut, unattributed, notes, input
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: K.self)
            try c.encode("summary", forKey: .type)
            try c.encode(s.source, forKey: .source)
            try c.encode(s.sourceDetail, forKey: .sourceDetail)
            try c.encode(s.seconds, forKey: .seconds)
            try c.encode(s.tally.clock, forKey: .clock)
            try c.encode(s.tally.start, forKey: .startTime)
            try c.encode(s.tally.end, forKey: .endTime)
            try encodeCounts(&c, s.tally, drops: .drops, lost: .lost, lostUnknown: .lostUnknown, groups: .groups,
                             reasons: .reasons, protocols: .protocols)
            try c.encode(s.filteredOut, forKey: .filteredOut)
            try c.encode(s.unattributed, forKey: .unattributed)
            try c.encode(s.notes, forKey: .notes)
            try c.encode(s.input, forKey: .input)
        }
    }

    static func encodeHex<K: CodingKey>(_ c: inout KeyedEncodingContainer<K>, _ v: UInt64?, _ key: K) throws {
        try c.encode(v.map { "0x" + String($0, radix: 16) }, forKey: key)
    }

    static func encodeCounts<K: CodingKey>(_ c: inout KeyedEncodingContainer<K>, _ t: DropTally, drops: K, lost: K,
                                           lostUnknown: K, groups: K, reasons: K, protocols: K) throws {
        try c.encode(t.total, forKey: drops)
        try c.encode(t.lost, forKey: lost)
        try c.encode(t.lostUnknown, forKey: lostUnknown)
        try c.encode(t.rows.map { Group(count: $0.count, location: $0.key.location, reason: $0.key.reason,
                                        protocolNumber: $0.key.protocolNumber, origin: $0.key.origin,
                                        comm: $0.key.comm, hardwareTrap: $0.key.hardwareTrap) }, forKey: groups)
        try c.encode(t.byReason.map { ReasonCount(reason: $0.label?.displayName, code: $0.label?.code, count: $0.count,
                                                  explanation: $0.label?.name.flatMap(DropReasonExplanations.explanation(for:))) },
                     forKey: reasons)
        try c.encode(t.byProtocol.map { ProtocolCount(name: $0.label.map(EtherType.name), number: $0.label, count: $0.count) },
                     forKey: protocols)
    }

    public static func interval(_ t: DropTally) throws -> String {
        try JSONReport.encode(Interval(tally: t), pretty: false)
    }

    public static func summary(_ s: DropRunSummary) throws -> String {
        try JSONReport.encode(Summary(s: s), pretty: false)
    }
}
