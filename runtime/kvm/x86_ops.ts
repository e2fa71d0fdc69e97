/**
 * `kvm_x86_ops`: the vendor module's operations, declared once (arch/x86/include/asm/kvm-x86-ops.h).
 * `vmxX86Ops` (runtime/vmx/vmx.ts) is the one implementation today; a hardware tier over /dev/kvm
 * would be another.
 */
import type { KvmModule } from "./kvm_main.ts";
import type { Vcpu as KvmVcpu } from "./vcpu.ts";

export interface KvmX86Ops {
  readonly name: string;
  /** Probe the "hardware" and build the VMCS configuration; throws when a required control is missing. */
  hardwareSetup(mod: KvmModule): void;
  /** Create the vendor part of a vCPU (allocVmcs), then set it up (vmxVcpuSetup). */
  vcpuCreate(vcpu: KvmVcpu): void;
  /** Enter the guest and return at the next VM exit. */
  run(vcpu: KvmVcpu): void;
  /**
   * Handle the last VM exit.
   * @returns 1 to re-enter the guest, 0 to return to userspace with kvm_run filled
   */
  handleExit(vcpu: KvmVcpu): number;
  /** Advance RIP past the instruction that exited (kvm_skip_emulated_instruction). */
  skipEmulatedInstruction(vcpu: KvmVcpu): void;
  /** Queue an exception for injection at the next entry. */
  queueException(vcpu: KvmVcpu, vector: number, errorCode?: number): void;
  /** Program the next entry to deliver external interrupt `vector` (vmx_inject_irq). */
  injectIrq(vcpu: KvmVcpu, vector: number): void;
  /** Whether the guest can take an external interrupt now: IF=1, no STI or MOV SS blocking. */
  interruptAllowed(vcpu: KvmVcpu): boolean;
  /** Exit as soon as the guest can take an interrupt (interrupt-window exiting). */
  enableIrqWindow(vcpu: KvmVcpu): void;
}
