/**
 * The x86 part of KVM (arch/x86/kvm/x86.c): arch init, vCPU creation, the KVM_RUN loop
 * (`__vcpu_run` → `vcpu_enter_guest`), the PIO path (`kvm_emulate_pio` → `kernel_pio` /
 * userspace → `complete_io`), CPUID, MSRs, hypercalls and HLT.
 */
import * as stateMod from "../cpu/state.ts";
import { CpuFault } from "../cpu/fault.ts";
import * as vmcsMod from "../cpu/vmcs.ts";
import * as sseStateMod from "../cpu/sse_state.ts";
import type { KvmModule, KvmTimer } from "./kvm_main.ts";
import { KvmError } from "./errors.ts";
import * as kvmRunMod from "./kvm_run.ts";
import type { Vcpu } from "./vcpu.ts";
import type { KvmX86Ops } from "./x86_ops.ts";
import type { Tracer } from "./trace.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { CLFLUSH_LINE } = sseStateMod;
const { Cr0, Fl, Seg, St } = stateMod;
const { CpuBased, IntrInfo, VmcsField } = vmcsMod;
const { KVM_ENOSYS, KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT, KvmExit, MpState } = kvmRunMod;

/** One CPUID leaf (struct kvm_cpuid_entry2). */
export interface CpuidEntry {
  function: number;
  index: number;
  /** The leaf depends on ECX (index); otherwise index is ignored. */
  significantIndex?: boolean;
  eax: number; ebx: number; ecx: number; edx: number;
}

function str4(s: string): number {
  return s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24);
}
/**
 * The processor signature (CPUID.1:EAX, and EDX after reset): family 15, model 3, stepping 4, a
 * Pentium 4 "Prescott" (the project's shared decision: the class of processor vmxlab implements
 * in 32-bit mode). Linux applies no errata workaround for it (the P6 family 6 model 1 it reported
 * before made Linux apply the Pentium Pro's).
 */
export const PROCESSOR_SIGNATURE = 0x00000f34;
/**
 * The microcode revision IA32_BIOS_SIGN_ID (MSR 0x8B) reports in its high half after a CPUID leaf
 * 1 (SDM Vol. 3A 10.11.7.1); no update is ever loaded, so it is the one the part ships with. The
 * number is vmxlab's own; nonzero as on any shipped part.
 */
export const MICROCODE_REVISION = 0x1;

/**
 * A coherent identity for what the processor implements: a GenuineIntel Pentium 4 class core
 * (family 15 model 3 stepping 4) whose feature bits report exactly what is implemented (leaf 1
 * EDX: FPU, DE, PSE, TSC, MSR, CX8, CMOV, and the SIMD bits as they are implemented), running under
 * a hypervisor (ECX bit 31) that names itself at leaf 0x40000000, as KVM does.
 */
export function defaultCpuid(): CpuidEntry[] {
  // FPU (bit 0), DE, PSE, TSC, MSR, CX8, CMOV.
  let edx1 = (1 << 0) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 15);
  // MMX, SSE, SSE2, SSE3, FXSAVE/FXRSTOR and CLFLUSH (runtime/cpu/sse/): CLFSH (19), MMX (23),
  // FXSR (24), SSE (25), SSE2 (26); ECX bit 0 SSE3 (MONITOR, ECX bit 3, is not reported: #UD).
  edx1 |= (1 << 19) | (1 << 23) | (1 << 24) | (1 << 25) | (1 << 26);
  const ecx1 = 1 << 0;
  // EBX[15:8]: the CLFLUSH line size in 8-byte units (64 bytes).
  const ebx1 = (CLFLUSH_LINE / 8) << 8;
  return [
    { function: 0, index: 0, eax: 1, ebx: str4("Genu"), edx: str4("ineI"), ecx: str4("ntel") },
    { function: 1, index: 0, eax: PROCESSOR_SIGNATURE, ebx: ebx1, ecx: (1 << 31) | ecx1, edx: edx1 },
    { function: 0x40000000, index: 0, eax: 0x40000001, ebx: str4("vmxl"), ecx: str4("abvm"), edx: str4("xlab") },
    { function: 0x40000001, index: 0, eax: 0, ebx: 0, ecx: 0, edx: 0 },
    { function: 0x80000000, index: 0, eax: 0x80000000, ebx: 0, ecx: 0, edx: 0 },
  ];
}

/** kvm_arch_init: check the vendor ops, then kvm_timer_init, then kvm_arch_hardware_setup. */
export function kvmArchInit(mod: KvmModule, ops: KvmX86Ops): void {
  mod.initTrace.record("kvmArchInit");
  mod.ops = ops;
  kvmTimerInit(mod);
  kvmArchHardwareSetup(mod);
}
/** kvm_timer_init: the TSC rate. The guest TSC counts retired instructions, so the rate is nominal (1 GHz). */
function kvmTimerInit(mod: KvmModule): void {
  mod.tscKhz = 1_000_000;
  mod.initTrace.record("kvmTimerInit", { tscKhz: mod.tscKhz });
}
function kvmArchHardwareSetup(mod: KvmModule): void {
  mod.initTrace.record("kvmArchHardwareSetup");
  mod.ops.hardwareSetup(mod);
}

