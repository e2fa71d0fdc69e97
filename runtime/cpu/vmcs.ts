/**
 * The VMCS, as the processor defines it: field encodings from the SDM (appendix B), the control
 * bits the processor honours (SDM 24.6–24.8), exit reasons (appendix C) and exit-information
 * formats (SDM 27.2). KVM's vmx layer (`runtime/vmx`) reads and writes it through `Vmcs`.
 *
 * Guest-state fields are not copied on each exit: the processor keeps the guest state in its
 * state block while the VMCS is current (as silicon caches it), and `Vmcs.read` of a guest-state
 * field reads the live state through the `GuestStateAccess` the vCPU binds.
 */

/** VMCS field encodings (SDM appendix B). */
export const VmcsField = {
  // 16-bit control and guest-state fields
  VIRTUAL_PROCESSOR_ID: 0x0000,
  GUEST_ES_SELECTOR: 0x0800, GUEST_CS_SELECTOR: 0x0802, GUEST_SS_SELECTOR: 0x0804, GUEST_DS_SELECTOR: 0x0806,
  GUEST_FS_SELECTOR: 0x0808, GUEST_GS_SELECTOR: 0x080a, GUEST_LDTR_SELECTOR: 0x080c, GUEST_TR_SELECTOR: 0x080e,
  HOST_ES_SELECTOR: 0x0c00, HOST_CS_SELECTOR: 0x0c02, HOST_SS_SELECTOR: 0x0c04, HOST_DS_SELECTOR: 0x0c06,
  HOST_FS_SELECTOR: 0x0c08, HOST_GS_SELECTOR: 0x0c0a, HOST_TR_SELECTOR: 0x0c0c,
  // 64-bit fields
  IO_BITMAP_A: 0x2000, IO_BITMAP_B: 0x2002, MSR_BITMAP: 0x2004, VM_EXIT_MSR_STORE_ADDR: 0x2006,
  VM_EXIT_MSR_LOAD_ADDR: 0x2008, VM_ENTRY_MSR_LOAD_ADDR: 0x200a, TSC_OFFSET: 0x2010,
  VIRTUAL_APIC_PAGE_ADDR: 0x2012, EPT_POINTER: 0x201a, GUEST_PHYSICAL_ADDRESS: 0x2400,
  VMCS_LINK_POINTER: 0x2800, GUEST_IA32_DEBUGCTL: 0x2802, GUEST_IA32_PAT: 0x2804, GUEST_IA32_EFER: 0x2806,
  HOST_IA32_PAT: 0x2c00, HOST_IA32_EFER: 0x2c02,
  // 32-bit control fields
  PIN_BASED_VM_EXEC_CONTROL: 0x4000, CPU_BASED_VM_EXEC_CONTROL: 0x4002, EXCEPTION_BITMAP: 0x4004,
  PAGE_FAULT_ERROR_CODE_MASK: 0x4006, PAGE_FAULT_ERROR_CODE_MATCH: 0x4008, CR3_TARGET_COUNT: 0x400a,
  VM_EXIT_CONTROLS: 0x400c, VM_EXIT_MSR_STORE_COUNT: 0x400e, VM_EXIT_MSR_LOAD_COUNT: 0x4010,
  VM_ENTRY_CONTROLS: 0x4012, VM_ENTRY_MSR_LOAD_COUNT: 0x4014, VM_ENTRY_INTR_INFO_FIELD: 0x4016,
  VM_ENTRY_EXCEPTION_ERROR_CODE: 0x4018, VM_ENTRY_INSTRUCTION_LEN: 0x401a, TPR_THRESHOLD: 0x401c,
  SECONDARY_VM_EXEC_CONTROL: 0x401e,
  // 32-bit read-only data fields
  VM_INSTRUCTION_ERROR: 0x4400, EXIT_REASON: 0x4402, VM_EXIT_INTR_INFO: 0x4404, VM_EXIT_INTR_ERROR_CODE: 0x4406,
  IDT_VECTORING_INFO_FIELD: 0x4408, IDT_VECTORING_ERROR_CODE: 0x440a, VM_EXIT_INSTRUCTION_LEN: 0x440c,
  VMX_INSTRUCTION_INFO: 0x440e,
  // 32-bit guest-state fields
  GUEST_ES_LIMIT: 0x4800, GUEST_CS_LIMIT: 0x4802, GUEST_SS_LIMIT: 0x4804, GUEST_DS_LIMIT: 0x4806,
  GUEST_FS_LIMIT: 0x4808, GUEST_GS_LIMIT: 0x480a, GUEST_LDTR_LIMIT: 0x480c, GUEST_TR_LIMIT: 0x480e,
  GUEST_GDTR_LIMIT: 0x4810, GUEST_IDTR_LIMIT: 0x4812,
  GUEST_ES_AR_BYTES: 0x4814, GUEST_CS_AR_BYTES: 0x4816, GUEST_SS_AR_BYTES: 0x4818, GUEST_DS_AR_BYTES: 0x481a,
  GUEST_FS_AR_BYTES: 0x481c, GUEST_GS_AR_BYTES: 0x481e, GUEST_LDTR_AR_BYTES: 0x4820, GUEST_TR_AR_BYTES: 0x4822,
  GUEST_INTERRUPTIBILITY_INFO: 0x4824, GUEST_ACTIVITY_STATE: 0x4826, GUEST_SYSENTER_CS: 0x482a,
  VMX_PREEMPTION_TIMER_VALUE: 0x482e,
  HOST_IA32_SYSENTER_CS: 0x4c00,
  // natural-width fields
  CR0_GUEST_HOST_MASK: 0x6000, CR4_GUEST_HOST_MASK: 0x6002, CR0_READ_SHADOW: 0x6004, CR4_READ_SHADOW: 0x6006,
  EXIT_QUALIFICATION: 0x6400, IO_RCX: 0x6402, IO_RSI: 0x6404, IO_RDI: 0x6406, IO_RIP: 0x6408,
  GUEST_LINEAR_ADDRESS: 0x640a,
  GUEST_CR0: 0x6800, GUEST_CR3: 0x6802, GUEST_CR4: 0x6804,
  GUEST_ES_BASE: 0x6806, GUEST_CS_BASE: 0x6808, GUEST_SS_BASE: 0x680a, GUEST_DS_BASE: 0x680c,
  GUEST_FS_BASE: 0x680e, GUEST_GS_BASE: 0x6810, GUEST_LDTR_BASE: 0x6812, GUEST_TR_BASE: 0x6814,
  GUEST_GDTR_BASE: 0x6816, GUEST_IDTR_BASE: 0x6818, GUEST_DR7: 0x681a, GUEST_RSP: 0x681c, GUEST_RIP: 0x681e,
  GUEST_RFLAGS: 0x6820, GUEST_PENDING_DBG_EXCEPTIONS: 0x6822, GUEST_SYSENTER_ESP: 0x6824, GUEST_SYSENTER_EIP: 0x6826,
  HOST_CR0: 0x6c00, HOST_CR3: 0x6c02, HOST_CR4: 0x6c04, HOST_FS_BASE: 0x6c06, HOST_GS_BASE: 0x6c08,
  HOST_TR_BASE: 0x6c0a, HOST_GDTR_BASE: 0x6c0c, HOST_IDTR_BASE: 0x6c0e, HOST_IA32_SYSENTER_ESP: 0x6c10,
  HOST_IA32_SYSENTER_EIP: 0x6c12, HOST_RSP: 0x6c14, HOST_RIP: 0x6c16,
} as const;
export type VmcsFieldName = keyof typeof VmcsField;

