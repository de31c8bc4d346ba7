/// What an input is evidence of. Each domain declares its own kinds (`extension InputKind {
/// public static let guestLog = InputKind("guest-log") }`), so adding one edits no central list.
public struct InputKind: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}

/// One input format kvmscope reads. Like QEMU's tracetool backends: one small type per
/// format, each able to say "this is mine" from the first bytes; each domain lists its own
/// (`GuestLogFormats`, `TraceFormats`, …) and the umbrella target composes them.
public protocol InputFormat: Sendable {
    /// Stable short name, accepted by `--format` and printed in JSON `format` keys.
    var name: String { get }
    var kind: InputKind { get }
    /// One line for `--help` and the README's format table.
    var summary: String { get }
    /// Whether the first bytes of an input (up to `InputSample.size`) look like this format.
    func recognizes(_ sample: UnsafeRawBufferPointer) -> Bool
}

/// How much of an input detection looks at.
public enum InputSample {
    public static let size = 64 * 1024
}

/// An ordered list of formats. Detection tries them in order, so more specific formats
/// (binary magic numbers) come before lenient text ones.
public struct InputFormatList: Sendable {
    public let all: [any InputFormat]
    public init(_ all: [any InputFormat]) { self.all = all }

    public static func + (a: InputFormatList, b: InputFormatList) -> InputFormatList {
        InputFormatList(a.all + b.all)
    }

    public func formats(of kind: InputKind) -> [any InputFormat] {
        all.filter { $0.kind == kind }
    }

    public func named(_ name: String) -> (any InputFormat)? {
        all.first { $0.name == name }
    }

    /// The first format of `kind` that recognizes the sample.
    public func detect(_ kind: InputKind, sample: UnsafeRawBufferPointer) -> (any InputFormat)? {
        formats(of: kind).first { $0.recognizes(sample) }
    }

    /// The first format of any kind that recognizes the sample.
    public func detect(sample: UnsafeRawBufferPointer) -> (any InputFormat)? {
        all.first { $0.recognizes(sample) }
    }
}