/** kvm_arch_vcpu_create → kvm_x86_ops->vcpu_create (vmxCreateVcpu). */
export function kvmArchVcpuCreate(vcpu: Vcpu): void {
  vcpu.vm.tracer?.record("kvmArchVcpuCreate", { id: vcpu.id });
  vcpu.reset();
  vcpu.vm.module.ops.vcpuCreate(vcpu);
}

/** kvm_vcpu_ioctl. */
export function kvmVcpuIoctl(vcpu: Vcpu, ioctl: "KVM_RUN"): number {
  const t = vcpu.vm.tracer;
  if (t) t.record("kvmVcpuIoctl", { ioctl });
  const r = kvmArchVcpuIoctlRun(vcpu);
  vcpu.userExitCounts.add(vcpu.kvmRun.exitReason);
  return r;
}

/** kvm_arch_vcpu_ioctl_run: finish what userspace completed, run, and report the interrupt state. */
function kvmArchVcpuIoctlRun(vcpu: Vcpu): number {
  const r = vcpuIoctlRun(vcpu);
  postKvmRunSave(vcpu);
  return r;
}
function vcpuIoctlRun(vcpu: Vcpu): number {
  const t = vcpu.vm.tracer;
  if (t) t.record("kvmArchVcpuIoctlRun");
  const run = vcpu.kvmRun;
  if (vcpu.shutDown) {
    run.exitReason = KvmExit.SHUTDOWN;
    return 0;
  }
  const cui = vcpu.completeUserspaceIo;
  if (cui !== null) {
    vcpu.completeUserspaceIo = null;
    if (cui(vcpu) <= 0) return 0;
  }
  if (run.immediateExit) {
    run.immediateExit = false;
    run.exitReason = KvmExit.INTR;
    return 0;
  }
  return vcpuRun(vcpu);
}

/**
 * post_kvm_run_save: what userspace reads about interrupts when KVM_RUN returns. With an in-kernel
 * irqchip userspace never injects, so KVM reports it always ready.
 */
function postKvmRunSave(vcpu: Vcpu): void {
  const run = vcpu.kvmRun;
  run.ifFlag = (vcpu.cpu.st[St.RFLAGS] & Fl.IF) !== 0;
  run.readyForInterruptInjection = vcpu.vm.pic !== null || readyForInterruptInjection(vcpu);
}
/** kvm_vcpu_ready_for_interrupt_injection: KVM_INTERRUPT now would be delivered at the next entry. */
function readyForInterruptInjection(vcpu: Vcpu): boolean {
  return vcpu.queuedIrq < 0 && vcpu.pendingEvent === null && vcpu.vm.module.ops.interruptAllowed(vcpu);
}

/**
 * __vcpu_run: enter the guest (or wait in the kernel while it halts) until an exit needs userspace.
 * Every 64 rounds the wall-clock deadline is checked here too, as KVM checks for a pending signal,
 * so a guest that keeps the kernel busy (in-kernel IO, timer interrupts, halts) still ends.
 */
function vcpuRun(vcpu: Vcpu): number {
  const t = vcpu.vm.tracer;
  if (t) t.record("__vcpuRun");
  const run = vcpu.kvmRun, cpu = vcpu.cpu;
  let rounds = 0;
  for (;;) {
    const r = vcpu.mpState === MpState.RUNNABLE ? vcpuEnterGuest(vcpu) : vcpuBlock(vcpu);
    if (r <= 0) return r;
    if (run.requestInterruptWindow && vcpu.vm.pic === null && readyForInterruptInjection(vcpu)) {
      if (t) t.record("kvmExitIrqWindowOpen");
      run.exitReason = KvmExit.IRQ_WINDOW_OPEN;
      return 0;
    }
    if ((++rounds & 63) === 0 && cpu.deadline !== Infinity && performance.now() >= cpu.deadline) {
      cpu.interruptedByHost = true;
      run.exitReason = KvmExit.INTR;
      return 0;
    }
  }
}

/**
 * vcpu_enter_guest: run the in-kernel timer if it is due, inject pending events, run
 * (vmxVcpuRun), handle the exit (vmxHandleExit).
 */
export function vcpuEnterGuest(vcpu: Vcpu): number {
  const vm = vcpu.vm;
  const t = vm.tracer;
  if (t) t.record("vcpuEnterGuest");
  const pit = vm.pit, pic = picOf(vcpu);
  const cpu = vcpu.cpu;
  if (pit !== null) {
    if (pit.nextEventTime !== Infinity && vm.clock() >= pit.nextEventTime) kvmPitTimerFn(vcpu);
    // The PIT's next edge arrives as a host interrupt at that instruction count (the first vCPU's).
    cpu.hostIntrAt = vcpu === vm.vcpus[0] ? pit.nextEventTime - vcpu.idleNs : Infinity;
  }
  if (vm.timers !== null) kvmRunTimers(vcpu, vm.timers);
  if (vcpu.pendingEvent !== null || vcpu.queuedIrq >= 0 || (pic !== null && pic.output) || vcpu.kvmRun.requestInterruptWindow) {
    injectPendingEvent(vcpu);
  }
  const ops = vm.module.ops;
  ops.run(vcpu);
  return ops.handleExit(vcpu);
}

