import Testing
@testable import KVMScopeLibvirt

@Suite struct LibvirtAddressTests {
    @Test func theDefaultURIIsLeftOut() throws {
        let a = try LibvirtAddress(domain: "vm1", uri: nil)
        #expect(a.uri == "qemu:///system")
        #expect(a.description == "libvirt:vm1")
        #expect(try LibvirtAddress(parsing: "libvirt:vm1") == a)
    }

    @Test func nameAndURIRoundTripThroughTheStateFile() throws {
        // A name with the separators and a URI with a query of its own, '@' and '%'.
        let a = try LibvirtAddress(domain: "web?1&x=2 100%", uri: "qemu+ssh://root@host/system?socket=/run/libvirt/libvirt-sock&x=%41")
        #expect(a.description.hasPrefix("libvirt:web%3F1%26x%3D2 100%25?connect="))
        #expect(try LibvirtAddress(parsing: a.description) == a)
        let b = try LibvirtAddress(domain: "väst-01", uri: "test:///default")
        #expect(b.description == "libvirt:v%C3%A4st-01?connect=test:///default")
        #expect(try LibvirtAddress(parsing: b.description) == b)
    }

    @Test func malformedAddressesAreRefused() {
        for text in ["libvirt:", "libvirt:vm?foo=bar", "unix:/run/vm.qmp", "libvirt:%zz", "libvirt:vm?connect="] {
            #expect(throws: LibvirtError.self, "\(text)") { _ = try LibvirtAddress(parsing: text) }
        }
        #expect(throws: LibvirtError.self) { _ = try LibvirtAddress(domain: String(repeating: "x", count: 2000), uri: nil) }
        #expect(LibvirtAddress.isLibvirt("libvirt:vm1"))
        #expect(!LibvirtAddress.isLibvirt("unix:/x"))
    }
}