/** Pin-based VM-execution controls (SDM 24.6.1). */
export const PinBased = { EXT_INTR_EXITING: 1 << 0, NMI_EXITING: 1 << 3, VIRTUAL_NMIS: 1 << 5, PREEMPTION_TIMER: 1 << 6 } as const;
/** Primary processor-based VM-execution controls (SDM 24.6.2, table 24-6). */
export const CpuBased = {
  INTR_WINDOW_EXITING: 1 << 2, USE_TSC_OFFSETTING: 1 << 3, HLT_EXITING: 1 << 7, INVLPG_EXITING: 1 << 9,
  MWAIT_EXITING: 1 << 10, RDPMC_EXITING: 1 << 11, RDTSC_EXITING: 1 << 12, CR3_LOAD_EXITING: 1 << 15,
  CR3_STORE_EXITING: 1 << 16, CR8_LOAD_EXITING: 1 << 19, CR8_STORE_EXITING: 1 << 20, TPR_SHADOW: 1 << 21,
  NMI_WINDOW_EXITING: 1 << 22, MOV_DR_EXITING: 1 << 23, UNCOND_IO_EXITING: 1 << 24, USE_IO_BITMAPS: 1 << 25,
  MONITOR_TRAP_FLAG: 1 << 27, USE_MSR_BITMAPS: 1 << 28, MONITOR_EXITING: 1 << 29, PAUSE_EXITING: 1 << 30,
  ACTIVATE_SECONDARY_CONTROLS: 1 << 31,
} as const;
/** Secondary processor-based VM-execution controls (SDM 24.6.2, table 24-7). */
export const CpuBased2 = {
  VIRTUALIZE_APIC_ACCESSES: 1 << 0, ENABLE_EPT: 1 << 1, DESC_TABLE_EXITING: 1 << 2, ENABLE_RDTSCP: 1 << 3,
  ENABLE_VPID: 1 << 5, WBINVD_EXITING: 1 << 6, UNRESTRICTED_GUEST: 1 << 7,
} as const;
/** VM-exit controls (SDM 24.7.1). */
export const ExitCtl = {
  SAVE_DEBUG_CONTROLS: 1 << 2, HOST_ADDR_SPACE_SIZE: 1 << 9, ACK_INTR_ON_EXIT: 1 << 15, SAVE_IA32_PAT: 1 << 18,
  LOAD_IA32_PAT: 1 << 19, SAVE_IA32_EFER: 1 << 20, LOAD_IA32_EFER: 1 << 21, SAVE_PREEMPTION_TIMER: 1 << 22,
} as const;
/** VM-entry controls (SDM 24.8.1). */
export const EntryCtl = { LOAD_DEBUG_CONTROLS: 1 << 2, IA32E_MODE: 1 << 9, LOAD_IA32_PAT: 1 << 14, LOAD_IA32_EFER: 1 << 15 } as const;

