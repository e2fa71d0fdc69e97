/**
 * The VMX vendor module (arch/x86/kvm/vmx.c): module init, VMCS configuration from the capability
 * MSRs, per-CPU VMCS areas, vCPU creation and setup, VM entry, and the exit-handler table.
 */
import type { Cpu } from "../cpu/cpu.ts";
import * as stateMod from "../cpu/state.ts";
import * as vmcsMod from "../cpu/vmcs.ts";
import { type GuestStateAccess, Vmcs } from "../cpu/vmcs.ts";
import { KvmError, kvmInit, KvmModule, registerVendorModule } from "../kvm/kvm_main.ts";
import * as kvmRunMod from "../kvm/kvm_run.ts";
import type { Vcpu } from "../kvm/vcpu.ts";
import {
  kvmEmulateCpuid, kvmEmulateHalt, kvmReadTsc, kvmEmulateHypercall, kvmEmulatePio, kvmEmulatePioString, kvmEmulateRdmsr,
  kvmEmulateWrmsr,
} from "../kvm/x86.ts";
import type { KvmX86Ops } from "../kvm/x86_ops.ts";
import type { Tracer } from "../kvm/trace.ts";
import { type ControlCaps, defaultVmxCapabilities, type VmxCapabilities } from "../cpu/vmx_capabilities.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { Fl, Seg, SEG_ATTR, SEG_BASE, SEG_LIMIT, SEG_SEL, SEG_WORDS, St } = stateMod;
const { CpuBased, CpuBased2, EntryCtl, EXIT_REASON_NAMES, ExitCtl, ExitReason, IntrInfo, IoQual, PinBased, VmcsField } = vmcsMod;
const { KvmExit, KvmInternalError } = kvmRunMod;

/** What setupVmcsConfig settled on (struct vmcs_config). */
export interface VmcsConfig {
  size: number;
  revisionId: number;
  pinBasedExecCtrl: number;
  cpuBasedExecCtrl: number;
  cpuBased2ndExecCtrl: number;
  vmexitCtrl: number;
  vmentryCtrl: number;
}

/**
 * adjust_vmx_controls: required controls `min` and optional `opt`, against the capability MSR.
 * @throws KvmError("hardware") when a required control cannot be set
 */
function adjustVmxControls(
  min: number,
  opt: number,
  caps: ControlCaps,
  what: string,
  names: Readonly<Record<string, number>>,
): number {
  let ctl = min | opt;
  ctl &= caps.allowed1; // bit == 0 in high word ==> must be zero
  ctl |= caps.allowed0; // bit == 1 in low word  ==> must be one
  const missing = (min & ~ctl) >>> 0;
  if (missing) {
    throw new KvmError(
      "hardware",
      `Cannot load KVM: the processor lacks required ${what} controls ${controlNames(missing, names)} (0x${missing.toString(16)})`,
    );
  }
  return ctl >>> 0;
}
/** "HLT_EXITING, UNCOND_IO_EXITING": the SDM names of the bits set in `bits`. */
function controlNames(bits: number, names: Readonly<Record<string, number>>): string {
  const out: string[] = [];
  for (let b = 0; b < 32; b++) {
    const m = (1 << b) >>> 0;
    if (!((bits >>> 0) & m)) continue;
    const name = Object.keys(names).find((k) => names[k] >>> 0 === m);
    out.push(name ?? `bit ${b}`);
  }
  return out.join(", ");
}

/**
 * What this vendor module keeps per loaded module, private to it as vmx.c's statics are: the
 * processor's capabilities, vmcs_config from hardware setup, and vmxarea (a VMXON region per CPU).
 */
export interface VmxModuleState {
  caps: VmxCapabilities;
  vmcsConfig: VmcsConfig;
  vmxArea: Vmcs[];
}
const vmxModules = new WeakMap<KvmModule, VmxModuleState>();
/** This vendor module's state for a loaded module (tests and `--trace` read vmcs_config from it). */
export function vmxModuleState(mod: KvmModule): VmxModuleState {
  const s = vmxModules.get(mod);
  if (!s) throw new KvmError("hardware", "The module was not loaded by the VMX vendor module");
  return s;
}

