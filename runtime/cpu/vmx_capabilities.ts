/**
 * The emulated processor's VMX capability MSRs (SDM appendix A): what "hardware" this VMX
 * implementation offers. setupVmcsConfig derives the VMCS controls from them as vmx.c does.
 * Control MSRs report allowed-0 settings in bits 31:0 (a 1 means the control must be 1) and
 * allowed-1 settings in bits 63:32 (a 0 means the control must be 0).
 */
import * as vmcsMod from "./vmcs.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { CpuBased, CpuBased2, EntryCtl, ExitCtl, PinBased, VmxMsr } = vmcsMod;

export interface ControlCaps {
  /** Bits that must be 1 (allowed-0 settings, low dword). */
  allowed0: number;
  /** Bits that may be 1 (allowed-1 settings, high dword). */
  allowed1: number;
}

/** The capability MSRs of one emulated processor model. */
export interface VmxCapabilities {
  /** IA32_VMX_BASIC: revision id (bits 30:0) and VMCS region size (bits 44:32). */
  basic: { revisionId: number; vmcsSize: number };
  pinBased: ControlCaps;
  procBased: ControlCaps;
  procBased2: ControlCaps;
  exit: ControlCaps;
  entry: ControlCaps;
  /** IA32_VMX_MISC: bits 4:0 the preemption-timer rate (the timer ticks every 2^rate TSC ticks; the TSC counts instructions). */
  misc: { preemptionTimerRate: number };
  /** Number of logical processors the module allocates VMCS regions for. */
  cpus: number;
}

/** The default emulated processor: every control the emulator implements is allowed. */
export function defaultVmxCapabilities(): VmxCapabilities {
  // Default1 controls (SDM A.2–A.5): bits reserved as 1 on processors without the TRUE_* MSRs.
  const PIN_DEFAULT1 = 0x16;
  const PROC_DEFAULT1 = 0x0401e172;
  const EXIT_DEFAULT1 = 0x00036dff;
  const ENTRY_DEFAULT1 = 0x000011ff;
  return {
    basic: { revisionId: 0x12, vmcsSize: 4096 },
    pinBased: {
      allowed0: PIN_DEFAULT1,
      allowed1: PIN_DEFAULT1 | PinBased.EXT_INTR_EXITING | PinBased.NMI_EXITING | PinBased.VIRTUAL_NMIS | PinBased.PREEMPTION_TIMER,
    },
    procBased: {
      allowed0: PROC_DEFAULT1,
      allowed1: PROC_DEFAULT1 | CpuBased.INTR_WINDOW_EXITING | CpuBased.USE_TSC_OFFSETTING | CpuBased.HLT_EXITING |
        CpuBased.INVLPG_EXITING | CpuBased.MWAIT_EXITING | CpuBased.RDPMC_EXITING | CpuBased.RDTSC_EXITING |
        CpuBased.CR3_LOAD_EXITING | CpuBased.CR3_STORE_EXITING | CpuBased.CR8_LOAD_EXITING | CpuBased.CR8_STORE_EXITING |
        CpuBased.NMI_WINDOW_EXITING | CpuBased.MOV_DR_EXITING | CpuBased.UNCOND_IO_EXITING | CpuBased.USE_IO_BITMAPS |
        CpuBased.USE_MSR_BITMAPS | CpuBased.MONITOR_EXITING | CpuBased.PAUSE_EXITING | CpuBased.ACTIVATE_SECONDARY_CONTROLS,
    },
    procBased2: {
      allowed0: 0,
      allowed1: CpuBased2.ENABLE_EPT | CpuBased2.ENABLE_VPID | CpuBased2.WBINVD_EXITING | CpuBased2.UNRESTRICTED_GUEST |
        CpuBased2.DESC_TABLE_EXITING,
    },
    exit: {
      allowed0: EXIT_DEFAULT1,
      allowed1: EXIT_DEFAULT1 | ExitCtl.HOST_ADDR_SPACE_SIZE | ExitCtl.ACK_INTR_ON_EXIT | ExitCtl.SAVE_IA32_PAT |
        ExitCtl.LOAD_IA32_PAT | ExitCtl.SAVE_IA32_EFER | ExitCtl.LOAD_IA32_EFER | ExitCtl.SAVE_PREEMPTION_TIMER,
    },
    entry: {
      allowed0: ENTRY_DEFAULT1,
      allowed1: ENTRY_DEFAULT1 | EntryCtl.IA32E_MODE | EntryCtl.LOAD_IA32_PAT | EntryCtl.LOAD_IA32_EFER,
    },
    misc: { preemptionTimerRate: 0 },
    cpus: 1,
  };
}

/** RDMSR of a capability MSR, as a bigint (what rdmsr() returns on hardware). */
export function readVmxMsr(caps: VmxCapabilities, msr: number): bigint | undefined {
  const ctl = (c: ControlCaps) => (BigInt(c.allowed1 >>> 0) << 32n) | BigInt(c.allowed0 >>> 0);
  switch (msr) {
    case VmxMsr.IA32_VMX_BASIC: return (BigInt(caps.basic.vmcsSize) << 32n) | BigInt(caps.basic.revisionId);
    case VmxMsr.IA32_VMX_PINBASED_CTLS: return ctl(caps.pinBased);
    case VmxMsr.IA32_VMX_PROCBASED_CTLS: return ctl(caps.procBased);
    case VmxMsr.IA32_VMX_PROCBASED_CTLS2: return ctl(caps.procBased2);
    case VmxMsr.IA32_VMX_EXIT_CTLS: return ctl(caps.exit);
    case VmxMsr.IA32_VMX_ENTRY_CTLS: return ctl(caps.entry);
    case VmxMsr.IA32_VMX_MISC: return BigInt(caps.misc.preemptionTimerRate & 31);
  }
  return undefined;
}