/**
 * The PIC whose INT line reaches this vCPU: the first vCPU's (the PIC is wired to the boot
 * processor, as KVM routes it through the BSP's LINT0), null for the others and without one.
 */
function picOf(vcpu: Vcpu) {
  const vm = vcpu.vm;
  return vcpu === vm.vcpus[0] ? vm.pic : null;
}

/** The other devices' timers (Vm.addTimer): update the due ones, and stop the guest at the next. */
function kvmRunTimers(vcpu: Vcpu, timers: KvmTimer[]): void {
  const vm = vcpu.vm, cpu = vcpu.cpu;
  const now = vm.clock();
  let next = vm.pit !== null ? cpu.hostIntrAt + vcpu.idleNs : Infinity;
  for (let i = 0; i < timers.length; i++) {
    const tm = timers[i];
    if (tm.nextEventTime <= now) {
      tm.update();
      vm.tracer?.record("kvmTimerFn", { device: tm.name, clock: now });
    }
    if (tm.nextEventTime < next) next = tm.nextEventTime;
  }
  cpu.hostIntrAt = vcpu === vm.vcpus[0] ? next - vcpu.idleNs : Infinity;
}

/** The PIT's timer callback (pit_timer_fn): signal the edges that are due on IRQ0. */
function kvmPitTimerFn(vcpu: Vcpu): void {
  const vm = vcpu.vm;
  const fired = vm.pit!.update();
  vm.tracer?.record("kvmPitTimerFn", { clock: vm.clock(), irq0: fired });
}

/**
 * inject_pending_event: an exception first; else an external interrupt (KVM_INTERRUPT's queued
 * vector, or the in-kernel PIC's INTA) when the guest can take one. An interrupt that has to wait
 * turns interrupt-window exiting on, so the guest exits the moment it can take it (vmx.c's
 * enable_irq_window); so does userspace's request_interrupt_window.
 */
function injectPendingEvent(vcpu: Vcpu): void {
  const ops = vcpu.vm.module.ops;
  const pic = picOf(vcpu);
  const t = vcpu.vm.tracer;
  const ev = vcpu.pendingEvent;
  if (ev !== null) {
    vcpu.pendingEvent = null;
    injectException(vcpu, ev);
  } else if (ops.interruptAllowed(vcpu)) {
    if (vcpu.queuedIrq >= 0) {
      if (t) t.record("kvmInjectIrq", { vector: vcpu.queuedIrq, source: "KVM_INTERRUPT" });
      ops.injectIrq(vcpu, vcpu.queuedIrq);
      vcpu.queuedIrq = -1;
    } else if (pic !== null && pic.output) {
      const vector = pic.readIrq(); // kvm_cpu_get_interrupt: the PIC's INTA cycle
      if (t) t.record("kvmInjectIrq", { vector, source: "pic" });
      ops.injectIrq(vcpu, vector);
    }
  }
  const run = vcpu.kvmRun;
  if (vcpu.queuedIrq >= 0 || (pic !== null && pic.output) || (run.requestInterruptWindow && pic === null)) {
    ops.enableIrqWindow(vcpu);
  }
}

/** Queue vcpu->arch.interrupt (kvm_queue_interrupt): KVM_INTERRUPT with a userspace irqchip. */
export function kvmQueueInterrupt(vcpu: Vcpu, vector: number): void {
  vcpu.vm.tracer?.record("kvmQueueInterrupt", { vector });
  vcpu.queuedIrq = vector;
}

function injectException(vcpu: Vcpu, ev: { vector: number; errorCode: number; type: number }): void {
  const st = vcpu.cpu.st;
  // Real-mode exceptions push no error code, and VM entry refuses to deliver one with CR0.PE=0
  // (SDM 26.2.1.3), so KVM drops it there (kvm_inject_exception: has_error_code &= is_protmode).
  const hasErrorCode = ev.errorCode >= 0 && (st[St.CR0] & Cr0.PE) !== 0;
  const info = ev.vector | (ev.type << IntrInfo.TYPE_SHIFT) | IntrInfo.VALID | (hasErrorCode ? IntrInfo.ERROR_CODE_VALID : 0);
  vcpu.vmcs.write(VmcsField.VM_ENTRY_INTR_INFO_FIELD, info >>> 0);
  if (hasErrorCode) vcpu.vmcs.write(VmcsField.VM_ENTRY_EXCEPTION_ERROR_CODE, ev.errorCode);
}

// ---------------------------------------------------------------------------------------------
// PIO
// ---------------------------------------------------------------------------------------------

