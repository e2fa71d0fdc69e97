/**
 * A vCPU: the processor (runtime/cpu) plus KVM's per-vCPU state (struct kvm_vcpu), and the vCPU
 * ioctls a C VMM issues: KVM_GET/SET_REGS, KVM_GET/SET_SREGS, KVM_RUN, KVM_INTERRUPT.
 */
import { Cpu, type CpuState } from "../cpu/cpu.ts";
import { fpuReset } from "../cpu/x87/x87.ts";
import * as stateMod from "../cpu/state.ts";
import * as sseStateMod from "../cpu/sse_state.ts";
import type { Vmcs, VmcsState } from "../cpu/vmcs.ts";
import * as kvmRunMod from "./kvm_run.ts";
import { KvmRun, type KvmRunState } from "./kvm_run.ts";
import type { Vm } from "./kvm_main.ts";
import { KvmError } from "./errors.ts";
import { kvmQueueInterrupt, kvmVcpuIoctl, PROCESSOR_SIGNATURE } from "./x86.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { Cr0, Seg, St } = stateMod;
const { MpState } = kvmRunMod;
const { MXCSR_DEFAULT, SseOff } = sseStateMod;

export { MpState };

/** KVM_GET_REGS / KVM_SET_REGS. 64-bit values are exact up to 2^53. */
export interface KvmRegs {
  rax: number; rbx: number; rcx: number; rdx: number; rsi: number; rdi: number; rsp: number; rbp: number;
  r8: number; r9: number; r10: number; r11: number; r12: number; r13: number; r14: number; r15: number;
  rip: number; rflags: number;
}
/** struct kvm_segment. `limit` is in bytes (already scaled by G). */
export interface KvmSegment {
  base: number; limit: number; selector: number; type: number; present: number; dpl: number; db: number;
  s: number; l: number; g: number; avl: number; unusable: number;
}
export interface KvmDtable { base: number; limit: number }
/** KVM_GET_SREGS / KVM_SET_SREGS. */
export interface KvmSregs {
  cs: KvmSegment; ds: KvmSegment; es: KvmSegment; fs: KvmSegment; gs: KvmSegment; ss: KvmSegment;
  tr: KvmSegment; ldt: KvmSegment; gdt: KvmDtable; idt: KvmDtable;
  cr0: number; cr2: number; cr3: number; cr4: number; cr8: number; efer: number; apicBase: number;
}

const REG_ORDER = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"] as const;
const SEG_KEYS = ["es", "cs", "ss", "ds", "fs", "gs", "ldt", "tr"] as const;

/** What a hook at vmxHandleExit decides: handled (re-enter the guest), or let KVM's handler run. */
export type VmxExitHookResult = "resume" | "default" | void;
export type VmxExitHook = (vcpu: Vcpu, exitReason: number) => VmxExitHookResult;

export function segToAr(s: KvmSegment): number {
  return (s.type & 0xf) | ((s.s & 1) << 4) | ((s.dpl & 3) << 5) | ((s.present & 1) << 7) | ((s.avl & 1) << 12) |
    ((s.l & 1) << 13) | ((s.db & 1) << 14) | ((s.g & 1) << 15) | ((s.unusable & 1) << 16);
}
export function arToSeg(ar: number, base: number, limit: number, selector: number): KvmSegment {
  return {
    base, limit, selector, type: ar & 0xf, s: (ar >> 4) & 1, dpl: (ar >> 5) & 3, present: (ar >> 7) & 1,
    avl: (ar >> 12) & 1, l: (ar >> 13) & 1, db: (ar >> 14) & 1, g: (ar >> 15) & 1, unusable: (ar >> 16) & 1,
  };
}

/**
 * KVM_RUN's returns by KVM exit reason: a read-only Map (`get`, `size`, iteration in ascending
 * reason order) over a dense table, so counting one is an indexed add on the exit path.
 */
