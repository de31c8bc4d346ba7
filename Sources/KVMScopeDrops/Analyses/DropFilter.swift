import Foundation

/// Which drops a report counts: `--reason`, `--location`, `--protocol` (each repeatable;
/// a drop must match one value of every option given). `--netns` is applied by the live
/// source, which alone knows the task a drop happened in.
public struct DropFilter: Sendable, Equatable {
    /// Canonical reason names (`NO_SOCKET`).
    public var reasons: Set<String> = []
    public var locations: [LocationPattern] = []
    public var protocols: Set<UInt16> = []

    public init(reasons: Set<String> = [], locations: [LocationPattern] = [], protocols: Set<UInt16> = []) {
        self.reasons = Set(reasons.map(DropReason.canonicalName))
        self.locations = locations
        self.protocols = protocols
    }

    public var isEmpty: Bool { reasons.isEmpty && locations.isEmpty && protocols.isEmpty }

    /// `__udp4_lib_rcv` (the whole function), `__udp4_lib_rcv+0x4bc` (that spot), or an
    /// address `0xffffffff82046f4c`.
    public enum LocationPattern: Sendable, Equatable {
        case function(String)
        case spot(String, UInt64)
        case address(UInt64)

        public init?(_ text: String) {
            let t = text.trimmingCharacters(in: .whitespaces)
            guard !t.isEmpty, !t.contains(" ") else { return nil }
            if t.lowercased().hasPrefix("0x") {
                guard let a = UInt64(t.dropFirst(2), radix: 16) else { return nil }
                self = .address(a)
            } else if let plus = t.firstIndex(of: "+") {
                var off = t[t.index(after: plus)...]
                if let slash = off.firstIndex(of: "/") { off = off[..<slash] }
                let digits = off.lowercased().hasPrefix("0x") ? off.dropFirst(2) : off
                guard let o = UInt64(digits, radix: 16), plus > t.startIndex else { return nil }
                self = .spot(String(t[..<plus]), o)
            } else {
                self = .function(t)
            }
        }

        func matches(_ l: DropLocation) -> Bool {
            switch self {
            case let .function(name): return l.symbol == name
            case let .spot(name, off): return l.symbol == name && l.offset == off
            case let .address(a): return l.address == a && !l.hashed
            }
        }

        /// The symbol name, for turning the pattern into a kernel-side address filter.
        public var functionName: String? {
            switch self {
            case let .function(n), let .spot(n, _): return n
            case .address: return nil
            }
        }
    }

    public func accepts(_ e: DropEvent) -> Bool {
        if !reasons.isEmpty {
            guard let name = e.reason?.name, reasons.contains(name) else { return false }
        }
        if !protocols.isEmpty {
            guard let p = e.protocolNumber, protocols.contains(p) else { return false }
        }
        if !locations.isEmpty {
            guard locations.contains(where: { $0.matches(e.location) }) else { return false }
        }
        return true
    }
}