/**
 * kvm_emulate_pio: an IN or OUT (non-string) of `size` bytes at `port`.
 * @returns 1 when an in-kernel device handled it (the guest resumes), 0 when kvm_run.io is
 *   filled for userspace
 */
export function kvmEmulatePio(vcpu: Vcpu, isIn: boolean, size: number, port: number): number {
  const vm = vcpu.vm;
  const t = vm.tracer;
  if (t) tracePio(t, port, size, isIn);
  const pio = vcpu.pio;
  pio.isIn = isIn; pio.size = size; pio.port = port; pio.count = 1; pio.string = false; pio.rep = false;
  const run = vcpu.kvmRun;
  const data = run.data;
  if (!isIn) {
    const v = vcpu.cpu.st[0];
    data[0] = v; data[1] = v >> 8; data[2] = v >> 16; data[3] = v >> 24;
  }
  vm.countPio(port, isIn, 1);
  if (kernelPio(vcpu, data, 0)) return completeIo(vcpu);
  run.exitReason = KvmExit.IO;
  const io = run.io;
  io.direction = isIn ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
  io.size = size; io.port = port; io.count = 1; io.dataOffset = 0;
  if (isIn) data.fill(0xff, 0, size); // what userspace leaves untouched reads as an open bus
  vcpu.completeUserspaceIo = completeIo;
  return 0;
}

/**
 * INS/OUTS (with or without REP): up to one data page of elements per exit, the element count
 * also capped by the instruction budget so that counts stay exact.
 */
export function kvmEmulatePioString(vcpu: Vcpu, isIn: boolean, size: number, port: number, rep: boolean): number {
  const vm = vcpu.vm, cpu = vcpu.cpu, st = cpu.st;
  const t = vm.tracer;
  const info = vcpu.vmcs.vmxInstructionInfo;
  const asz = (info >> 7) & 1 ? 4 : 2;
  const seg = (info >> 15) & 7;
  const cx = asz === 4 ? st[2] >>> 0 : cpu.st16[4];
  let count = rep ? cx : 1;
  count = Math.min(count, Math.floor(4096 / size), cpu.timer === Infinity ? count : Math.max(1, cpu.timer));
  if (t) t.record("kvmEmulatePio", { port, size, direction: isIn ? "in" : "out", count, string: true, rep });
  const pio = vcpu.pio;
  pio.isIn = isIn; pio.size = size; pio.port = port; pio.string = true; pio.rep = rep; pio.asz = asz; pio.seg = seg;
  const run = vcpu.kvmRun;
  const data = run.data;
  // Memory without a memslot (MMIO) takes an exit of its own, as KVM's emulator does: the elements
  // before it move in this exit; an element in MMIO moves alone, its memory access going to
  // userspace as KVM_EXIT_MMIO (before the port access for OUTS, after it for INS).
  const delta = st[St.RFLAGS] & Fl.DF ? -size : size;
  const idxReg = isIn ? 14 : 12; // EDI or ESI, Int32Array index
  let idx = asz === 4 ? st[idxReg] : cpu.st16[idxReg * 2];
  const memSeg = isIn ? Seg.ES : seg;
  let k = 0, page = -1;
  for (; k < count; k++) {
    // One look per page (and at every element that crosses into the next).
    const la = (cpu.segBase[memSeg] + (idx >>> 0)) | 0;
    if (((la >>> 12) !== page || (la & 0xfff) + size > 0x1000) && cpu.isMmio(memSeg, idx, size, isIn)) break;
    page = la >>> 12;
    idx = asz === 4 ? (idx + delta) | 0 : (idx + delta) & 0xffff;
  }
  pio.mmio = k === 0 && count > 0;
  if (k < count) count = Math.max(k, 1);
  if (!isIn) {
    if (pio.mmio) return stringMmioExit(vcpu, seg, asz === 4 ? st[12] : cpu.st16[24], size, false, 0);
    // Gather the elements from DS:ESI (or the override); a fault stops the gathering there.
    let si = asz === 4 ? st[12] : cpu.st16[24];
    k = 0;
    try {
      for (; k < count; k++) {
        const v = cpu.rd(seg, si, size);
        for (let b = 0; b < size; b++) data[k * size + b] = v >> (8 * b);
        si = asz === 4 ? (si + delta) | 0 : (si + delta) & 0xffff;
      }
    } catch (e) {
      if (!(e instanceof CpuFault)) throw e;
      if (k === 0) {
        vm.module.ops.queueException(vcpu, e.vector, e.errorCode);
        return 1;
      }
    }
    count = k;
  }
  return pioStringTransfer(vcpu, count);
}

