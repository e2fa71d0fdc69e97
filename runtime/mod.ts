/**
 * vmxlab's runtime: a KVM-shaped API over an emulated VMX processor, and the `Machine` VMM.
 *
 * The classic KVM hello, driven exactly as a C program drives /dev/kvm:
 *
 * @example
 * ```ts
 * import { Kvm, KvmExit } from "./mod.ts";
 *
 * const kvm = await Kvm.open();
 * const vm = kvm.createVm();
 * vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x1000, memorySize: 0x1000 });
 * // mov dx,0x3f8; add al,bl; add al,'0'; out dx,al; mov al,'\n'; out dx,al; hlt
 * vm.writeGuest(0x1000, new Uint8Array([0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4]));
 * const vcpu = vm.createVcpu(0);
 * const sregs = vcpu.getSregs();
 * sregs.cs.base = 0;
 * sregs.cs.selector = 0;
 * vcpu.setSregs(sregs);
 * vcpu.setRegs({ rip: 0x1000, rax: 2, rbx: 2, rflags: 0x2 });
 * let out = "";
 * for (;;) {
 *   const run = vcpu.run();
 *   if (run.exitReason === KvmExit.IO) out += String.fromCharCode(run.data[run.io.dataOffset]);
 *   else if (run.exitReason === KvmExit.HLT) break;
 *   else throw new Error(`unexpected exit ${run.exitReason}`);
 * }
 * // out === "4\n"
 * ```
 * @module
 */
import "./vmx/vmx.ts"; // loads the vendor module (vmxX86Ops) so Kvm.open() can initialise it
export { Kvm, KvmError, KvmModule, Vm, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, type UserMemoryRegion } from "./kvm/kvm_main.ts";
export { Vcpu, type KvmRegs, type KvmSregs, type KvmSegment, type VmxExitHook } from "./kvm/vcpu.ts";
export { KvmExit, KvmRun, kvmExitName, toVcpuExit, type VcpuExit, KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT } from "./kvm/kvm_run.ts";
export { type CpuidEntry, defaultCpuid } from "./kvm/x86.ts";
export { Tracer, type TraceEvent } from "./kvm/trace.ts";
export { ExitReason, VmcsField, Vmcs, EXIT_REASON_NAMES } from "./cpu/vmcs.ts";
export { defaultVmxCapabilities, type VmxCapabilities } from "./cpu/vmx_capabilities.ts";
export { kvmVmxExitHandlers, vmxModuleState } from "./vmx/vmx.ts";
export { Machine, MachineError, type MachineOptions, type RunResult, type HookContext } from "./vmm/machine.ts";
export { DebugCon, I8254, I8259Pair, PioBus, PostCodePort, Uart16550, type PioDevice } from "./devices/mod.ts";
