/**
 * The `kvm_run` record shared between the kernel layer and userspace, and KVM's exit reasons.
 * Numbers are KVM's (include/uapi/linux/kvm.h); the few vmxlab additions are marked.
 */

/** Exit reasons of KVM_RUN. */
export const KvmExit = {
  UNKNOWN: 0, EXCEPTION: 1, IO: 2, HYPERCALL: 3, DEBUG: 4, HLT: 5, MMIO: 6, IRQ_WINDOW_OPEN: 7, SHUTDOWN: 8,
  FAIL_ENTRY: 9, INTR: 10, SET_TPR: 11, TPR_ACCESS: 12, NMI: 16, INTERNAL_ERROR: 17, SYSTEM_EVENT: 24,
  X86_RDMSR: 29, X86_WRMSR: 30,
  /** vmxlab: the instruction budget (the VMX preemption timer) ran out. */
  BUDGET: 1000,
  /**
   * vmxlab: the vCPU halted and waits in the kernel for a timer (asked for with `vcpu.idleExit`):
   * userspace may act (feed input, pace virtual time to the wall clock) before virtual time jumps to
   * the timer; the next KVM_RUN goes on waiting, or wakes at once for an interrupt raised meanwhile.
   */
  IDLE: 1001,
} as const;
export type KvmExitName = keyof typeof KvmExit;
const EXIT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(KvmExit).map(([k, v]) => [v, k.toLowerCase()]));
/** "KVM_EXIT_HLT" → "hlt": the lower-case name without the prefix, as vmrun's JSON reports it. */
export function kvmExitName(reason: number): string {
  return EXIT_NAMES[reason] ?? `unknown_${reason}`;
}
export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;
/** Internal-error sub-reasons. */
export const KvmInternalError = { EMULATION: 1, SIMUL_EX: 2, DELIVERY_EV: 3, UNEXPECTED_EXIT_REASON: 4 } as const;
/** KVM_HC_* and the errno KVM returns for an unknown hypercall. */
export const KVM_ENOSYS = 1000;

/** The shared page: exit information out, completion data in (a C program's mmap of the vCPU fd). */
export class KvmRun {
  /** KVM_EXIT_* of the last KVM_RUN. */
  exitReason: number = KvmExit.UNKNOWN;
  /** Set by userspace to make the next KVM_RUN return KVM_EXIT_INTR at once. */
  immediateExit = false;
  /**
   * Set by userspace (kvm_run.request_interrupt_window) with a userspace irqchip: KVM_RUN returns
   * KVM_EXIT_IRQ_WINDOW_OPEN as soon as the guest can take an interrupt from KVM_INTERRUPT.
   */
  requestInterruptWindow = false;
  /** Corresponds to kvm_run.if_flag: the guest's EFLAGS.IF when KVM_RUN returned. */
  ifFlag = false;
  /**
   * Corresponds to kvm_run.ready_for_interrupt_injection: KVM_INTERRUPT would be taken at the next
   * entry (IF=1, no STI or MOV SS blocking, nothing queued). Always true with an in-kernel irqchip.
   */
  readyForInterruptInjection = false;
  /** KVM_EXIT_IO: `data` holds count elements of size bytes at dataOffset. */
  readonly io = { direction: 0, size: 0, port: 0, count: 0, dataOffset: 0 };
  /** KVM_EXIT_MMIO: for reads, userspace writes the value into `data` before the next KVM_RUN. */
  readonly mmio = { physAddr: 0, data: new Uint8Array(8), len: 0, isWrite: false };
  /** KVM_EXIT_HYPERCALL: nr and args from RAX, RBX, RCX, RDX, RSI; `ret` goes to RAX on re-entry. */
  readonly hypercall = { nr: 0, args: [0, 0, 0, 0, 0, 0], ret: 0, longmode: 0 };
  /** KVM_EXIT_EXCEPTION (an exception-bitmap exit) and KVM_EXIT_DEBUG. */
  readonly ex = { exception: 0, errorCode: 0 };
  readonly debug = { exception: 0, pc: 0 };
  /** KVM_EXIT_INTERNAL_ERROR. */
  readonly internal = { suberror: 0, data: [] as number[] };
  /** KVM_EXIT_FAIL_ENTRY. */
  readonly failEntry = { hardwareEntryFailureReason: 0, cpu: 0 };
  /** KVM_EXIT_X86_RDMSR / WRMSR: userspace sets `error` or `data`. */
  readonly msr = { index: 0, data: 0, error: 0 };
  /** vmxlab: why the guest shut down (the vectors of the triple fault, RIP, instruction bytes). */
  readonly shutdown = { vectors: [] as number[], rip: 0, bytes: [] as number[] };
  /** vmxlab KVM_EXIT_IDLE: the virtual nanoseconds the vCPU would sleep until the timer it waits for. */
  readonly idle = { sleepNs: 0 };
  /** The data page that io.dataOffset indexes (KVM places it after kvm_run in the same mapping). */
  readonly data = new Uint8Array(4096);