/** The port side of a string IO exit: `count` elements, in the kernel or in userspace. */
function pioStringTransfer(vcpu: Vcpu, count: number): number {
  const pio = vcpu.pio, run = vcpu.kvmRun, data = run.data;
  const { isIn, size, port } = pio;
  const vm = vcpu.vm;
  pio.count = count;
  vm.countPio(port, isIn, count);
  if (kernelPio(vcpu, data, 0)) return completeIo(vcpu);
  run.exitReason = KvmExit.IO;
  const io = run.io;
  io.direction = isIn ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
  io.size = size; io.port = port; io.count = count; io.dataOffset = 0;
  if (isIn) data.fill(0xff, 0, size * count);
  vcpu.completeUserspaceIo = completeIo;
  return 0;
}

/**
 * kernel_pio: offer the access to the in-kernel PIO bus.
 * @returns true when a device on the bus claimed the port
 */
export function kernelPio(vcpu: Vcpu, data: Uint8Array, offset: number): boolean {
  const vm = vcpu.vm;
  const pio = vcpu.pio;
  const dev = vm.pioBus.find(pio.port);
  if (dev === undefined) return false;
  const t = vm.tracer;
  if (t) t.record("kernelPio", deviceArgs(pio.port, dev.name));
  const size = pio.size as 1 | 2 | 4;
  for (let k = 0; k < pio.count; k++) {
    const o = offset + k * size;
    if (pio.isIn) {
      const v = dev.read(pio.port, size);
      for (let b = 0; b < size; b++) data[o + b] = v >> (8 * b);
    } else {
      let v = 0;
      for (let b = size - 1; b >= 0; b--) v = (v << 8) | data[o + b];
      dev.write(pio.port, size, v >>> 0);
    }
  }
  return true;
}

/**
 * complete_io (complete_pio): move IN data into the guest, advance the string registers, and skip
 * the instruction unless a REP string has elements left.
 */
export function completeIo(vcpu: Vcpu): number {
  const t = vcpu.vm.tracer;
  const pio = vcpu.pio;
  if (t) traceCompleteIo(t, pio);
  if (pio.string) return completeIoString(vcpu);
  if (pio.isIn) {
    const data = vcpu.kvmRun.data, size = pio.size, cpu = vcpu.cpu;
    let v = 0;
    for (let b = size - 1; b >= 0; b--) v = (v << 8) | data[b];
    if (size === 1) cpu.st8[0] = v; else if (size === 2) cpu.st16[0] = v; else cpu.st[0] = v;
  }
  vcpu.vm.module.ops.skipEmulatedInstruction(vcpu);
  return 1;
}
// Trace points of the PIO path build their arguments out of line: an object literal in the
// function itself would count against the JIT's inlining budget on every exit, traced or not.
function tracePio(t: Tracer, port: number, size: number, isIn: boolean): void {
  t.record("kvmEmulatePio", { port, size, direction: isIn ? "in" : "out" });
}
function deviceArgs(port: number, device: string): Record<string, unknown> {
  return { port, device };
}
function traceCompleteIo(t: Tracer, pio: Vcpu["pio"]): void {
  t.record("completeIo", { port: pio.port, direction: pio.isIn ? "in" : "out", count: pio.count });
}

/** complete_io for INS/OUTS: move the elements, advance the index registers and the count. */
function completeIoString(vcpu: Vcpu): number {
  const pio = vcpu.pio, cpu = vcpu.cpu, st = cpu.st;
  const data = vcpu.kvmRun.data;
  const size = pio.size;
  const ops = vcpu.vm.module.ops;
  const asz = pio.asz;
  const delta = st[St.RFLAGS] & Fl.DF ? -size : size;
  const idxReg = pio.isIn ? 14 : 12; // EDI or ESI, Int32Array index
  let idx = asz === 4 ? st[idxReg] : cpu.st16[idxReg * 2];
  let done = 0;
  try {
    for (; done < pio.count; done++) {
      if (pio.isIn) {
        let v = 0;
        for (let b = size - 1; b >= 0; b--) v = (v << 8) | data[done * size + b];
        if (pio.mmio) return stringMmioExit(vcpu, Seg.ES, idx, size, true, v >>> 0);
        cpu.wr(Seg.ES, idx, size, v);
      }
      idx = asz === 4 ? (idx + delta) | 0 : (idx + delta) & 0xffff;
    }
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    ops.queueException(vcpu, e.vector, e.errorCode);
  }
  return finishIoString(vcpu, done, idx);
}

/** Store the index register, count the elements done and skip the instruction when it is over. */
function finishIoString(vcpu: Vcpu, done: number, idx: number): number {
  const pio = vcpu.pio, cpu = vcpu.cpu, st = cpu.st;
  const ops = vcpu.vm.module.ops;
  const asz = pio.asz;
  const idxReg = pio.isIn ? 14 : 12;
  if (asz === 4) st[idxReg] = idx; else cpu.st16[idxReg * 2] = idx;
  let remaining = 0;
  if (pio.rep) {
    if (asz === 4) { st[2] = (st[2] - done) | 0; remaining = st[2]; }
    else { cpu.st16[4] = (cpu.st16[4] - done) & 0xffff; remaining = cpu.st16[4]; }
  }
  // Each element is one retired instruction (the REP rule of the processor).
  if (remaining !== 0 || done < pio.count) cpu.retire(done);
  else {
    cpu.retire(Math.max(0, done - 1));
    ops.skipEmulatedInstruction(vcpu);
  }
  return 1;
}