/** Basic VM-exit reasons (SDM appendix C). */
export const ExitReason = {
  EXCEPTION_NMI: 0, EXTERNAL_INTERRUPT: 1, TRIPLE_FAULT: 2, INIT_SIGNAL: 3, SIPI: 4, INTERRUPT_WINDOW: 7,
  NMI_WINDOW: 8, TASK_SWITCH: 9, CPUID: 10, GETSEC: 11, HLT: 12, INVD: 13, INVLPG: 14, RDPMC: 15, RDTSC: 16,
  RSM: 17, VMCALL: 18, VMCLEAR: 19, VMLAUNCH: 20, VMPTRLD: 21, VMPTRST: 22, VMREAD: 23, VMRESUME: 24,
  VMWRITE: 25, VMOFF: 26, VMON: 27, CR_ACCESS: 28, DR_ACCESS: 29, IO_INSTRUCTION: 30, MSR_READ: 31,
  MSR_WRITE: 32, INVALID_STATE: 33, MSR_LOAD_FAIL: 34, MWAIT_INSTRUCTION: 36, MONITOR_TRAP_FLAG: 37,
  MONITOR_INSTRUCTION: 39, PAUSE_INSTRUCTION: 40, MCE_DURING_VMENTRY: 41, TPR_BELOW_THRESHOLD: 43,
  APIC_ACCESS: 44, GDTR_IDTR: 46, LDTR_TR: 47, EPT_VIOLATION: 48, EPT_MISCONFIG: 49, INVEPT: 50, RDTSCP: 51,
  PREEMPTION_TIMER: 52, INVVPID: 53, WBINVD: 54, XSETBV: 55,
} as const;
export type ExitReasonName = keyof typeof ExitReason;
export const EXIT_REASON_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(ExitReason).map(([k, v]) => [v, k]),
);
/** Bit 31 of EXIT_REASON: the VM entry failed (SDM 24.9.1). */
export const EXIT_REASON_FAILED_VMENTRY = 0x80000000;

/** Exit-qualification bits for I/O instructions (SDM 27.2.1, table 27-5). */
export const IoQual = { SIZE_MASK: 7, IN: 1 << 3, STRING: 1 << 4, REP: 1 << 5, IMM: 1 << 6, PORT_SHIFT: 16 } as const;
/** The exit qualification of an I/O instruction without its port (SDM table 27-5). */
export function ioQualBits(size: number, isIn: boolean, string: boolean, rep: boolean, immediate: boolean): number {
  return (size - 1) | (isIn ? IoQual.IN : 0) | (string ? IoQual.STRING : 0) | (rep ? IoQual.REP : 0) | (immediate ? IoQual.IMM : 0);
}
/** Exit-qualification bits for EPT violations (SDM 27.2.1, table 27-7). */
export const EptQual = { READ: 1, WRITE: 2, FETCH: 4, GLA_VALID: 1 << 7, GLA_TRANSLATED: 1 << 8 } as const;
/** VM-exit interruption-information format (SDM 24.9.2). */
export const IntrInfo = {
  VECTOR_MASK: 0xff, TYPE_SHIFT: 8, TYPE_EXT_INTR: 0, TYPE_NMI: 2, TYPE_HW_EXCEPTION: 3, TYPE_SOFT_INTR: 4,
  TYPE_PRIV_SOFT_EXCEPTION: 5, TYPE_SOFT_EXCEPTION: 6, ERROR_CODE_VALID: 1 << 11, VALID: 1 << 31,
} as const;