  /** The record as plain data (an exit userspace has not completed yet is part of a vCPU's state). */
  saveState(): KvmRunState {
    return structuredClone({
      exitReason: this.exitReason, immediateExit: this.immediateExit, requestInterruptWindow: this.requestInterruptWindow,
      ifFlag: this.ifFlag, readyForInterruptInjection: this.readyForInterruptInjection, io: this.io, mmio: this.mmio,
      hypercall: this.hypercall, ex: this.ex, debug: this.debug, internal: this.internal, failEntry: this.failEntry,
      msr: this.msr, shutdown: this.shutdown, idle: this.idle, data: this.data,
    });
  }
  restoreState(s: KvmRunState): void {
    const c = structuredClone(s);
    ({
      exitReason: this.exitReason, immediateExit: this.immediateExit, requestInterruptWindow: this.requestInterruptWindow,
      ifFlag: this.ifFlag, readyForInterruptInjection: this.readyForInterruptInjection,
    } = c);
    Object.assign(this.io, c.io);
    this.mmio.data.set(c.mmio.data);
    ({ physAddr: this.mmio.physAddr, len: this.mmio.len, isWrite: this.mmio.isWrite } = c.mmio);
    Object.assign(this.hypercall, c.hypercall);
    Object.assign(this.ex, c.ex);
    Object.assign(this.debug, c.debug);
    Object.assign(this.internal, c.internal);
    Object.assign(this.failEntry, c.failEntry);
    Object.assign(this.msr, c.msr);
    Object.assign(this.shutdown, c.shutdown);
    Object.assign(this.idle, c.idle);
    this.data.set(c.data);
  }
}

/** What `KvmRun.saveState` keeps. */
export interface KvmRunState {
  exitReason: number;
  immediateExit: boolean;
  requestInterruptWindow: boolean;
  ifFlag: boolean;
  readyForInterruptInjection: boolean;
  io: KvmRun["io"];
  mmio: KvmRun["mmio"];
  hypercall: KvmRun["hypercall"];
  ex: KvmRun["ex"];
  debug: KvmRun["debug"];
  internal: KvmRun["internal"];
  failEntry: KvmRun["failEntry"];
  msr: KvmRun["msr"];
  shutdown: KvmRun["shutdown"];
  idle: KvmRun["idle"];
  data: Uint8Array;
}