/**
 * setup_vmcs_config: the controls KVM needs (required) and wants (optional). Beyond vmx.c's own
 * minimum, this emulator needs EPT and unrestricted guest (real-mode guests, memslots as EPT) and
 * the preemption timer (the instruction budget).
 */
export function setupVmcsConfig(mod: KvmModule, caps: VmxCapabilities): VmcsConfig {
  mod.initTrace.record("setupVmcsConfig");
  const pinMin = PinBased.EXT_INTR_EXITING | PinBased.NMI_EXITING | PinBased.PREEMPTION_TIMER;
  const pin = adjustVmxControls(pinMin, PinBased.VIRTUAL_NMIS, caps.pinBased, "pin-based", PinBased);
  const procMin = CpuBased.HLT_EXITING | CpuBased.UNCOND_IO_EXITING | CpuBased.USE_TSC_OFFSETTING |
    CpuBased.MOV_DR_EXITING | CpuBased.MWAIT_EXITING | CpuBased.MONITOR_EXITING | CpuBased.ACTIVATE_SECONDARY_CONTROLS;
  const procOpt = CpuBased.RDPMC_EXITING;
  let proc = adjustVmxControls(procMin, procOpt, caps.procBased, "processor-based", CpuBased);
  // MOV DR exiting and the IO/MSR bitmaps: we take every IO and MSR access, without bitmaps.
  proc &= ~(CpuBased.MOV_DR_EXITING | CpuBased.USE_IO_BITMAPS | CpuBased.USE_MSR_BITMAPS) | caps.procBased.allowed0;
  const proc2Min = CpuBased2.ENABLE_EPT | CpuBased2.UNRESTRICTED_GUEST;
  const proc2 = adjustVmxControls(proc2Min, CpuBased2.ENABLE_VPID | CpuBased2.WBINVD_EXITING, caps.procBased2, "secondary processor-based", CpuBased2);
  const exitCtl = adjustVmxControls(ExitCtl.SAVE_PREEMPTION_TIMER, ExitCtl.ACK_INTR_ON_EXIT | ExitCtl.SAVE_IA32_EFER | ExitCtl.LOAD_IA32_EFER, caps.exit, "VM-exit", ExitCtl);
  const entryCtl = adjustVmxControls(0, EntryCtl.LOAD_IA32_EFER, caps.entry, "VM-entry", EntryCtl);
  return {
    size: caps.basic.vmcsSize, revisionId: caps.basic.revisionId, pinBasedExecCtrl: pin, cpuBasedExecCtrl: proc >>> 0,
    cpuBased2ndExecCtrl: proc2, vmexitCtrl: exitCtl, vmentryCtrl: entryCtl,
  };
}

/** alloc_vmcs_cpu: one VMCS region stamped with the revision id. */
export function allocVmcsCpu(mod: KvmModule, cpu: number): Vmcs {
  mod.initTrace.record("allocVmcsCpu", { cpu });
  const v = new Vmcs();
  v.revisionId = vmxModuleState(mod).vmcsConfig.revisionId;
  return v;
}
/** alloc_kvm_area: a VMXON region per emulated processor. */
export function allocKvmArea(mod: KvmModule): void {
  const s = vmxModuleState(mod);
  mod.initTrace.record("allocKvmArea", { cpus: s.caps.cpus });
  s.vmxArea = [];
  for (let c = 0; c < s.caps.cpus; c++) s.vmxArea.push(allocVmcsCpu(mod, c));
}
/** hardware_setup (kvm_x86_ops->hardware_setup). */
function hardwareSetup(mod: KvmModule): void {
  mod.initTrace.record("hardwareSetup");
  const s = vmxModuleState(mod);
  s.vmcsConfig = setupVmcsConfig(mod, s.caps);
  mod.cpus = s.caps.cpus;
  allocKvmArea(mod);
}

/** vmx_init: load the vendor module on the given (or the default) emulated processor. */
export function vmxInit(caps: VmxCapabilities = defaultVmxCapabilities()): KvmModule {
  const mod = new KvmModule();
  vmxModules.set(mod, { caps, vmcsConfig: null as unknown as VmcsConfig, vmxArea: [] });
  mod.initTrace.record("vmxInit");
  kvmInit(mod, vmxX86Ops);
  return mod;
}
registerVendorModule(() => ({ vmxInit }));

