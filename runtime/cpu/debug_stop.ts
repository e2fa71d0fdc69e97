/**
 * A debugger's stop before an instruction, as a #DB VM exit (EXIT_REASON 0 with a hardware-exception
 * #DB in the exit interruption information, SDM 27.2.2): what an instruction breakpoint in DR0–DR3
 * under KVM_GUESTDBG_USE_HW_BP gives, ending KVM_RUN with KVM_EXIT_DEBUG. Called from the processor's
 * `onInsn` hook, which runs before each instruction when set (and keeps the JIT's compiled code out
 * of the run): the instruction has not run, RIP points at it, and the instructions before it in its
 * block have retired.
 */
import type { Cpu } from "./cpu.ts";
import { VmExitSignal } from "./fault.ts";
import * as vmcsMod from "./vmcs.ts";

const { ExitReason, IntrInfo } = vmcsMod;

/** Stop the guest before the instruction `onInsn` was called for; never returns. */
export function debugStopBeforeInsn(cpu: Cpu): never {
  cpu.vmcs!.exitIntrInfo = (1 | (IntrInfo.TYPE_HW_EXCEPTION << IntrInfo.TYPE_SHIFT) | IntrInfo.VALID) >>> 0;
  cpu.recordExit(ExitReason.EXCEPTION_NMI, 0);
  throw VmExitSignal.instance;
}
