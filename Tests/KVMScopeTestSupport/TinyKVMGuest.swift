import Foundation

/// A real KVM guest of ten bytes of real-mode code (`out` to the serial port twice, `hlt`), run
/// through /dev/kvm from this thread: it makes the kernel fire KVM tracepoints (kvm_pio,
/// kvm_userspace_exit, and kvm_exit/kvm_entry where the host's KVM emits them) attributed to
/// this process, so the live recorder can be tested end to end.
public enum TinyKVMGuest {
    static let createVM: UInt = 0xAE01, createVCPU: UInt = 0xAE41, vcpuMmapSize: UInt = 0xAE04, run: UInt = 0xAE80
    static let setMemoryRegion: UInt = 0x4020_AE46, getSregs: UInt = 0x8138_AE83, setSregs: UInt = 0x4138_AE84
    static let setRegs: UInt = 0x4090_AE82

    /// Runs the guest `times` times; returns the number of port writes it made (0: KVM unusable).
    public static func run(times: Int = 5) -> Int {
        let kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard kvm >= 0 else { return 0 }
        defer { close(kvm) }
        var writes = 0
        for _ in 0..<times { writes += runOnce(kvm) }
        return writes
    }

    private static func runOnce(_ kvm: Int32) -> Int {
        let vm = ioctl(kvm, createVM, 0)
        guard vm >= 0 else { return 0 }
        defer { close(vm) }
        let memSize = 0x10000
        guard let mem = mmap(nil, memSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mem != MAP_FAILED else { return 0 }
        defer { munmap(mem, memSize) }
        // mov dx,0x3f8; mov al,'A'; out dx,al; mov al,10; out dx,al; hlt
        let code: [UInt8] = [0xba, 0xf8, 0x03, 0xb0, 0x41, 0xee, 0xb0, 0x0a, 0xee, 0xf4]
        code.withUnsafeBytes { (mem + 0x1000).copyMemory(from: $0.baseAddress!, byteCount: code.count) }
        // struct kvm_userspace_memory_region { u32 slot, flags; u64 guest_phys_addr, memory_size, userspace_addr; }
        var region = [UInt64](repeating: 0, count: 4)
        region[1] = 0; region[2] = UInt64(memSize); region[3] = UInt64(UInt(bitPattern: mem))
        guard region.withUnsafeMutableBytes({ ioctl(vm, setMemoryRegion, $0.baseAddress!) }) == 0 else { return 0 }
        let vcpu = ioctl(vm, createVCPU, 0)
        guard vcpu >= 0 else { return 0 }
        defer { close(vcpu) }
        let runSize = Int(ioctl(kvm, vcpuMmapSize, 0))
        guard runSize > 0, let runArea = mmap(nil, runSize, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0),
              runArea != MAP_FAILED else { return 0 }
        defer { munmap(runArea, runSize) }
        var sregs = [UInt8](repeating: 0, count: 0x138)
        guard sregs.withUnsafeMutableBytes({ ioctl(vcpu, getSregs, $0.baseAddress!) }) == 0 else { return 0 }
        sregs.withUnsafeMutableBytes { p in     // cs.base = 0, cs.selector = 0
            p.storeBytes(of: UInt64(0), toByteOffset: 0, as: UInt64.self)
            p.storeBytes(of: UInt16(0), toByteOffset: 12, as: UInt16.self)
        }
        guard sregs.withUnsafeMutableBytes({ ioctl(vcpu, setSregs, $0.baseAddress!) }) == 0 else { return 0 }
        var regs = [UInt64](repeating: 0, count: 18)
        regs[16] = 0x1000   // rip
        regs[17] = 0x2      // rflags
        guard regs.withUnsafeMutableBytes({ ioctl(vcpu, setRegs, $0.baseAddress!) }) == 0 else { return 0 }
        var writes = 0
        for _ in 0..<10 {
            guard ioctl(vcpu, run, 0) == 0 else { break }
            let exitReason = runArea.load(fromByteOffset: 8, as: UInt32.self)
            if exitReason == 2 { writes += 1; continue }   // KVM_EXIT_IO
            break                                          // KVM_EXIT_HLT or anything else
        }
        return writes
    }
}