// ---------------------------------------------------------------------------------------------
// vCPU creation
// ---------------------------------------------------------------------------------------------

/** The guest-state area of the VMCS, read through the live processor state (SDM 24.4). */
function guestStateOf(cpu: Cpu): GuestStateAccess {
  const segField = (enc: number, base: number) => (enc - base) >> 1;
  return {
    readGuestField(enc: number): number | undefined {
      const st = cpu.st;
      if (enc >= VmcsField.GUEST_ES_SELECTOR && enc <= VmcsField.GUEST_TR_SELECTOR) return cpu.getSegSel(segField(enc, VmcsField.GUEST_ES_SELECTOR));
      if (enc >= VmcsField.GUEST_ES_LIMIT && enc <= VmcsField.GUEST_TR_LIMIT) return cpu.getSegLimit(segField(enc, VmcsField.GUEST_ES_LIMIT));
      if (enc >= VmcsField.GUEST_ES_AR_BYTES && enc <= VmcsField.GUEST_TR_AR_BYTES) return cpu.getSegAttr(segField(enc, VmcsField.GUEST_ES_AR_BYTES));
      if (enc >= VmcsField.GUEST_ES_BASE && enc <= VmcsField.GUEST_TR_BASE) return cpu.getSegBase(segField(enc, VmcsField.GUEST_ES_BASE));
      switch (enc) {
        case VmcsField.GUEST_RIP: return st[St.RIP] >>> 0;
        case VmcsField.GUEST_RSP: return st[8] >>> 0;
        case VmcsField.GUEST_RFLAGS: return cpu.getFlags();
        case VmcsField.GUEST_CR0: return st[St.CR0] >>> 0;
        case VmcsField.GUEST_CR3: return st[St.CR3] >>> 0;
        case VmcsField.GUEST_CR4: return st[St.CR4] >>> 0;
        case VmcsField.GUEST_DR7: return st[St.DR + 14] >>> 0;
        case VmcsField.GUEST_GDTR_BASE: return st[St.GDTR_BASE] >>> 0;
        case VmcsField.GUEST_GDTR_LIMIT: return st[St.GDTR_LIMIT] & 0xffff;
        case VmcsField.GUEST_IDTR_BASE: return st[St.IDTR_BASE] >>> 0;
        case VmcsField.GUEST_IDTR_LIMIT: return st[St.IDTR_LIMIT] & 0xffff;
        case VmcsField.GUEST_INTERRUPTIBILITY_INFO: return st[St.INTERRUPTIBILITY];
        case VmcsField.GUEST_ACTIVITY_STATE: return st[St.ACTIVITY];
        case VmcsField.GUEST_IA32_EFER: return st[St.EFER] >>> 0;
        case VmcsField.GUEST_SYSENTER_CS: return st[St.SYSENTER_CS] >>> 0;
        case VmcsField.GUEST_SYSENTER_ESP: return st[St.SYSENTER_ESP] >>> 0;
        case VmcsField.GUEST_SYSENTER_EIP: return st[St.SYSENTER_EIP] >>> 0;
      }
      return undefined;
    },
    writeGuestField(enc: number, v: number): boolean {
      const st = cpu.st;
      const seg = (base: number, word: number) => {
        const s = segField(enc, base);
        st[St.SEG + s * SEG_WORDS + word] = v;
        cpu.refreshSeg(s);
        if (s === Seg.CS) cpu.linkEpoch++; // decoded blocks may no longer follow each other
        if (s === Seg.CS || s === Seg.SS) cpu.updateCpl();
        return true;
      };
      if (enc >= VmcsField.GUEST_ES_SELECTOR && enc <= VmcsField.GUEST_TR_SELECTOR) return seg(VmcsField.GUEST_ES_SELECTOR, SEG_SEL);
      if (enc >= VmcsField.GUEST_ES_LIMIT && enc <= VmcsField.GUEST_TR_LIMIT) return seg(VmcsField.GUEST_ES_LIMIT, SEG_LIMIT);
      if (enc >= VmcsField.GUEST_ES_AR_BYTES && enc <= VmcsField.GUEST_TR_AR_BYTES) return seg(VmcsField.GUEST_ES_AR_BYTES, SEG_ATTR);
      if (enc >= VmcsField.GUEST_ES_BASE && enc <= VmcsField.GUEST_TR_BASE) return seg(VmcsField.GUEST_ES_BASE, SEG_BASE);
      switch (enc) {
        case VmcsField.GUEST_RIP: st[St.RIP] = v; return true;
        case VmcsField.GUEST_RSP: st[8] = v; return true;
        case VmcsField.GUEST_RFLAGS: cpu.setFlags(v); return true;
        case VmcsField.GUEST_CR0: st[St.CR0] = v; cpu.refreshAllSegs(); cpu.flushTlb(); return true;
        case VmcsField.GUEST_CR3: st[St.CR3] = v; cpu.flushTlb(); return true;
        case VmcsField.GUEST_CR4: st[St.CR4] = v; cpu.flushTlb(); return true;
        case VmcsField.GUEST_DR7: st[St.DR + 14] = v; return true;
        case VmcsField.GUEST_GDTR_BASE: st[St.GDTR_BASE] = v; return true;
        case VmcsField.GUEST_GDTR_LIMIT: st[St.GDTR_LIMIT] = v; return true;
        case VmcsField.GUEST_IDTR_BASE: st[St.IDTR_BASE] = v; return true;
        case VmcsField.GUEST_IDTR_LIMIT: st[St.IDTR_LIMIT] = v; return true;
        case VmcsField.GUEST_INTERRUPTIBILITY_INFO: st[St.INTERRUPTIBILITY] = v; return true;
        case VmcsField.GUEST_ACTIVITY_STATE: st[St.ACTIVITY] = v; return true;
        case VmcsField.GUEST_IA32_EFER: st[St.EFER] = v; return true;
        case VmcsField.GUEST_SYSENTER_CS: st[St.SYSENTER_CS] = v; return true;
        case VmcsField.GUEST_SYSENTER_ESP: st[St.SYSENTER_ESP] = v; return true;
        case VmcsField.GUEST_SYSENTER_EIP: st[St.SYSENTER_EIP] = v; return true;
      }
      return false;
    },
  };
}