/** VMX capability MSRs that report the allowed settings of the controls (SDM appendix A). */
export const VmxMsr = {
  IA32_FEATURE_CONTROL: 0x3a, IA32_VMX_BASIC: 0x480, IA32_VMX_PINBASED_CTLS: 0x481,
  IA32_VMX_PROCBASED_CTLS: 0x482, IA32_VMX_EXIT_CTLS: 0x483, IA32_VMX_ENTRY_CTLS: 0x484, IA32_VMX_MISC: 0x485,
  IA32_VMX_CR0_FIXED0: 0x486, IA32_VMX_CR0_FIXED1: 0x487, IA32_VMX_CR4_FIXED0: 0x488, IA32_VMX_CR4_FIXED1: 0x489,
  IA32_VMX_VMCS_ENUM: 0x48a, IA32_VMX_PROCBASED_CTLS2: 0x48b, IA32_VMX_EPT_VPID_CAP: 0x48c,
} as const;

/** A guest-state accessor: the vCPU's live state, which guest-state fields read through. */
export interface GuestStateAccess {
  readGuestField(encoding: number): number | undefined;
  writeGuestField(encoding: number, value: number): boolean;
}

/** Field width from the encoding (SDM B.1): 0 16-bit, 1 64-bit, 2 32-bit, 3 natural width. */
export function vmcsFieldWidth(encoding: number): 16 | 32 | 64 {
  const w = (encoding >> 13) & 3;
  return w === 0 ? 16 : w === 2 ? 32 : 64;
}
/** Field type from the encoding (SDM B.1): 0 control, 1 VM-exit information, 2 guest state, 3 host state. */
export function vmcsFieldType(encoding: number): 0 | 1 | 2 | 3 {
  return ((encoding >> 10) & 3) as 0 | 1 | 2 | 3;
}

const KNOWN_FIELDS = new Set<number>(Object.values(VmcsField));
const FIELD_NAMES: Record<number, string> = Object.fromEntries(Object.entries(VmcsField).map(([k, v]) => [v, k]));
export function vmcsFieldName(encoding: number): string {
  return FIELD_NAMES[encoding] ?? `0x${encoding.toString(16)}`;
}

/** Thrown on VMREAD/VMWRITE of a field this processor does not support (VM-instruction error 12). */
export class VmcsError extends Error {
  constructor(readonly kind: "unsupported-field" | "read-only", message: string) {
    super(message);
    this.name = "VmcsError";
  }
}

/** What `Vmcs.saveState` keeps. */
export interface VmcsState {
  revisionId: number;
  launched: boolean;
  fields: [number, number][];
  exitReason: number;
  exitQualification: number;
  exitInstructionLen: number;
  exitIntrInfo: number;
  exitIntrErrorCode: number;
  guestLinearAddress: number;
  guestPhysicalAddress: number;
  vmxInstructionInfo: number;
  idtVectoringInfo: number;
  pinBasedCtl: number;
  cpuBasedCtl: number;
  exceptionBitmap: number;
  exitCtl: number;
  entryIntrInfo: number;
  preemptionTimerValue: number;
  tscOffset: number;
  hotWritten: number;
}

/**
 * One VMCS region. Control, host-state and exit-information fields live here; guest-state fields
 * go to the bound guest state. Values are numbers; 64-bit fields hold values up to 2^53 exactly.
 */
export class Vmcs {
  /** The revision identifier from IA32_VMX_BASIC, written by allocVmcsCpu as vmx.c does. */
  revisionId = 0;
  /** VMCLEAR'd (launch state "clear") or launched (SDM 24.11.3). */
  launched = false;
  private readonly fields = new Map<number, number>();
  guest: GuestStateAccess | null = null;

  // Exit-information fields are written by the processor on every exit; plain properties keep
  // that write cheap on the OUT path.
  exitReason = 0;
  exitQualification = 0;
  exitInstructionLen = 0;
  exitIntrInfo = 0;
  exitIntrErrorCode = 0;
  guestLinearAddress = 0;
  guestPhysicalAddress = 0;
  vmxInstructionInfo = 0;
  idtVectoringInfo = 0;

