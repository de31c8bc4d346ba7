import Foundation
import Testing
@testable import KVMScopeLibvirt

/// `watch --libvirt`'s connection against libvirt's own test driver (in-process, no daemon):
/// the real library's statistics, XML and refusals.
@Suite struct LibvirtHostConnectionTests {
    @Test func theTestDriversDomainIsListedWithItsStateAndItRefusesQMPEvents() throws {
        let host = try LibvirtHostConnection(uri: "test:///default")
        defer { host.close() }
        guard case let .unavailable(why) = host.qmpEvents else { Issue.record("the test driver has no QMP events"); return }
        #expect(why.hasPrefix("this libvirt driver has no QMP events"))
        let all = try host.allDomainStats()
        let test = try #require(all.first { $0.name == "test" })
        #expect(test.state == 1, "VIR_DOMAIN_RUNNING")
        #expect(test.uuid.count == 36)
        #expect(LibvirtDomainState.runState(state: test.state, reason: test.reason).running)
        _ = try host.diskNames(uuid: test.uuid)
        #expect(try host.takeEvents(waiting: 0) == [])
    }

    @Test func aReadOnlyConnectionHasNoQMPEventsButStatistics() throws {
        let host = try LibvirtHostConnection(uri: "test:///default", readOnly: true)
        defer { host.close() }
        guard case let .unavailable(why) = host.qmpEvents else { Issue.record("subscribed on a read-only connection"); return }
        #expect(why.hasPrefix("libvirt refuses QMP events on a read-only connection"))
        #expect(try host.allDomainStats().contains { $0.name == "test" })
    }

    @Test func aClosedConnectionSaysSo() throws {
        let host = try LibvirtHostConnection(uri: "test:///default")
        host.close()
        #expect(throws: LibvirtError.connectionLost(uri: "test:///default", reason: "closed")) { _ = try host.allDomainStats() }
        #expect(throws: LibvirtError.connectionLost(uri: "test:///default", reason: "closed by kvmscope")) { _ = try host.takeEvents(waiting: 0) }
    }

    @Test func aDaemonThatIsNotThere() {
        let uri = "qemu+unix:///system?socket=/nonexistent/kvmscope-test/libvirt-sock"
        do {
            _ = try LibvirtURIConnector(uri: uri).open()
            Issue.record("connected to nothing")
        } catch {
            guard case let .cannotConnect(u, _)? = error as? LibvirtError else { Issue.record("\(error)"); return }
            #expect(u == uri)
        }
    }
}
