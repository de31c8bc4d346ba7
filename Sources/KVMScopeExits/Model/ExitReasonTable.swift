/// Which hardware virtualization a kvm_exit came from: the tracepoint's `isa` field
/// (KVM_ISA_VMX = 1, KVM_ISA_SVM = 2), which selects the table its `exit_reason` is decoded with.
enum ExitISA: String, Codable, Sendable {
    case vmx = "VMX"   // Intel
    case svm = "SVM"   // AMD (and Hygon)
}

/// VMX basic exit reasons and SVM exit codes, named as the kernel's kvm_exit tracepoint prints
/// them (`VMX_EXIT_REASONS` in arch/x86/include/uapi/asm/vmx.h, `SVM_EXIT_REASONS` in
/// arch/x86/include/uapi/asm/svm.h), plus libtraceevent's plugin_kvm names (`EXIT_NPF`), which
/// `trace-cmd report` prints for AMD. Used to decode the numbers of `trace-cmd report -R` and to
/// map plugin names onto the kernel's, so that one reason has one name whatever the input.
///
/// The entries are those of the symbol tables in the print fmt of linux 6.18's kvm_exit
/// (Tests/Fixtures/exits/linux-6.18.44-kvm_exit.format, checked by a test), plus
/// numbers older kernels named and 6.18 no longer does.
enum ExitReasonTable {
    /// VMX basic exit reason (low 16 bits of exit_reason) → name.
    public static let vmx: [UInt32: String] = {
        var t: [UInt32: String] = [:]
        for (n, s) in vmxEntries { t[n] = s }
        for (n, s) in vmxRetired where t[n] == nil { t[n] = s }
        return t
    }()

    /// SVM exit code → name.
    public static let svm: [UInt32: String] = {
        var t: [UInt32: String] = [:]
        for (n, s) in svmEntries { t[n] = s }
        return t
    }()

    /// The bit of a VMX exit_reason the kernel prints as ` FAILED_VMENTRY` after the name.
    public static let vmxFailedVMEntry: UInt32 = 0x8000_0000

    /// Name for a raw `exit_reason` as the kernel prints it: VMX reasons use the low 16 bits and
    /// append flag names; unknown numbers print as the kernel's __print_symbolic does (`0x..`).
    public static func name(isa: ExitISA, exitReason: UInt32) -> String {
        switch isa {
        case .vmx:
            let basic = exitReason & 0xffff
            var s = vmx[basic] ?? "0x\(String(basic, radix: 16))"
            if exitReason & vmxFailedVMEntry != 0 { s += " FAILED_VMENTRY" }
            return s
        case .svm:
            return svm[exitReason] ?? "0x\(String(exitReason, radix: 16))"
        }
    }

    /// The kernel's name for a libtraceevent plugin_kvm name (`EXIT_NPF` → `npf`,
    /// `EXIT_EXCP_PF` → `PF excp`, `PENDING_INTERRUPT` stays). Nil when not a plugin SVM name.
    public static func kernelName(forPluginName plugin: String) -> String? {
        guard let code = pluginSVM[plugin] else { return nil }
        return svm[code] ?? plugin     // EXIT_MWAIT_COND: the kernel has no name for 0x08c
    }

    /// VMX reasons as in linux 6.18 (numbers 0...85, gaps are reserved numbers).
    static let vmxEntries: [(UInt32, String)] = [
        (0, "EXCEPTION_NMI"),
        (1, "EXTERNAL_INTERRUPT"),
        (2, "TRIPLE_FAULT"),
        (3, "INIT_SIGNAL"),
        (4, "SIPI_SIGNAL"),
        (7, "INTERRUPT_WINDOW"),
        (8, "NMI_WINDOW"),
        (9, "TASK_SWITCH"),
        (10, "CPUID"),
        (12, "HLT"),
        (13, "INVD"),
        (14, "INVLPG"),
        (15, "RDPMC"),
        (16, "RDTSC"),
        (18, "VMCALL"),
        (19, "VMCLEAR"),
        (20, "VMLAUNCH"),
        (21, "VMPTRLD"),
        (22, "VMPTRST"),
        (23, "VMREAD"),
        (24, "VMRESUME"),
        (25, "VMWRITE"),
        (26, "VMOFF"),
        (27, "VMON"),
        (28, "CR_ACCESS"),
        (29, "DR_ACCESS"),
        (30, "IO_INSTRUCTION"),
        (31, "MSR_READ"),
        (32, "MSR_WRITE"),
        (33, "INVALID_STATE"),
        (34, "MSR_LOAD_FAIL"),
        (36, "MWAIT_INSTRUCTION"),
        (37, "MONITOR_TRAP_FLAG"),
        (39, "MONITOR_INSTRUCTION"),
        (40, "PAUSE_INSTRUCTION"),
        (41, "MCE_DURING_VMENTRY"),
        (43, "TPR_BELOW_THRESHOLD"),
        (44, "APIC_ACCESS"),
        (45, "EOI_INDUCED"),
        (46, "GDTR_IDTR"),
        (47, "LDTR_TR"),
        (48, "EPT_VIOLATION"),
        (49, "EPT_MISCONFIG"),
        (50, "INVEPT"),
        (51, "RDTSCP"),
        (52, "PREEMPTION_TIMER"),
        (53, "INVVPID"),
        (54, "WBINVD"),
        (55, "XSETBV"),
        (56, "APIC_WRITE"),
        (57, "RDRAND"),
        (58, "INVPCID"),
        (59, "VMFUNC"),
        (60, "ENCLS"),
        (61, "RDSEED"),
        (62, "PML_FULL"),
        (63, "XSAVES"),
        (64, "XRSTORS"),
        (67, "UMWAIT"),
        (68, "TPAUSE"),
        (74, "BUS_LOCK"),
        (75, "NOTIFY"),
        (77, "TDCALL"),
        (84, "MSR_READ_IMM"),
        (85, "MSR_WRITE_IMM"),
    ]

