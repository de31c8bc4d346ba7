import Testing
@testable import KVMScopeHost
import KVMScopeGuestLog

/// The reader counts styles in an array indexed by hand and folds it back in
/// `KernelLogStyle.allCases` order: the two must agree for every style, including styles the
/// guest-log domain adds later (journal JSON and export were added after this reader).
@Suite struct HostStyleIndexTests {
    @Test func styleIndexFollowsAllCasesOrder() {
        for (i, style) in KernelLogStyle.allCases.enumerated() {
            #expect(HostKernelLogReader.index(style) == i, "\(style)")
        }
    }
}