// ---------------------------------------------------------------------------------------------
// CPUID, HLT, hypercalls, MSRs
// ---------------------------------------------------------------------------------------------

/** kvm_emulate_cpuid: answer from the CPUID table (KVM_SET_CPUID2); unknown leaves read as zero. */
export function kvmEmulateCpuid(vcpu: Vcpu): number {
  const st = vcpu.cpu.st;
  const fn = st[0] >>> 0, idx = st[2] >>> 0;
  const e = vcpu.vm.cpuid.find((x) => x.function === fn && (!x.significantIndex || x.index === idx));
  vcpu.vm.tracer?.record("kvmEmulateCpuid", { function: fn, index: idx });
  st[0] = e?.eax ?? 0;
  st[6] = e?.ebx ?? 0;
  st[2] = e?.ecx ?? 0;
  st[4] = e?.edx ?? 0;
  // CPUID leaf 1 loads the microcode update signature into IA32_BIOS_SIGN_ID[63:32] (SDM Vol. 3A
  // 10.11.7.1: software writes 0 to the MSR, executes CPUID.1, then reads the MSR).
  if (fn === 1) vcpu.msrs.set(KnownMsr.IA32_BIOS_SIGN_ID, MICROCODE_REVISION * 2 ** 32);
  vcpu.vm.module.ops.skipEmulatedInstruction(vcpu);
  return 1;
}

/**
 * kvm_emulate_halt: skip the HLT, then halt the vCPU. Without an in-kernel irqchip userspace
 * owns interrupts, so the HLT goes to userspace (KVM_EXIT_HLT); with one, the vCPU waits in the
 * kernel (vcpuBlock) for an interrupt.
 */
export function kvmEmulateHalt(vcpu: Vcpu): number {
  vcpu.vm.tracer?.record("kvmEmulateHalt");
  vcpu.vm.module.ops.skipEmulatedInstruction(vcpu);
  vcpu.cpu.st[St.ACTIVITY] = 0;
  if (vcpu.vm.pic === null) {
    vcpu.kvmRun.exitReason = KvmExit.HLT;
    return 0;
  }
  vcpu.mpState = MpState.HALTED;
  return 1;
}

/**
 * kvm_arch_vcpu_runnable: a halted vCPU wakes for an exception to inject or an interrupt it can
 * take (IF=1, no blocking).
 */
function kvmArchVcpuRunnable(vcpu: Vcpu): boolean {
  if (vcpu.pendingEvent !== null) return true;
  const pic = picOf(vcpu);
  const pending = vcpu.queuedIrq >= 0 || (pic !== null && pic.output);
  return pending && vcpu.vm.module.ops.interruptAllowed(vcpu);
}

/**
 * vcpu_block (kvm_vcpu_block): a halted vCPU waits for kvmArchVcpuRunnable. Nothing runs while it
 * waits, so virtual time jumps to the in-kernel timer's next edge when that edge can wake it (the
 * PIT armed, IF=1, and the PIC would raise INT for IRQ0); the guest TSC moves on with it (through
 * TSC_OFFSET, as the host TSC runs on while a vCPU sleeps). When nothing in the kernel can wake
 * it, the HLT goes to userspace as KVM_EXIT_HLT after all. The instruction budget does not count
 * halted time; the wall-clock deadline is checked in vcpuRun.
 */
function vcpuBlock(vcpu: Vcpu): number {
  const vm = vcpu.vm;
  const pit = vm.pit, pic = picOf(vcpu);
  const t = vm.tracer;
  for (let slept = 0; ; slept++) {
    if (pit !== null && pit.nextEventTime !== Infinity && vm.clock() >= pit.nextEventTime) kvmPitTimerFn(vcpu);
    const timers = vm.timers;
    if (timers !== null) {
      const now = vm.clock();
      for (const tm of timers) if (tm.nextEventTime <= now) tm.update();
    }
    if (kvmArchVcpuRunnable(vcpu)) {
      if (t) t.record("kvmVcpuWakeup");
      vcpu.mpState = MpState.RUNNABLE;
      vcpu.idleNotified = false;
      return 1;
    }
    if (slept !== 0 || pic === null || (vcpu.cpu.st[St.RFLAGS] & Fl.IF) === 0) break;
    // The next timer edge that would wake the vCPU: the PIT's on IRQ0, another device's on its line.
    let wake = pit !== null && pit.nextEventTime !== Infinity && pic.wouldInterrupt(0) ? pit.nextEventTime : Infinity;
    if (timers !== null) {
      for (const tm of timers) if (tm.nextEventTime < wake && pic.wouldInterrupt(tm.irq)) wake = tm.nextEventTime;
    }
    if (wake === Infinity) break;
    const ns = wake - vm.clock();
    if (vcpu.idleExit && !vcpu.idleNotified) {
      // Userspace asked to hear of it before the time jump; the next KVM_RUN comes back here.
      vcpu.idleNotified = true;
      vcpu.kvmRun.idle.sleepNs = ns;
      vcpu.kvmRun.exitReason = KvmExit.IDLE;
      return 0;
    }
    if (t) t.record("kvmVcpuBlock", { sleepNs: ns });
    vcpu.idleNs += ns;
    vcpu.vmcs.write(VmcsField.TSC_OFFSET, vcpu.vmcs.read(VmcsField.TSC_OFFSET) + ns);
  }
  vcpu.mpState = MpState.RUNNABLE;
  vcpu.idleNotified = false;
  vcpu.kvmRun.exitReason = KvmExit.HLT;
  return 0;
}