    /// Numbers older kernels named that 6.18's table no longer lists (SGX, removed in 5.x):
    /// kept so old `-R` traces still decode. 7 was `PENDING_INTERRUPT` before 5.9.
    static let vmxRetired: [(UInt32, String)] = [
        (70, "ENCLV"),
        (71, "SGX_CONFLICT"),
    ]

    /// SVM exit codes as in linux 6.18 (`-1`, SVM_EXIT_ERR, is 0xffffffff in the u32 field).
    static let svmEntries: [(UInt32, String)] = [
        (0x000, "read_cr0"),
        (0x002, "read_cr2"),
        (0x003, "read_cr3"),
        (0x004, "read_cr4"),
        (0x008, "read_cr8"),
        (0x010, "write_cr0"),
        (0x012, "write_cr2"),
        (0x013, "write_cr3"),
        (0x014, "write_cr4"),
        (0x018, "write_cr8"),
        (0x020, "read_dr0"),
        (0x021, "read_dr1"),
        (0x022, "read_dr2"),
        (0x023, "read_dr3"),
        (0x024, "read_dr4"),
        (0x025, "read_dr5"),
        (0x026, "read_dr6"),
        (0x027, "read_dr7"),
        (0x030, "write_dr0"),
        (0x031, "write_dr1"),
        (0x032, "write_dr2"),
        (0x033, "write_dr3"),
        (0x034, "write_dr4"),
        (0x035, "write_dr5"),
        (0x036, "write_dr6"),
        (0x037, "write_dr7"),
        (0x040, "DE excp"),
        (0x041, "DB excp"),
        (0x043, "BP excp"),
        (0x044, "OF excp"),
        (0x045, "BR excp"),
        (0x046, "UD excp"),
        (0x047, "NM excp"),
        (0x048, "DF excp"),
        (0x04a, "TS excp"),
        (0x04b, "NP excp"),
        (0x04c, "SS excp"),
        (0x04d, "GP excp"),
        (0x04e, "PF excp"),
        (0x050, "MF excp"),
        (0x051, "AC excp"),
        (0x052, "MC excp"),
        (0x053, "XF excp"),
        (0x060, "interrupt"),
        (0x061, "nmi"),
        (0x062, "smi"),
        (0x063, "init"),
        (0x064, "vintr"),
        (0x065, "cr0_sel_write"),
        (0x066, "read_idtr"),
        (0x067, "read_gdtr"),
        (0x068, "read_ldtr"),
        (0x069, "read_rt"),
        (0x06a, "write_idtr"),
        (0x06b, "write_gdtr"),
        (0x06c, "write_ldtr"),
        (0x06d, "write_rt"),
        (0x06e, "rdtsc"),
        (0x06f, "rdpmc"),
        (0x070, "pushf"),
        (0x071, "popf"),
        (0x072, "cpuid"),
        (0x073, "rsm"),
        (0x074, "iret"),
        (0x075, "swint"),
        (0x076, "invd"),
        (0x077, "pause"),
        (0x078, "hlt"),
        (0x079, "invlpg"),
        (0x07a, "invlpga"),
        (0x07b, "io"),
        (0x07c, "msr"),
        (0x07d, "task_switch"),
        (0x07e, "ferr_freeze"),
        (0x07f, "shutdown"),
        (0x080, "vmrun"),
        (0x081, "hypercall"),
        (0x082, "vmload"),
        (0x083, "vmsave"),
        (0x084, "stgi"),
        (0x085, "clgi"),
        (0x086, "skinit"),
        (0x087, "rdtscp"),
        (0x088, "icebp"),
        (0x089, "wbinvd"),
        (0x08a, "monitor"),
        (0x08b, "mwait"),
        (0x08d, "xsetbv"),
        (0x08f, "write_efer_trap"),
        (0x090, "write_cr0_trap"),
        (0x094, "write_cr4_trap"),
        (0x098, "write_cr8_trap"),
        (0x0a2, "invpcid"),
        (0x0a5, "buslock"),
        (0x0a6, "idle-halt"),
        (0x400, "npf"),
        (0x401, "avic_incomplete_ipi"),
        (0x402, "avic_unaccelerated_access"),
        (0x403, "vmgexit"),
        (0x80000001, "vmgexit_mmio_read"),
        (0x80000002, "vmgexit_mmio_write"),
        (0x80000003, "vmgexit_nmi_complete"),
        (0x80000004, "vmgexit_ap_hlt_loop"),
        (0x80000005, "vmgexit_ap_jump_table"),
        (0x80000010, "vmgexit_page_state_change"),
        (0x80000011, "vmgexit_guest_request"),
        (0x80000012, "vmgexit_ext_guest_request"),
        (0x80000013, "vmgexit_ap_creation"),
        (0x8000fffd, "vmgexit_hypervisor_feature"),
        (0xffffffff, "invalid_guest_state"),
    ]