  // Hot fields: read or written at every VM entry or exit (the controls the processor checks, the
  // injection field, the preemption timer the budget programs) or by every RDTSC (TSC_OFFSET).
  // They live in plain properties instead of the field map; VMREAD and VMWRITE reach them through
  // their encodings like any other field, and the processor and KVM's run path use them directly.
  /** PIN_BASED_VM_EXEC_CONTROL. */
  pinBasedCtl = 0;
  /** CPU_BASED_VM_EXEC_CONTROL. */
  cpuBasedCtl = 0;
  /** EXCEPTION_BITMAP. */
  exceptionBitmap = 0;
  /** VM_EXIT_CONTROLS. */
  exitCtl = 0;
  /** VM_ENTRY_INTR_INFO_FIELD. */
  entryIntrInfo = 0;
  /** VMX_PREEMPTION_TIMER_VALUE (a guest-state field: writing it does not bump `version`). */
  preemptionTimerValue = 0;
  /** TSC_OFFSET. */
  tscOffset = 0;
  /** Which hot fields have been written (bit per field, in the order above), for `storedFields`. */
  private hotWritten = 0;

  /** Bumped by every VMWRITE of a control field, so the processor re-reads its controls only after a change. */
  version = 0;

  /** The region's contents (the guest-state fields are the processor's: `Cpu.saveState`). */
  saveState(): VmcsState {
    const { revisionId, launched, exitReason, exitQualification, exitInstructionLen, exitIntrInfo, exitIntrErrorCode,
      guestLinearAddress, guestPhysicalAddress, vmxInstructionInfo, idtVectoringInfo, pinBasedCtl, cpuBasedCtl,
      exceptionBitmap, exitCtl, entryIntrInfo, preemptionTimerValue, tscOffset, hotWritten } = this;
    return {
      revisionId, launched, fields: [...this.fields], exitReason, exitQualification, exitInstructionLen, exitIntrInfo,
      exitIntrErrorCode, guestLinearAddress, guestPhysicalAddress, vmxInstructionInfo, idtVectoringInfo, pinBasedCtl,
      cpuBasedCtl, exceptionBitmap, exitCtl, entryIntrInfo, preemptionTimerValue, tscOffset, hotWritten,
    };
  }
  restoreState(s: VmcsState): void {
    ({
      revisionId: this.revisionId, launched: this.launched, exitReason: this.exitReason,
      exitQualification: this.exitQualification, exitInstructionLen: this.exitInstructionLen,
      exitIntrInfo: this.exitIntrInfo, exitIntrErrorCode: this.exitIntrErrorCode,
      guestLinearAddress: this.guestLinearAddress, guestPhysicalAddress: this.guestPhysicalAddress,
      vmxInstructionInfo: this.vmxInstructionInfo, idtVectoringInfo: this.idtVectoringInfo,
      pinBasedCtl: this.pinBasedCtl, cpuBasedCtl: this.cpuBasedCtl, exceptionBitmap: this.exceptionBitmap,
      exitCtl: this.exitCtl, entryIntrInfo: this.entryIntrInfo, preemptionTimerValue: this.preemptionTimerValue,
      tscOffset: this.tscOffset, hotWritten: this.hotWritten,
    } = s);
    this.fields.clear();
    for (const [k, v] of s.fields) this.fields.set(k, v);
    this.version++; // the controls changed under the processor
  }