/**
 * kvm_emulate_hypercall: hypercall nr in RAX, arguments in RBX, RCX, RDX, RSI; every hypercall goes
 * to userspace as KVM_EXIT_HYPERCALL, and the value userspace leaves in `hypercall.ret` (default
 * -KVM_ENOSYS) lands in RAX when the guest resumes.
 */
export function kvmEmulateHypercall(vcpu: Vcpu): number {
  const st = vcpu.cpu.st;
  const run = vcpu.kvmRun;
  const hc = run.hypercall;
  hc.nr = st[0] >>> 0;
  hc.args[0] = st[6] >>> 0; hc.args[1] = st[2] >>> 0; hc.args[2] = st[4] >>> 0; hc.args[3] = st[12] >>> 0;
  hc.args[4] = 0; hc.args[5] = 0;
  hc.ret = -KVM_ENOSYS;
  vcpu.vm.tracer?.record("kvmEmulateHypercall", { nr: hc.nr });
  run.exitReason = KvmExit.HYPERCALL;
  vcpu.completeUserspaceIo = completeHypercall;
  return 0;
}
function completeHypercall(vcpu: Vcpu): number {
  vcpu.cpu.st[0] = vcpu.kvmRun.hypercall.ret;
  vcpu.vm.module.ops.skipEmulatedInstruction(vcpu);
  return 1;
}

/** The MSRs KVM emulates in the kernel (kvm_get_msr_common): a documented set. */
export const KnownMsr = {
  IA32_TSC: 0x10, IA32_PLATFORM_ID: 0x17, IA32_APIC_BASE: 0x1b, IA32_BIOS_SIGN_ID: 0x8b, IA32_FEATURE_CONTROL: 0x3a, IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175, IA32_SYSENTER_EIP: 0x176, IA32_MISC_ENABLE: 0x1a0, IA32_PAT: 0x277,
  IA32_EFER: 0xc0000080, IA32_TSC_AUX: 0xc0000103,
} as const;
const MSR_DEFAULTS = new Map<number, number>([
  [KnownMsr.IA32_APIC_BASE, 0xfee00900], [KnownMsr.IA32_MISC_ENABLE, 1], [KnownMsr.IA32_PAT, 0x0007040600070406],
  [KnownMsr.IA32_FEATURE_CONTROL, 0],
]);
const KNOWN = new Set<number>(Object.values(KnownMsr));

/**
 * MSRs whose value is guest state the processor (and the VMCS guest-state area) keeps: reading
 * them through RDMSR, KVM_GET_SREGS or VMREAD must agree, so they live in one place, the state block.
 */
const MSR_STATE = new Map<number, number>([
  [KnownMsr.IA32_EFER, St.EFER], [KnownMsr.IA32_SYSENTER_CS, St.SYSENTER_CS],
  [KnownMsr.IA32_SYSENTER_ESP, St.SYSENTER_ESP], [KnownMsr.IA32_SYSENTER_EIP, St.SYSENTER_EIP],
  [KnownMsr.IA32_TSC_AUX, St.TSC_AUX],
]);