/** One KVM exit as a discriminated union on `reason` (rust-vmm's VcpuExit, in TypeScript). */
export type VcpuExit =
  /** Corresponds to KVM_EXIT_IO. */
  | { reason: "io"; direction: "in" | "out"; port: number; size: number; count: number; data: Uint8Array }
  /** Corresponds to KVM_EXIT_MMIO. */
  | { reason: "mmio"; physAddr: number; len: number; isWrite: boolean; data: Uint8Array }
  /** Corresponds to KVM_EXIT_HLT. */
  | { reason: "hlt" }
  /** Corresponds to KVM_EXIT_IRQ_WINDOW_OPEN (the guest can take an interrupt; see requestInterruptWindow). */
  | { reason: "irq_window_open" }
  /** Corresponds to KVM_EXIT_SHUTDOWN (a triple fault). */
  | { reason: "shutdown"; vectors: number[]; rip: number; bytes: number[] }
  /** Corresponds to KVM_EXIT_HYPERCALL. */
  | { reason: "hypercall"; nr: number; args: number[] }
  /** Corresponds to KVM_EXIT_EXCEPTION. */
  | { reason: "exception"; exception: number; errorCode: number }
  /** Corresponds to KVM_EXIT_DEBUG. */
  | { reason: "debug"; exception: number; pc: number }
  /** Corresponds to KVM_EXIT_INTR (the host interrupted the run: deadline or immediate_exit). */
  | { reason: "intr" }
  /** Corresponds to KVM_EXIT_INTERNAL_ERROR. */
  | { reason: "internal_error"; suberror: number; data: number[] }
  /** Corresponds to KVM_EXIT_FAIL_ENTRY. */
  | { reason: "fail_entry"; hardwareEntryFailureReason: number }
  /** Corresponds to KVM_EXIT_X86_RDMSR and KVM_EXIT_X86_WRMSR. */
  | { reason: "x86_rdmsr" | "x86_wrmsr"; index: number; data: number }
  /** vmxlab: the instruction budget ran out. */
  | { reason: "budget" }
  /** vmxlab: the vCPU went idle (halted, waiting for a timer `sleepNs` away); see KvmExit.IDLE. */
  | { reason: "idle"; sleepNs: number }
  | { reason: "unknown"; code: number };

/** Snapshot the exit in `run` as a VcpuExit. */
export function toVcpuExit(run: KvmRun): VcpuExit {
  switch (run.exitReason) {
    case KvmExit.IO: {
      const { direction, port, size, count, dataOffset } = run.io;
      return {
        reason: "io", direction: direction === KVM_EXIT_IO_IN ? "in" : "out", port, size, count,
        data: run.data.slice(dataOffset, dataOffset + size * count),
      };
    }
    case KvmExit.MMIO:
      return { reason: "mmio", physAddr: run.mmio.physAddr, len: run.mmio.len, isWrite: run.mmio.isWrite, data: run.mmio.data.slice(0, run.mmio.len) };
    case KvmExit.HLT: return { reason: "hlt" };
    case KvmExit.IRQ_WINDOW_OPEN: return { reason: "irq_window_open" };
    case KvmExit.SHUTDOWN: return { reason: "shutdown", ...structuredClone(run.shutdown) };
    case KvmExit.HYPERCALL: return { reason: "hypercall", nr: run.hypercall.nr, args: [...run.hypercall.args] };
    case KvmExit.EXCEPTION: return { reason: "exception", exception: run.ex.exception, errorCode: run.ex.errorCode };
    case KvmExit.DEBUG: return { reason: "debug", exception: run.debug.exception, pc: run.debug.pc };
    case KvmExit.INTR: return { reason: "intr" };
    case KvmExit.INTERNAL_ERROR: return { reason: "internal_error", suberror: run.internal.suberror, data: [...run.internal.data] };
    case KvmExit.FAIL_ENTRY: return { reason: "fail_entry", hardwareEntryFailureReason: run.failEntry.hardwareEntryFailureReason };
    case KvmExit.X86_RDMSR: return { reason: "x86_rdmsr", index: run.msr.index, data: run.msr.data };
    case KvmExit.X86_WRMSR: return { reason: "x86_wrmsr", index: run.msr.index, data: run.msr.data };
    case KvmExit.BUDGET: return { reason: "budget" };
    case KvmExit.IDLE: return { reason: "idle", sleepNs: run.idle.sleepNs };
  }
  return { reason: "unknown", code: run.exitReason };
}

/** KVM_GET_MP_STATE values (include/uapi/linux/kvm.h). */
export const MpState = { RUNNABLE: 0, UNINITIALIZED: 1, INIT_RECEIVED: 2, HALTED: 3, SIPI_RECEIVED: 4 } as const;