/** alloc_vmcs: a VMCS for the current CPU. */
function allocVmcs(vcpu: Vcpu): Vmcs {
  vcpu.vm.tracer?.record("allocVmcs");
  const mod = vcpu.vm.module;
  const t = vcpu.vm.tracer;
  if (t) t.record("allocVmcsCpu", { cpu: 0 });
  const v = new Vmcs();
  v.revisionId = vmxModuleState(mod).vmcsConfig.revisionId;
  return v;
}
/** vmx_create_vcpu (kvm_x86_ops->vcpu_create). */
function vmxCreateVcpu(vcpu: Vcpu): void {
  vcpu.vm.tracer?.record("vmxCreateVcpu", { id: vcpu.id });
  vcpu.vmcs = allocVmcs(vcpu);
  vcpu.vmcs.guest = guestStateOf(vcpu.cpu);
  vcpu.cpu.vmcs = vcpu.vmcs;
  vmxVcpuSetup(vcpu);
}
/** vmcs_writel: VMWRITE of a natural-width field (traced: it is on the seed's vCPU-setup path). */
export function vmcsWritel(vcpu: Vcpu, field: number, value: number): void {
  vcpu.vm.tracer?.record("vmcsWritel", { field: `0x${field.toString(16)}`, value });
  vcpu.vmcs.write(field, value);
}
/** guest_write_tsc: set TSC_OFFSET so the guest TSC reads `guestTsc` now. */
export function guestWriteTsc(vcpu: Vcpu, guestTsc: number): void {
  vcpu.vm.tracer?.record("guestWriteTsc", { guestTsc });
  vcpu.vmcs.write(VmcsField.TSC_OFFSET, guestTsc - vcpu.cpu.icount);
}
/** vmx_vcpu_setup: program the controls from vmcs_config and the initial guest state. */
function vmxVcpuSetup(vcpu: Vcpu): void {
  vcpu.vm.tracer?.record("vmxVcpuSetup");
  const cfg = vmxModuleState(vcpu.vm.module).vmcsConfig;
  const v = vcpu.vmcs;
  v.write(VmcsField.PIN_BASED_VM_EXEC_CONTROL, cfg.pinBasedExecCtrl & ~PinBased.PREEMPTION_TIMER);
  v.write(VmcsField.CPU_BASED_VM_EXEC_CONTROL, cfg.cpuBasedExecCtrl);
  v.write(VmcsField.SECONDARY_VM_EXEC_CONTROL, cfg.cpuBased2ndExecCtrl);
  v.write(VmcsField.VM_EXIT_CONTROLS, cfg.vmexitCtrl);
  v.write(VmcsField.VM_ENTRY_CONTROLS, cfg.vmentryCtrl);
  v.write(VmcsField.EXCEPTION_BITMAP, 0);
  v.write(VmcsField.PAGE_FAULT_ERROR_CODE_MASK, 0);
  v.write(VmcsField.PAGE_FAULT_ERROR_CODE_MATCH, 0);
  v.write(VmcsField.CR3_TARGET_COUNT, 0);
  v.write(VmcsField.VMCS_LINK_POINTER, 2 ** 53 - 1);
  // With EPT and unrestricted guest the guest owns CR0 and CR4: no bits are host-owned.
  vmcsWritel(vcpu, VmcsField.CR0_GUEST_HOST_MASK, 0);
  vmcsWritel(vcpu, VmcsField.CR4_GUEST_HOST_MASK, 0);
  vmcsWritel(vcpu, VmcsField.HOST_RIP, 0);
  guestWriteTsc(vcpu, 0);
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/** vmx_vcpu_run: program the preemption timer from the budget, VMRESUME, and account the exit. */
function vmxVcpuRun(vcpu: Vcpu): void {
  const t = vcpu.vm.tracer;
  if (t) traceVmxVcpuRun(t, vcpu);
  const v = vcpu.vmcs;
  const end = vcpu.budgetEnd;
  const pin = v.pinBasedCtl;
  if (end !== Infinity) {
    if (!(pin & PinBased.PREEMPTION_TIMER)) v.write(VmcsField.PIN_BASED_VM_EXEC_CONTROL, pin | PinBased.PREEMPTION_TIMER);
    // The timer ticks once per retired instruction (IA32_VMX_MISC rate 0 over an instruction-count
    // TSC). It is 32 bits wide: a longer budget runs in rounds (handlePreemptionTimer resumes).
    const left = end - vcpu.cpu.icount;
    v.write(VmcsField.VMX_PREEMPTION_TIMER_VALUE, left <= 0 ? 0 : left < 0xffffffff ? left : 0xffffffff);
  } else if (pin & PinBased.PREEMPTION_TIMER) {
    v.write(VmcsField.PIN_BASED_VM_EXEC_CONTROL, pin & ~PinBased.PREEMPTION_TIMER);
  }
  vcpu.cpu.vmEnter();
  v.launched = true;
  vcpu.vmxExitCounts[v.exitReason & 63]++;
}

// Trace points on the exit path build their arguments out of line: an object literal in the
// function itself would count against the JIT's inlining budget on every exit, traced or not.
function traceVmxVcpuRun(t: Tracer, vcpu: Vcpu): void {
  t.record("vmxVcpuRun", { rip: vcpu.cpu.eip });
}
function traceHandleIo(t: Tracer, q: number): void {
  const isIn = (q & IoQual.IN) !== 0;
  t.record("handleIo", { port: q >>> IoQual.PORT_SHIFT, size: (q & IoQual.SIZE_MASK) + 1, direction: isIn ? "in" : "out", string: (q & IoQual.STRING) !== 0 });
}
function traceVmxHandleExit(t: Tracer, reason: number, qualification: number): void {
  t.record("vmxHandleExit", { reason: EXIT_REASON_NAMES[reason] ?? reason, qualification });
}

/** kvm_skip_emulated_instruction: RIP += VM_EXIT_INSTRUCTION_LEN; the instruction retires. */
function skipEmulatedInstruction(vcpu: Vcpu): void {
  const cpu = vcpu.cpu;
  const len = vcpu.vmcs.exitInstructionLen;
  cpu.st[St.RIP] = (cpu.st[St.RIP] + len) & (cpu.code32 ? -1 : 0xffff);
  cpu.st[St.INTERRUPTIBILITY] = 0;
  cpu.retire(1);
  // A single-step trap after an instruction KVM emulated (kvm_vcpu_do_singlestep): #DB, DR6.BS.
  if (cpu.st[St.RFLAGS] & Fl.TF) {
    cpu.st[St.DR + 12] |= 0x4000;
    queueException(vcpu, 1);
  }
}

function queueException(vcpu: Vcpu, vector: number, errorCode = -1): void {
  vcpu.pendingEvent = { vector, errorCode, type: IntrInfo.TYPE_HW_EXCEPTION };
}
/** vmx_inject_irq: the next VM entry delivers external interrupt `vector` (SDM 24.8.3). */
function injectIrq(vcpu: Vcpu, vector: number): void {
  vcpu.vmcs.write(VmcsField.VM_ENTRY_INTR_INFO_FIELD, (vector | (IntrInfo.TYPE_EXT_INTR << IntrInfo.TYPE_SHIFT) | IntrInfo.VALID) >>> 0);
}
/** vmx_interrupt_allowed: RFLAGS.IF=1 and no blocking by STI or MOV SS (SDM 24.4.2). */
function interruptAllowed(vcpu: Vcpu): boolean {
  const st = vcpu.cpu.st;
  return (st[St.RFLAGS] & Fl.IF) !== 0 && (st[St.INTERRUPTIBILITY] & 3) === 0;
}
/** enable_irq_window: exit (reason 7) as soon as the guest can take an interrupt. */
function enableIrqWindow(vcpu: Vcpu): void {
  const v = vcpu.vmcs;
  const ctl = v.read(VmcsField.CPU_BASED_VM_EXEC_CONTROL);
  if (!(ctl & CpuBased.INTR_WINDOW_EXITING)) v.write(VmcsField.CPU_BASED_VM_EXEC_CONTROL, (ctl | CpuBased.INTR_WINDOW_EXITING) >>> 0);
}

// ---------------------------------------------------------------------------------------------
// Exit handlers. Contract (as vmx.c): return 1 to resume the guest, 0 to return to userspace
// with kvm_run filled.
// ---------------------------------------------------------------------------------------------

/** handle_io: decode the exit qualification (SDM table 27-5) and emulate the port access. */
export function handleIo(vcpu: Vcpu): number {
  const q = vcpu.vmcs.exitQualification;
  const size = (q & IoQual.SIZE_MASK) + 1;
  const isIn = (q & IoQual.IN) !== 0;
  const port = q >>> IoQual.PORT_SHIFT;
  const t = vcpu.vm.tracer;
  if (t) traceHandleIo(t, q);
  if (q & IoQual.STRING) return kvmEmulatePioString(vcpu, isIn, size, port, (q & IoQual.REP) !== 0);
  return kvmEmulatePio(vcpu, isIn, size, port);
}
function handleHalt(vcpu: Vcpu): number {
  return kvmEmulateHalt(vcpu);
}
function handleCpuid(vcpu: Vcpu): number {
  return kvmEmulateCpuid(vcpu);
}
function handleVmcall(vcpu: Vcpu): number {
  return kvmEmulateHypercall(vcpu);
}
function handleRdmsr(vcpu: Vcpu): number {
  return kvmEmulateRdmsr(vcpu);
}
function handleWrmsr(vcpu: Vcpu): number {
  return kvmEmulateWrmsr(vcpu);
}
/** handle_rdtsc (RDTSC exiting): the guest TSC is the instruction count plus TSC_OFFSET. */
function handleRdtsc(vcpu: Vcpu): number {
  const st = vcpu.cpu.st;
  const tsc = kvmReadTsc(vcpu);
  st[0] = tsc % 2 ** 32;
  st[4] = Math.floor(tsc / 2 ** 32);
  skipEmulatedInstruction(vcpu);
  return 1;
}
function handleInvd(vcpu: Vcpu): number {
  skipEmulatedInstruction(vcpu);
  return 1;
}
/**
 * handle_ept_violation: a guest-physical address without a memslot is MMIO. No in-kernel MMIO
 * device exists yet, so it goes to userspace as KVM_EXIT_MMIO; the processor restarts the
 * instruction on re-entry and consumes the completed access.
 */
function handleEptViolation(vcpu: Vcpu): number {
  const cpu = vcpu.cpu;
  const a = cpu.mmioPending;
  const t = vcpu.vm.tracer;
  if (t) t.record("handleEptViolation", { gpa: vcpu.vmcs.guestPhysicalAddress, write: a?.isWrite });
  if (!a) {
    vcpu.kvmRun.exitReason = KvmExit.INTERNAL_ERROR;
    vcpu.kvmRun.internal.suberror = KvmInternalError.EMULATION;
    vcpu.kvmRun.internal.data = [ExitReason.EPT_VIOLATION];
    return 0;
  }
  if (a.duringDelivery) {
    // MMIO while delivering an event (a descriptor table, TSS or page table outside RAM): nothing
    // can restart the delivery with the value, so KVM gives up with DELIVERY_EV, as vmx.c does
    // for an MMIO exit with valid IDT-vectoring information.
    cpu.mmioPending = null;
    vcpu.kvmRun.exitReason = KvmExit.INTERNAL_ERROR;
    vcpu.kvmRun.internal.suberror = KvmInternalError.DELIVERY_EV;
    vcpu.kvmRun.internal.data = [ExitReason.EPT_VIOLATION, a.gpa];
    return 0;
  }
  const run = vcpu.kvmRun;
  run.exitReason = KvmExit.MMIO;
  run.mmio.physAddr = a.gpa;
  run.mmio.len = a.size;
  run.mmio.isWrite = a.isWrite;
  run.mmio.data.fill(a.isWrite ? 0 : 0xff);
  if (a.isWrite) for (let b = 0; b < a.size; b++) run.mmio.data[b] = a.value >> (8 * b);
  vcpu.completeUserspaceIo = completeMmio;
  return 0;
}
function completeMmio(vcpu: Vcpu): number {
  const cpu = vcpu.cpu;
  const a = cpu.mmioPending!;
  cpu.mmioPending = null;
  let v = 0;
  if (!a.isWrite) for (let b = a.size - 1; b >= 0; b--) v = (v << 8) | vcpu.kvmRun.mmio.data[b];
  cpu.mmioLog.push({ gpa: a.gpa, size: a.size, isWrite: a.isWrite, value: a.isWrite ? a.value : a.size === 4 ? v : v & ((1 << (8 * a.size)) - 1) });
  return 1;
}
function handleTripleFault(vcpu: Vcpu): number {
  const d = vcpu.cpu.shutdownDetail;
  vcpu.vm.tracer?.record("handleTripleFault", { vectors: d?.vectors });
  const run = vcpu.kvmRun;
  run.exitReason = KvmExit.SHUTDOWN;
  run.shutdown.vectors = d?.vectors ?? [];
  run.shutdown.rip = d?.rip ?? vcpu.cpu.eip;
  run.shutdown.bytes = d?.bytes ?? [];
  vcpu.shutDown = true;
  return 0;
}
/** handle_exception_nmi: an exception whose bit is set in EXCEPTION_BITMAP. */
function handleExceptionNmi(vcpu: Vcpu): number {
  const info = vcpu.vmcs.exitIntrInfo;
  const vector = info & IntrInfo.VECTOR_MASK;
  const run = vcpu.kvmRun;
  vcpu.vm.tracer?.record("handleExceptionNmi", { vector });
  if (vector === 1 || vector === 3) {
    run.exitReason = KvmExit.DEBUG;
    run.debug.exception = vector;
    run.debug.pc = (vcpu.cpu.getSegBase(Seg.CS) + vcpu.cpu.eip) >>> 0;
    return 0;
  }
  run.exitReason = KvmExit.EXCEPTION;
  run.ex.exception = vector;
  run.ex.errorCode = info & IntrInfo.ERROR_CODE_VALID ? vcpu.vmcs.exitIntrErrorCode : 0;
  return 0;
}
/** The preemption timer is the instruction budget: it ends KVM_RUN (vmxlab's KVM_EXIT_BUDGET). */
function handlePreemptionTimer(vcpu: Vcpu): number {
  // A budget longer than the 32-bit timer has rounds left: program the next one.
  if (vcpu.budgetEnd - vcpu.cpu.icount > 0) return 1;
  vcpu.kvmRun.exitReason = KvmExit.BUDGET;
  return 0;
}
/**
 * handle_external_interrupt: a host interrupt arrived while the guest ran. The wall-clock deadline
 * (a host signal) ends KVM_RUN with KVM_EXIT_INTR; the in-kernel PIT's timer is handled on the way
 * back in (vcpuEnterGuest runs it and injects IRQ0).
 */
function handleExternalInterrupt(vcpu: Vcpu): number {
  // An x87 instruction frozen by FERR# (x87/x87.ts) exits so that IRQ13 can be injected first.
  vcpu.cpu.ferrExitTaken = true;
  if (!vcpu.cpu.interruptedByHost) return 1;
  vcpu.kvmRun.exitReason = KvmExit.INTR;
  return 0;
}
/** handle_interrupt_window: the guest can take an interrupt; stop exiting on it and let vcpuEnterGuest inject. */
function handleInterruptWindow(vcpu: Vcpu): number {
  const v = vcpu.vmcs;
  vcpu.vm.tracer?.record("handleInterruptWindow");
  v.write(VmcsField.CPU_BASED_VM_EXEC_CONTROL, (v.read(VmcsField.CPU_BASED_VM_EXEC_CONTROL) & ~CpuBased.INTR_WINDOW_EXITING) >>> 0);
  return 1;
}

/**
 * kvm_vmx_exit_handlers: the exit-handler table, by basic exit reason. A reason without an
 * entry goes to unexpectedVmexit (KVM_EXIT_INTERNAL_ERROR), never a silent skip.
 */
export const kvmVmxExitHandlers: readonly ((vcpu: Vcpu) => number)[] = (() => {
  const t: ((vcpu: Vcpu) => number)[] = [];
  t[ExitReason.EXCEPTION_NMI] = handleExceptionNmi;
  t[ExitReason.EXTERNAL_INTERRUPT] = handleExternalInterrupt;
  t[ExitReason.TRIPLE_FAULT] = handleTripleFault;
  t[ExitReason.INTERRUPT_WINDOW] = handleInterruptWindow;
  t[ExitReason.CPUID] = handleCpuid;
  t[ExitReason.HLT] = handleHalt;
  t[ExitReason.INVD] = handleInvd;
  t[ExitReason.RDTSC] = handleRdtsc;
  t[ExitReason.VMCALL] = handleVmcall;
  t[ExitReason.IO_INSTRUCTION] = handleIo;
  t[ExitReason.MSR_READ] = handleRdmsr;
  t[ExitReason.MSR_WRITE] = handleWrmsr;
  t[ExitReason.EPT_VIOLATION] = handleEptViolation;
  t[ExitReason.PREEMPTION_TIMER] = handlePreemptionTimer;
  t[ExitReason.WBINVD] = handleInvd;
  return t;
})();

function unexpectedVmexit(vcpu: Vcpu, reason: number): number {
  vcpu.vm.tracer?.record("unexpectedVmexit", { reason });
  const run = vcpu.kvmRun;
  run.exitReason = KvmExit.INTERNAL_ERROR;
  run.internal.suberror = KvmInternalError.UNEXPECTED_EXIT_REASON;
  run.internal.data = [reason];
  return 0;
}

/** vmx_handle_exit: script hooks first, then the handler table. */
function vmxHandleExit(vcpu: Vcpu): number {
  const v = vcpu.vmcs;
  const reason = v.exitReason & 0xffff;
  const t = vcpu.vm.tracer;
  if (t) traceVmxHandleExit(t, reason, v.exitQualification);
  const hook = vcpu.vmxExitHooks[reason];
  if (hook !== null && hook(vcpu, reason) === "resume") return 1;
  const handler = kvmVmxExitHandlers[reason];
  if (handler === undefined) return unexpectedVmexit(vcpu, reason);
  return handler(vcpu);
}

/** kvm_x86_ops for VMX (vmx_x86_ops). */
export const vmxX86Ops: KvmX86Ops = {
  name: "kvm_intel",
  hardwareSetup,
  vcpuCreate: vmxCreateVcpu,
  run: vmxVcpuRun,
  handleExit: vmxHandleExit,
  skipEmulatedInstruction,
  queueException,
  injectIrq,
  interruptAllowed,
  enableIrqWindow,
};
