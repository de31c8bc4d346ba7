import Foundation
import KVMScopeLive

/// A libvirt domain as `record` names it: the domain's name and the libvirt connection URI.
///
/// Written into a capture's `record-state.json` (its `qmp` field) and `capture.json`, so
/// `record --restore` reconnects through libvirt to the same domain: `libvirt:NAME` for the
/// default `qemu:///system`, `libvirt:NAME?connect=URI` otherwise. The name and the URI are
/// percent-encoded where they hold `%`, `?`, `&`, `=`, a control or a non-ASCII character
/// (libvirt allows most characters in a domain name; a URI holds `?` and `&` of its own).
public struct LibvirtAddress: Equatable, Sendable, CustomStringConvertible {
    public static let defaultURI = "qemu:///system"
    public static let scheme = "libvirt:"
    public let domain: String
    public let uri: String

    public init(domain: String, uri: String?) throws {
        guard !domain.isEmpty else { throw LibvirtError.badAddress(domain, "an empty domain name") }
        guard domain.utf8.count <= 1024 else { throw LibvirtError.badAddress(String(domain.prefix(40)) + "…", "a domain name longer than 1024 bytes") }
        let u = uri ?? Self.defaultURI
        guard !u.isEmpty, u.utf8.count <= 4096 else { throw LibvirtError.badAddress(u, "a connection URI must be 1-4096 bytes") }
        self.domain = domain
        self.uri = u
    }

    /// Parses what `description` wrote (`libvirt:NAME[?connect=URI]`).
    public init(parsing text: String) throws {
        guard text.hasPrefix(Self.scheme) else { throw LibvirtError.badAddress(text, "want libvirt:NAME[?connect=URI]") }
        let rest = text.dropFirst(Self.scheme.count)
        let parts = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard let name = String(parts[0]).removingPercentEncoding else { throw LibvirtError.badAddress(text, "bad percent-encoding in the name") }
        var uri: String?
        if parts.count == 2 {
            let query = parts[1]
            guard query.hasPrefix("connect="), let u = String(query.dropFirst(8)).removingPercentEncoding else {
                throw LibvirtError.badAddress(text, "want ?connect=URI after the name")
            }
            uri = u
        }
        try self.init(domain: name, uri: uri)
    }

    /// Is this text a libvirt address (as opposed to a QMP socket address)?
    public static func isLibvirt(_ text: String) -> Bool { text.hasPrefix(scheme) }

    public var description: String {
        Self.scheme + Self.encode(domain) + (uri == Self.defaultURI ? "" : "?connect=" + Self.encode(uri))
    }

    private static func encode(_ s: String) -> String {
        // Printable ASCII but the four separators passes as it is; the rest goes as %XX of its
        // UTF-8 bytes (Foundation encodes every non-ASCII character).
        let allowed = CharacterSet(charactersIn: " !\"#$'()*+,-./0123456789:;<>@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}
