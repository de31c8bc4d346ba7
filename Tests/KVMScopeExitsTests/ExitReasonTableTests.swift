import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeTracefs
@testable import KVMScopeExits

@Suite struct ExitReasonTableTests {
    static var fixtures: String {
        TestFixtures.path("exits")
    }

    /// Every `{ n, "NAME" }` of a __print_symbolic table in a tracepoint format file.
    static func symbols(_ text: Substring) -> [(UInt32, String)] {
        var out: [(UInt32, String)] = []
        let regex = try! NSRegularExpression(pattern: #"\{\s*(-?[0-9a-fx+ ]+?)\s*,\s*"([^"]+)"\s*\}"#)
        let s = String(text)
        for m in regex.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
            let expr = String(s[Range(m.range(at: 1), in: s)!]).replacingOccurrences(of: " ", with: "")
            let value = expr.split(separator: "+").reduce(UInt32(0)) { acc, term in
                let t = String(term)
                if t == "-1" { return 0xffff_ffff }
                return acc + (t.hasPrefix("0x") ? UInt32(t.dropFirst(2), radix: 16)! : UInt32(t)!)
            }
            out.append((value, String(s[Range(m.range(at: 2), in: s)!])))
        }
        return out
    }

    /// The tables equal the ones compiled into linux 6.18.44's kvm_exit (its format file, read
    /// from this machine's tracefs).
    @Test func tablesMatchTheKernelsPrintFmt() throws {
        let text = try String(contentsOfFile: Self.fixtures + "/linux-6.18.44-kvm_exit.format", encoding: .utf8)
        let fmt = text[text.range(of: "print fmt:")!.upperBound...]
        let vmxPart = fmt[fmt.range(of: "exit_reason & 0xffff,")!.upperBound..<fmt.range(of: ") : __print_symbolic")!.lowerBound]
        let svmStart = fmt.range(of: ") : __print_symbolic(REC->exit_reason,")!.upperBound
        let svmPart = fmt[svmStart..<fmt.range(of: "), (REC->isa == 1 && REC->exit_reason")!.lowerBound]
        let vmx = Self.symbols(vmxPart), svm = Self.symbols(svmPart)
        #expect(vmx.count == 65 && svm.count == 110)
        for (n, name) in vmx { #expect(ExitReasonTable.vmx[n] == name, "VMX \(n)") }
        for (n, name) in svm { #expect(ExitReasonTable.svm[n] == name, "SVM \(n)") }
        #expect(ExitReasonTable.svm.count == svm.count)
        #expect(ExitReasonTable.vmx.count == vmx.count + 2)   // + ENCLV, SGX_CONFLICT of older kernels
    }

    @Test func namesFlagsAndPluginNames() {
        #expect(ExitReasonTable.name(isa: .vmx, exitReason: 48) == "EPT_VIOLATION")
        #expect(ExitReasonTable.name(isa: .vmx, exitReason: 0x8000_0021) == "INVALID_STATE FAILED_VMENTRY")
        #expect(ExitReasonTable.name(isa: .vmx, exitReason: 99) == "0x63")
        #expect(ExitReasonTable.name(isa: .svm, exitReason: 0xffff_ffff) == "invalid_guest_state")
        #expect(ExitReasonTable.kernelName(forPluginName: "EXIT_NPF") == "npf")
        #expect(ExitReasonTable.kernelName(forPluginName: "EXIT_EXCP_PF") == "PF excp")
        #expect(ExitReasonTable.kernelName(forPluginName: "EXIT_VMMCALL") == "hypercall")
        #expect(ExitReasonTable.kernelName(forPluginName: "EXIT_MWAIT_COND") == "EXIT_MWAIT_COND")
        #expect(ExitReasonTable.kernelName(forPluginName: "HLT") == nil)
    }
}