    /// libtraceevent plugins/plugin_kvm.c SVM_EXIT_REASONS: its own names for the SVM codes.
    static let pluginSVM: [String: UInt32] = [
        "EXIT_READ_CR0": 0x000, "EXIT_READ_CR3": 0x003, "EXIT_READ_CR4": 0x004, "EXIT_READ_CR8": 0x008,
        "EXIT_WRITE_CR0": 0x010, "EXIT_WRITE_CR3": 0x013, "EXIT_WRITE_CR4": 0x014, "EXIT_WRITE_CR8": 0x018,
        "EXIT_READ_DR0": 0x020, "EXIT_READ_DR1": 0x021, "EXIT_READ_DR2": 0x022, "EXIT_READ_DR3": 0x023,
        "EXIT_READ_DR4": 0x024, "EXIT_READ_DR5": 0x025, "EXIT_READ_DR6": 0x026, "EXIT_READ_DR7": 0x027,
        "EXIT_WRITE_DR0": 0x030, "EXIT_WRITE_DR1": 0x031, "EXIT_WRITE_DR2": 0x032, "EXIT_WRITE_DR3": 0x033,
        "EXIT_WRITE_DR4": 0x034, "EXIT_WRITE_DR5": 0x035, "EXIT_WRITE_DR6": 0x036, "EXIT_WRITE_DR7": 0x037,
        "EXIT_EXCP_DE": 0x040, "EXIT_EXCP_DB": 0x041, "EXIT_EXCP_BP": 0x043, "EXIT_EXCP_OF": 0x044,
        "EXIT_EXCP_BR": 0x045, "EXIT_EXCP_UD": 0x046, "EXIT_EXCP_NM": 0x047, "EXIT_EXCP_DF": 0x048,
        "EXIT_EXCP_TS": 0x04a, "EXIT_EXCP_NP": 0x04b, "EXIT_EXCP_SS": 0x04c, "EXIT_EXCP_GP": 0x04d,
        "EXIT_EXCP_PF": 0x04e, "EXIT_EXCP_MF": 0x050, "EXIT_EXCP_AC": 0x051, "EXIT_EXCP_MC": 0x052,
        "EXIT_EXCP_XF": 0x053, "EXIT_INTR": 0x060, "EXIT_NMI": 0x061, "EXIT_SMI": 0x062, "EXIT_INIT": 0x063,
        "EXIT_VINTR": 0x064, "EXIT_CR0_SEL_WRITE": 0x065, "EXIT_IDTR_READ": 0x066, "EXIT_GDTR_READ": 0x067,
        "EXIT_LDTR_READ": 0x068, "EXIT_TR_READ": 0x069, "EXIT_IDTR_WRITE": 0x06a, "EXIT_GDTR_WRITE": 0x06b,
        "EXIT_LDTR_WRITE": 0x06c, "EXIT_TR_WRITE": 0x06d, "EXIT_RDTSC": 0x06e, "EXIT_RDPMC": 0x06f,
        "EXIT_PUSHF": 0x070, "EXIT_POPF": 0x071, "EXIT_CPUID": 0x072, "EXIT_RSM": 0x073, "EXIT_IRET": 0x074,
        "EXIT_SWINT": 0x075, "EXIT_INVD": 0x076, "EXIT_PAUSE": 0x077, "EXIT_HLT": 0x078, "EXIT_INVLPG": 0x079,
        "EXIT_INVLPGA": 0x07a, "EXIT_IOIO": 0x07b, "EXIT_MSR": 0x07c, "EXIT_TASK_SWITCH": 0x07d,
        "EXIT_FERR_FREEZE": 0x07e, "EXIT_SHUTDOWN": 0x07f, "EXIT_VMRUN": 0x080, "EXIT_VMMCALL": 0x081,
        "EXIT_VMLOAD": 0x082, "EXIT_VMSAVE": 0x083, "EXIT_STGI": 0x084, "EXIT_CLGI": 0x085, "EXIT_SKINIT": 0x086,
        "EXIT_RDTSCP": 0x087, "EXIT_ICEBP": 0x088, "EXIT_WBINVD": 0x089, "EXIT_MONITOR": 0x08a,
        "EXIT_MWAIT": 0x08b, "EXIT_MWAIT_COND": 0x08c, "EXIT_XSETBV": 0x08d, "EXIT_NPF": 0x400,
        "EXIT_AVIC_INCOMPLETE_IPI": 0x401, "EXIT_AVIC_UNACCELERATED_ACCESS": 0x402, "EXIT_ERR": 0xffff_ffff,
    ]
}