export class ExitCounts implements ReadonlyMap<number, number> {
  /** Reasons below 64 (every KVM_EXIT_* but vmxlab's BUDGET). */
  readonly dense = new Float64Array(64);
  /** The others (KVM_EXIT_BUDGET = 1000). */
  readonly sparse = new Map<number, number>();
  /** Count one return with `reason`. */
  add(reason: number): void {
    if (reason >= 0 && reason < 64) this.dense[reason]++;
    else this.sparse.set(reason, (this.sparse.get(reason) ?? 0) + 1);
  }
  get(reason: number): number | undefined {
    const n = reason >= 0 && reason < 64 && Number.isInteger(reason) ? this.dense[reason] : this.sparse.get(reason) ?? 0;
    return n > 0 ? n : undefined;
  }
  has(reason: number): boolean {
    return this.get(reason) !== undefined;
  }
  get size(): number {
    let n = this.sparse.size;
    for (const x of this.dense) if (x > 0) n++;
    return n;
  }
  *entries(): MapIterator<[number, number]> {
    for (let r = 0; r < 64; r++) if (this.dense[r] > 0) yield [r, this.dense[r]];
    yield* [...this.sparse].sort((a, b) => a[0] - b[0]);
  }
  *keys(): MapIterator<number> {
    for (const [k] of this.entries()) yield k;
  }
  *values(): MapIterator<number> {
    for (const [, v] of this.entries()) yield v;
  }
  forEach(fn: (value: number, key: number, map: ReadonlyMap<number, number>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
  [Symbol.iterator](): MapIterator<[number, number]> {
    return this.entries();
  }
  saveState(): [number, number][] {
    return [...this.entries()];
  }
  restoreState(s: [number, number][]): void {
    this.dense.fill(0);
    this.sparse.clear();
    for (const [r, n] of s) {
      if (r >= 0 && r < 64) this.dense[r] = n;
      else this.sparse.set(r, n);
    }
  }
}

/**
 * What `Vcpu.saveState` keeps: the processor, the VMCS, the kvm_run record and KVM's per-vCPU state
 * (an IO or MMIO exit in flight with its completion, queued events, the halt state, MSRs, counts).
 * The completion is a function of the kernel, kept by reference.
 */
export interface VcpuState {
  cpu: CpuState;
  vmcs: VmcsState;
  kvmRun: KvmRunState;
  completeUserspaceIo: ((vcpu: Vcpu) => number) | null;
  pio: Vcpu["pio"];
  pendingEvent: Vcpu["pendingEvent"];
  queuedIrq: number;
  mpState: number;
  idleNs: number;
  idleNotified: boolean;
  shutDown: boolean;
  budgetEnd: number;
  vmxExitCounts: Float64Array;
  userExitCounts: [number, number][];
  msrs: [number, number][];
}

export class Vcpu {
  readonly cpu: Cpu;
  /** The shared kvm_run page (what a C VMM mmaps from the vCPU fd). */
  readonly kvmRun = new KvmRun();
  /** This vCPU's VMCS (allocVmcs). */
  vmcs!: Vmcs;
  /** KVM's completion callback for an exit userspace must finish (vcpu->arch.complete_userspace_io). */
  completeUserspaceIo: ((vcpu: Vcpu) => number) | null = null;
  /** State of the PIO in flight (vcpu->arch.pio). */
  readonly pio = { isIn: false, size: 0, port: 0, count: 0, string: false, rep: false, asz: 4, seg: 3, mmio: false };
  /** An exception to inject at the next entry (vcpu->arch.exception). */
  pendingEvent: { vector: number; errorCode: number; type: number } | null = null;
  /**
   * The vector KVM_INTERRUPT queued (vcpu->arch.interrupt with a userspace irqchip), -1 for none:
   * injected at the first entry where the guest can take it.
   */
  queuedIrq = -1;
  /** KVM_MP_STATE_RUNNABLE or KVM_MP_STATE_HALTED (a HLT waiting for an in-kernel interrupt). */
  mpState: number = MpState.RUNNABLE;
  /**
   * Virtual nanoseconds this vCPU spent halted. The VM's virtual clock is the first vCPU's retired
   * instructions plus this (one instruction = 1 ns at the nominal 1 GHz TSC); see `Vm.clock`.
   */
  idleNs = 0;
  /**
   * vmxlab: before a halted vCPU sleeps to its next timer edge, KVM_RUN returns KVM_EXIT_IDLE once
   * (the next KVM_RUN sleeps). Userspace that feeds input or keeps virtual time near the wall clock
   * turns this on; off, idle time passes inside KVM_RUN without a return.
   */
  idleExit = false;
  /** KVM_EXIT_IDLE was returned for the current halt. */
  idleNotified = false;
  /** The guest shut down (triple fault); KVM_RUN keeps returning KVM_EXIT_SHUTDOWN until the state is set again. */
  shutDown = false;
  /**
   * The retired-instruction count at which the budget runs out (Infinity for none). Kept as an end
   * point rather than a remaining count so that every retirement (the processor's, a handler's
   * skip, the elements of a string IO that KVM emulates) is charged without separate bookkeeping.
   */
  budgetEnd = Infinity;
  /** Hooks at vmxHandleExit, indexed by basic exit reason. */
  readonly vmxExitHooks: (VmxExitHook | null)[] = new Array(64).fill(null);
  /** VM exits by basic reason, and userspace exits by KVM reason. */
  readonly vmxExitCounts = new Float64Array(64);
  readonly userExitCounts = new ExitCounts();
  /** Guest MSRs KVM keeps (kvm_get_msr_common / kvm_set_msr_common). */
  readonly msrs = new Map<number, number>();

  constructor(readonly vm: Vm, readonly id: number, area: number) {
    this.cpu = new Cpu(vm.memory, area, vm);
    // FERR# reaches the in-kernel 8259 pair as IRQ13, as on a PC (x87 errors with CR0.NE = 0).
    const pic = vm.pic;
    if (pic !== null) this.cpu.ferr = (asserted) => pic.setIrq(13, asserted);
  }

  /** This vCPU's state (KVM_GET_REGS/SREGS/MSRS/VCPU_EVENTS/MP_STATE and the rest, in one piece). */
  saveState(): VcpuState {
    return {
      cpu: this.cpu.saveState(), vmcs: this.vmcs.saveState(), kvmRun: this.kvmRun.saveState(),
      completeUserspaceIo: this.completeUserspaceIo, pio: { ...this.pio },
      pendingEvent: this.pendingEvent && { ...this.pendingEvent }, queuedIrq: this.queuedIrq, mpState: this.mpState,
      idleNs: this.idleNs, idleNotified: this.idleNotified, shutDown: this.shutDown, budgetEnd: this.budgetEnd, vmxExitCounts: this.vmxExitCounts.slice(),
      userExitCounts: this.userExitCounts.saveState(), msrs: [...this.msrs],
    };
  }
  /** Put back what `saveState` saved. The VMX exit hooks are userspace's, not state: they stay. */
  restoreState(s: VcpuState): void {
    this.vmcs.restoreState(s.vmcs);
    this.cpu.restoreState(s.cpu);
    this.kvmRun.restoreState(s.kvmRun);
    this.completeUserspaceIo = s.completeUserspaceIo;
    Object.assign(this.pio, s.pio);
    this.pendingEvent = s.pendingEvent && { ...s.pendingEvent };
    ({
      queuedIrq: this.queuedIrq, mpState: this.mpState, idleNs: this.idleNs, idleNotified: this.idleNotified,
      shutDown: this.shutDown, budgetEnd: this.budgetEnd,
    } = s);
    this.vmxExitCounts.set(s.vmxExitCounts);
    this.userExitCounts.restoreState(s.userExitCounts);
    this.msrs.clear();
    for (const [k, v] of s.msrs) this.msrs.set(k, v);
  }

  /** KVM_GET_REGS. */
  getRegs(): KvmRegs {
    const st = this.cpu.st;
    const r = {} as KvmRegs;
    REG_ORDER.forEach((name, i) => (r[name] = (st[i * 2] >>> 0) + (st[i * 2 + 1] >>> 0) * 2 ** 32));
    r.rip = (st[St.RIP] >>> 0) + (st[St.RIP + 1] >>> 0) * 2 ** 32;
    r.rflags = this.cpu.getFlags();
    return r;
  }
  /** KVM_SET_REGS. Fields left out keep their value. */
  setRegs(regs: Partial<KvmRegs>): void {
    const st = this.cpu.st;
    REG_ORDER.forEach((name, i) => {
      const v = regs[name];
      if (v !== undefined) { st[i * 2] = v % 2 ** 32; st[i * 2 + 1] = Math.floor(v / 2 ** 32); }
    });
    if (regs.rip !== undefined) { st[St.RIP] = regs.rip % 2 ** 32; st[St.RIP + 1] = Math.floor(regs.rip / 2 ** 32); }
    if (regs.rflags !== undefined) this.cpu.setFlags(regs.rflags);
    this.shutDown = false;
  }
  /** KVM_GET_SREGS. */
  getSregs(): KvmSregs {
    const c = this.cpu, st = c.st;
    const seg = (s: number) => arToSeg(c.getSegAttr(s), c.getSegBase(s), c.getSegLimit(s), c.getSegSel(s));
    const out = {} as KvmSregs;
    SEG_KEYS.forEach((k, i) => (out[k] = seg(i)));
    out.gdt = { base: st[St.GDTR_BASE] >>> 0, limit: st[St.GDTR_LIMIT] & 0xffff };
    out.idt = { base: st[St.IDTR_BASE] >>> 0, limit: st[St.IDTR_LIMIT] & 0xffff };
    out.cr0 = st[St.CR0] >>> 0;
    out.cr2 = st[St.CR2] >>> 0;
    out.cr3 = st[St.CR3] >>> 0;
    out.cr4 = st[St.CR4] >>> 0;
    out.cr8 = st[St.CR8] >>> 0;
    out.efer = st[St.EFER] >>> 0;
    out.apicBase = this.msrs.get(0x1b) ?? 0xfee00900;
    return out;
  }
  /** KVM_SET_SREGS. */
  setSregs(s: KvmSregs): void {
    const c = this.cpu, st = c.st;
    if ((s.cr0 & Cr0.PG) && !(s.cr0 & Cr0.PE)) throw new KvmError("state", "Invalid CR0: PG set without PE");
    if (s.efer & 0x100) throw new KvmError("state", "Long mode (EFER.LME) is not supported yet");
    SEG_KEYS.forEach((k, i) => {
      const g = s[k];
      c.setSeg(i, g.selector, g.base, g.limit, segToAr(g));
    });
    st[St.GDTR_BASE] = s.gdt.base; st[St.GDTR_LIMIT] = s.gdt.limit;
    st[St.IDTR_BASE] = s.idt.base; st[St.IDTR_LIMIT] = s.idt.limit;
    st[St.CR0] = s.cr0 | Cr0.ET; st[St.CR2] = s.cr2; st[St.CR3] = s.cr3; st[St.CR4] = s.cr4; st[St.CR8] = s.cr8;
    st[St.EFER] = s.efer;
    this.msrs.set(0x1b, s.apicBase);
    c.refreshAllSegs();
    c.flushTlb();
    this.shutDown = false;
  }

  /**
   * KVM_RUN: run the guest until an exit userspace must handle.
   * @returns the kvm_run record, with `exitReason` and the matching sub-record filled
   */
  run(): KvmRun {
    kvmVcpuIoctl(this, "KVM_RUN");
    return this.kvmRun;
  }

  /**
   * KVM_INTERRUPT, for a VM whose interrupt controller lives in userspace: queue external
   * interrupt `vector`. It is delivered at the first entry where the guest can take it (IF=1, no
   * STI or MOV SS blocking); until then KVM exits on the interrupt window to deliver it as soon as
   * it opens. Userspace should wait for `kvmRun.readyForInterruptInjection` (or set
   * `kvmRun.requestInterruptWindow` and wait for KVM_EXIT_IRQ_WINDOW_OPEN) before queueing.
   * @throws KvmError("state") with an in-kernel irqchip (KVM answers ENXIO: use `vm.irqLine`), or
   *   while a vector is still queued
   * @example
   * ```ts
   * import { Kvm } from "../mod.ts";
   *
   * const vm = (await Kvm.open()).createVm();
   * vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x10000 });
   * vm.writeGuest(0x20 * 4, new Uint8Array([0x00, 0x11, 0, 0])); // IVT[0x20] = 0000:1100
   * vm.writeGuest(0x1100, new Uint8Array([0xf4])); // the handler: hlt
   * vm.writeGuest(0x1000, new Uint8Array([0xfb, 0xeb, 0xfe])); // sti; jmp $
   * const vcpu = vm.createVcpu(0);
   * const sregs = vcpu.getSregs();
   * sregs.cs.base = 0; sregs.cs.selector = 0;
   * vcpu.setSregs(sregs);
   * vcpu.setRegs({ rip: 0x1000, rsp: 0x8000, rflags: 2 });
   * vcpu.interrupt(0x20);
   * vcpu.run(); // KVM_EXIT_HLT from the handler
   * if (vcpu.getRegs().rip !== 0x1101) throw new Error("the handler should have run");
   * ```
   */
  interrupt(vector: number): void {
    if (!Number.isInteger(vector) || vector < 0 || vector > 255) throw new RangeError(`Invalid interrupt vector: ${vector}`);
    if (this.vm.pic !== null) {
      throw new KvmError("state", `Cannot queue interrupt vector 0x${vector.toString(16)}: KVM_INTERRUPT is for a userspace irqchip and this VM has an in-kernel PIC (use vm.irqLine)`);
    }
    if (this.queuedIrq >= 0) {
      throw new KvmError("state", `Cannot queue interrupt vector 0x${vector.toString(16)}: vector 0x${this.queuedIrq.toString(16)} is still queued (wait for kvmRun.readyForInterruptInjection)`);
    }
    kvmQueueInterrupt(this, vector);
  }
  /** Queue an exception for the guest (KVM_SET_VCPU_EVENTS with exception.injected). */
  queueException(vector: number, errorCode = -1): void {
    this.vm.module.ops.queueException(this, vector, errorCode);
  }
  /** Stop after `n` more retired instructions with KVM_EXIT_BUDGET (null: no budget). */
  setBudget(n: number | null): void {
    if (n !== null && (!Number.isSafeInteger(n) || n < 0)) throw new RangeError(`Invalid instruction budget: ${n}`);
    this.budgetEnd = n === null ? Infinity : this.cpu.icount + n;
  }
  /** Instructions left before KVM_EXIT_BUDGET (Infinity for no budget); assigning sets a new budget. */
  get budget(): number {
    return this.budgetEnd === Infinity ? Infinity : Math.max(0, this.budgetEnd - this.cpu.icount);
  }
  set budget(n: number) {
    this.setBudget(n === Infinity ? null : n);
  }
  /**
   * Advance RIP past the instruction that exited and retire it (kvm_skip_emulated_instruction),
   * for a VMX exit hook that emulates the instruction itself and returns "resume".
   */
  skipEmulatedInstruction(): void {
    this.vm.module.ops.skipEmulatedInstruction(this);
  }
  /** Make KVM_RUN return KVM_EXIT_INTR once host time (performance.now()) passes `ms` (as a signal would). */
  setDeadline(ms: number | null): void {
    this.cpu.deadline = ms ?? Infinity;
  }
  /** Register a hook at vmxHandleExit for a basic exit reason (ExitReason.*). */
  onVmxExit(reason: number, hook: VmxExitHook | undefined): void {
    if (!Number.isInteger(reason) || reason < 0 || reason >= 64) throw new RangeError(`Invalid VMX exit reason: ${reason}`);
    this.vmxExitHooks[reason] = hook ?? null;
  }
  /** Read a VMCS field (VMREAD), e.g. `vcpu.vmcsRead(VmcsField.EXIT_REASON)`. */
  vmcsRead(field: number): number {
    return this.vmcs.read(field);
  }
  /** Write a VMCS field (VMWRITE). */
  vmcsWrite(field: number, value: number): void {
    this.vmcs.write(field, value);
  }
  /** Instructions retired so far. */
  get instructions(): number {
    return this.cpu.icount;
  }
  /** Put the vCPU in the architectural reset state (SDM 9.1.1, table 9-1) as KVM does at creation. */
  reset(): void {
    const c = this.cpu, st = c.st;
    st.fill(0, 0, St.LAZY_MASK + 1);
    c.setFlags(2);
    st[St.RIP] = 0xfff0;
    st[St.CR0] = 0x60000010;
    c.setSeg(Seg.CS, 0xf000, 0xffff0000, 0xffff, 0x9b);
    for (const s of [Seg.ES, Seg.SS, Seg.DS, Seg.FS, Seg.GS]) c.setSeg(s, 0, 0, 0xffff, 0x93);
    c.setSeg(Seg.LDTR, 0, 0, 0xffff, 0x82);
    c.setSeg(Seg.TR, 0, 0, 0xffff, 0x8b);
    st[St.GDTR_LIMIT] = 0xffff;
    st[St.IDTR_LIMIT] = 0xffff;
    st[2 * 2] = PROCESSOR_SIGNATURE; // EDX: the processor signature after reset (CPUID.1:EAX)
    fpuReset(c);
    // SSE state after reset (SDM vol. 3, table 9-1): XMM0-7 zero, MXCSR 0x1F80.
    st.fill(0, SseOff.XMM >> 2, (SseOff.XMM + 16 * 16) >> 2);
    st[SseOff.MXCSR >> 2] = MXCSR_DEFAULT;
    c.refreshAllSegs();
    c.flushTlb();
    this.shutDown = false;
    this.mpState = MpState.RUNNABLE;
    this.idleNotified = false;
    this.queuedIrq = -1;
  }
}