/** The guest TSC: retired instructions plus TSC_OFFSET when TSC offsetting is on, as RDTSC reads it (SDM 25.3). */
export function kvmReadTsc(vcpu: Vcpu): number {
  const v = vcpu.vmcs;
  const offsetting = (v.read(VmcsField.CPU_BASED_VM_EXEC_CONTROL) & CpuBased.USE_TSC_OFFSETTING) !== 0;
  return vcpu.cpu.icount + (offsetting ? v.read(VmcsField.TSC_OFFSET) : 0);
}
function msrValue(vcpu: Vcpu, msr: number): number {
  if (msr === KnownMsr.IA32_TSC) return kvmReadTsc(vcpu);
  const word = MSR_STATE.get(msr);
  if (word !== undefined) return (vcpu.cpu.st[word] >>> 0) + (vcpu.cpu.st[word + 1] >>> 0) * 2 ** 32;
  return vcpu.msrs.get(msr) ?? MSR_DEFAULTS.get(msr) ?? 0;
}
/** RDMSR: known MSRs in the kernel; others #GP(0), or KVM_EXIT_X86_RDMSR when userspace asked for them. */
export function kvmEmulateRdmsr(vcpu: Vcpu): number {
  const st = vcpu.cpu.st;
  const msr = st[2] >>> 0;
  const ops = vcpu.vm.module.ops;
  vcpu.vm.tracer?.record("kvmEmulateRdmsr", { msr });
  if (KNOWN.has(msr)) {
    const v = msrValue(vcpu, msr);
    st[0] = v % 2 ** 32;
    st[4] = Math.floor(v / 2 ** 32);
    ops.skipEmulatedInstruction(vcpu);
    return 1;
  }
  if (vcpu.vm.userspaceMsr) {
    const run = vcpu.kvmRun;
    run.exitReason = KvmExit.X86_RDMSR;
    run.msr.index = msr; run.msr.data = 0; run.msr.error = 0;
    vcpu.completeUserspaceIo = (v) => {
      if (v.kvmRun.msr.error) { ops.queueException(v, 13, 0); return 1; }
      v.cpu.st[0] = v.kvmRun.msr.data % 2 ** 32;
      v.cpu.st[4] = Math.floor(v.kvmRun.msr.data / 2 ** 32);
      ops.skipEmulatedInstruction(v);
      return 1;
    };
    return 0;
  }
  ops.queueException(vcpu, 13, 0);
  return 1;
}
/** WRMSR: the counterpart of kvmEmulateRdmsr. */
export function kvmEmulateWrmsr(vcpu: Vcpu): number {
  const st = vcpu.cpu.st;
  const msr = st[2] >>> 0;
  const v = (st[0] >>> 0) + (st[4] >>> 0) * 2 ** 32;
  const ops = vcpu.vm.module.ops;
  vcpu.vm.tracer?.record("kvmEmulateWrmsr", { msr, value: v });
  if (KNOWN.has(msr)) {
    const word = MSR_STATE.get(msr);
    // guest_write_tsc: a write to IA32_TSC moves TSC_OFFSET, so RDTSC and RDMSR keep agreeing.
    if (msr === KnownMsr.IA32_TSC) vcpu.vmcs.write(VmcsField.TSC_OFFSET, v - vcpu.cpu.icount);
    else if (msr === KnownMsr.IA32_EFER && (v & 0x100)) { ops.queueException(vcpu, 13, 0); return 1; }
    else if (word !== undefined) { st[word] = v % 2 ** 32; st[word + 1] = Math.floor(v / 2 ** 32); }
    else vcpu.msrs.set(msr, v);
    ops.skipEmulatedInstruction(vcpu);
    return 1;
  }
  if (vcpu.vm.userspaceMsr) {
    const run = vcpu.kvmRun;
    run.exitReason = KvmExit.X86_WRMSR;
    run.msr.index = msr; run.msr.data = v; run.msr.error = 0;
    vcpu.completeUserspaceIo = (vc) => {
      if (vc.kvmRun.msr.error) { ops.queueException(vc, 13, 0); return 1; }
      ops.skipEmulatedInstruction(vc);
      return 1;
    };
    return 0;
  }
  ops.queueException(vcpu, 13, 0);
  return 1;
}
export { KvmError };

/**
 * The memory side of a string IO element in MMIO goes to userspace as KVM_EXIT_MMIO. OUTS reads it
 * first (its completion then does the port access); INS writes it after the port access (its
 * completion finishes the element). The access is at seg:off, whose linear address `isMmio` found
 * without a memslot; a fault found now is raised instead.
 */
function stringMmioExit(vcpu: Vcpu, seg: number, off: number, size: number, isWrite: boolean, value: number): number {
  const cpu = vcpu.cpu;
  vcpu.pio.mmio = false;
  let gpa: number;
  try {
    gpa = cpu.gpaOf(seg, off, size, isWrite);
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    vcpu.vm.module.ops.queueException(vcpu, e.vector, e.errorCode);
    return 1;
  }
  const run = vcpu.kvmRun;
  run.exitReason = KvmExit.MMIO;
  run.mmio.physAddr = gpa;
  run.mmio.len = size;
  run.mmio.isWrite = isWrite;
  run.mmio.data.fill(isWrite ? 0 : 0xff);
  if (isWrite) for (let b = 0; b < size; b++) run.mmio.data[b] = value >> (8 * b);
  vcpu.completeUserspaceIo = isWrite ? completeStringMmioWrite : completeStringMmioRead;
  return 0;
}
function completeStringMmioRead(vcpu: Vcpu): number {
  const size = vcpu.pio.size, run = vcpu.kvmRun;
  for (let b = 0; b < size; b++) run.data[b] = run.mmio.data[b];
  return pioStringTransfer(vcpu, 1);
}
function completeStringMmioWrite(vcpu: Vcpu): number {
  const pio = vcpu.pio, cpu = vcpu.cpu;
  const delta = cpu.st[St.RFLAGS] & Fl.DF ? -pio.size : pio.size;
  const idx = pio.asz === 4 ? (cpu.st[14] + delta) | 0 : (cpu.st16[28] + delta) & 0xffff;
  return finishIoString(vcpu, 1, idx);
}
