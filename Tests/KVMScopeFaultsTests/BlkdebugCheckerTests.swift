import Testing
import KVMScopeTestSupport
import KVMScopeCore
@testable import KVMScopeFaults

@Suite struct BlkdebugCheckerTests {
    func check(_ text: String, _ target: BlkdebugChecker.Target = .qemu(.raw), size: Int64? = nil) -> [RuleDiagnostic] {
        let parsed = BlkdebugConfigReader().parse(text, file: "r.cfg")
        #expect(!parsed.hasErrors)
        return BlkdebugChecker(target: target, imageSize: size).check(parsed.config)
    }

    @Test func stateNoSetStateReachesIsFlagged() {
        let d = check("[inject-error]\nevent = \"read_aio\"\nstate = \"3\"\n[set-state]\nevent = \"write_aio\"\nstate = \"1\"\nnew_state = \"2\"\n")
        #expect(d.map(\.code) == ["unreachable-state"] && d[0].location?.line == 1)
        // 1 → 2 → 3 makes state 3 reachable.
        let ok = check("[inject-error]\nevent = \"read_aio\"\nstate = \"3\"\n[set-state]\nevent = \"write_aio\"\nstate = \"1\"\nnew_state = \"2\"\n[set-state]\nevent = \"write_aio\"\nstate = \"2\"\nnew_state = \"3\"\n")
        #expect(ok.isEmpty)
        #expect(BlkdebugChecker.reachableStates(BlkdebugConfigReader().parse("[set-state]\nevent = \"none\"\nstate = \"5\"\nnew_state = \"6\"\n").config) == [1])
    }

    @Test func sectorRulesOnFlushes() {
        let never = check("[inject-error]\nevent = \"flush_to_disk\"\niotype = \"flush\"\nsector = \"8\"\n")
        #expect(never.map(\.code) == ["sector-on-flush"] && never[0].message.contains("can never match"))
        let later = check("[inject-error]\nevent = \"flush_to_disk\"\nsector = \"8\"\n")
        #expect(later.map(\.code) == ["sector-on-flush"])
        #expect(later[0].message.contains("only fails later read/write/write-zeroes/discard requests covering sector 8"))
    }

    @Test func errnosTheGuestCannotSee() {
        let d = check("[inject-error]\nevent = \"none\"\nerrno = \"22\"\n[inject-error]\nevent = \"none\"\nerrno = \"28\"\n[inject-error]\nevent = \"none\"\nerrno = \"0\"\n[inject-error]\nevent = \"none\"\nerrno = \"5\"\n")
        #expect(d.map(\.code) == ["errno-invisible", "errno-enospc", "errno-zero"])
        #expect(d[0].message.contains("EINVAL") && d[0].message.contains("as EINVAL"))
        #expect(d[1].severity == .note)
    }

    @Test func qcow2EventsOnARawImage() {
        #expect(check("[inject-error]\nevent = \"l2_load\"\n", .qemu(.raw)).map(\.code) == ["format-event-on-raw"])
        #expect(check("[inject-error]\nevent = \"l2_load\"\n", .qemu(.unknown)).map { "\($0.code)/\($0.severity)" } == ["format-event/note"])
        #expect(check("[inject-error]\nevent = \"l2_load\"\n", .qemu(.qcow2)).isEmpty)
        let mine = check("[inject-error]\nevent = \"l2_load\"\n[inject-error]\nevent = \"pwritev_rmw_head\"\n", .kvmscope)
        #expect(mine.filter { $0.code == "event-not-here" }.count == 2 && mine.allSatisfy { $0.code != "event-not-here" || $0.severity == .error })
    }

    @Test func rulesArmedByDifferentEventsReplaceEachOther() {
        let d = check("[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\n[inject-error]\nevent = \"read_aio\"\niotype = \"read\"\n")
        #expect(d.map(\.code) == ["arming-replaces"] && d[0].location?.line == 5)
        #expect(d[0].message.contains("once read_aio fires, the rules armed by none are no longer active"))
    }

    @Test func sectorBeyondTheImage() {
        #expect(check("[inject-error]\nevent = \"none\"\nsector = \"131072\"\n", size: 64 << 20).map(\.code) == ["sector-beyond-image"])
        #expect(check("[inject-error]\nevent = \"none\"\nsector = \"131071\"\n", size: 64 << 20).isEmpty)
    }

    @Test func blockdevOptionsHaveQEMUsKeys() {
        let config = BlkdebugConfigReader().parse("[inject-error]\nevent = \"none\"\niotype = \"write\"\nsector = \"2048\"\nonce = \"on\"\n[set-state]\nevent = \"write_aio\"\nstate = \"1\"\nnew_state = \"2\"\n").config
        #expect(BlockdevOptions.blkdebug(config) ==
            "-blockdev driver=blkdebug,node-name=blkdebug0,image=file0,inject-error.0.event=none,inject-error.0.iotype=write,inject-error.0.errno=5,inject-error.0.sector=2048,inject-error.0.once=on,set-state.0.event=write_aio,set-state.0.state=1,set-state.0.new_state=2")
    }
}