  /** VMREAD. */
  read(encoding: number): number {
    switch (encoding) {
      case VmcsField.PIN_BASED_VM_EXEC_CONTROL: return this.pinBasedCtl;
      case VmcsField.CPU_BASED_VM_EXEC_CONTROL: return this.cpuBasedCtl;
      case VmcsField.EXCEPTION_BITMAP: return this.exceptionBitmap;
      case VmcsField.VM_EXIT_CONTROLS: return this.exitCtl;
      case VmcsField.VM_ENTRY_INTR_INFO_FIELD: return this.entryIntrInfo;
      case VmcsField.VMX_PREEMPTION_TIMER_VALUE: return this.preemptionTimerValue;
      case VmcsField.TSC_OFFSET: return this.tscOffset;
      case VmcsField.EXIT_REASON: return this.exitReason;
      case VmcsField.EXIT_QUALIFICATION: return this.exitQualification;
      case VmcsField.VM_EXIT_INSTRUCTION_LEN: return this.exitInstructionLen;
      case VmcsField.VM_EXIT_INTR_INFO: return this.exitIntrInfo;
      case VmcsField.VM_EXIT_INTR_ERROR_CODE: return this.exitIntrErrorCode;
      case VmcsField.GUEST_LINEAR_ADDRESS: return this.guestLinearAddress;
      case VmcsField.GUEST_PHYSICAL_ADDRESS: return this.guestPhysicalAddress;
      case VmcsField.VMX_INSTRUCTION_INFO: return this.vmxInstructionInfo;
      case VmcsField.IDT_VECTORING_INFO_FIELD: return this.idtVectoringInfo;
    }
    const type = (encoding >> 10) & 3;
    if (type === 0 || type === 3) {
      // Other control and host-state fields.
      const v = this.fields.get(encoding);
      if (v !== undefined) return v;
    }
    if (!KNOWN_FIELDS.has(encoding)) {
      throw new VmcsError("unsupported-field", `Cannot read VMCS field ${vmcsFieldName(encoding)}: unsupported component`);
    }
    if (vmcsFieldType(encoding) === 2 && this.guest) {
      const v = this.guest.readGuestField(encoding);
      if (v !== undefined) return v;
    }
    return this.fields.get(encoding) ?? 0;
  }

  /** VMWRITE. Exit-information fields are read-only (SDM 30.3, VMWRITE). */
  write(encoding: number, value: number): void {
    // Hot fields first (all known, writable; 32-bit but TSC_OFFSET, 64-bit). Control fields bump `version`.
    switch (encoding) {
      case VmcsField.PIN_BASED_VM_EXEC_CONTROL: this.pinBasedCtl = value >>> 0; this.hotWritten |= 1; this.version++; return;
      case VmcsField.CPU_BASED_VM_EXEC_CONTROL: this.cpuBasedCtl = value >>> 0; this.hotWritten |= 2; this.version++; return;
      case VmcsField.EXCEPTION_BITMAP: this.exceptionBitmap = value >>> 0; this.hotWritten |= 4; this.version++; return;
      case VmcsField.VM_EXIT_CONTROLS: this.exitCtl = value >>> 0; this.hotWritten |= 8; this.version++; return;
      case VmcsField.VM_ENTRY_INTR_INFO_FIELD: this.entryIntrInfo = value >>> 0; this.hotWritten |= 16; this.version++; return;
      case VmcsField.VMX_PREEMPTION_TIMER_VALUE: this.preemptionTimerValue = value >>> 0; this.hotWritten |= 32; return;
      case VmcsField.TSC_OFFSET: this.tscOffset = value; this.hotWritten |= 64; this.version++; return;
    }
    if (!KNOWN_FIELDS.has(encoding)) {
      throw new VmcsError("unsupported-field", `Cannot write VMCS field ${vmcsFieldName(encoding)}: unsupported component`);
    }
    const type = vmcsFieldType(encoding);
    if (type === 1) {
      throw new VmcsError("read-only", `Cannot write VMCS field ${vmcsFieldName(encoding)}: VM-exit information fields are read-only`);
    }
    const width = vmcsFieldWidth(encoding);
    if (width === 16) value &= 0xffff;
    else if (width === 32) value >>>= 0;
    if (type === 2 && this.guest && this.guest.writeGuestField(encoding, value)) return;
    this.fields.set(encoding, value);
    // The processor caches control fields only; a guest-state field written at every entry must
    // not make it re-read them.
    if (type === 0) this.version++;
  }

  /** Fields stored in the region itself (controls, host state), for dumps and tests. */
  storedFields(): Map<number, number> {
    const out = new Map(this.fields);
    const hot: [number, number][] = [
      [VmcsField.PIN_BASED_VM_EXEC_CONTROL, this.pinBasedCtl], [VmcsField.CPU_BASED_VM_EXEC_CONTROL, this.cpuBasedCtl],
      [VmcsField.EXCEPTION_BITMAP, this.exceptionBitmap], [VmcsField.VM_EXIT_CONTROLS, this.exitCtl],
      [VmcsField.VM_ENTRY_INTR_INFO_FIELD, this.entryIntrInfo], [VmcsField.VMX_PREEMPTION_TIMER_VALUE, this.preemptionTimerValue],
      [VmcsField.TSC_OFFSET, this.tscOffset],
    ];
    hot.forEach(([enc, v], k) => { if (this.hotWritten & (1 << k)) out.set(enc, v); });
    return new Map([...out].sort((a, b) => a[0] - b[0]));
  }
}
