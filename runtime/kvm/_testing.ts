/**
 * Test scaffolding shared by the KVM and VMX tests (the part of KVM selftests' `vm_create_with_one_vcpu`
 * we need): a VM with one memslot, a guest program copied in, and one vCPU pointed at it.
 * @module
 */
import "../vmx/vmx.ts";
import "../vmm/engine_env.ts"; // VMXLAB_ENGINE=jit|auto: binaryen loads with the module graph
import { defaultEngine, engineFactory } from "../vmm/engines.ts";
import { Kvm, type Vm } from "./kvm_main.ts";
import type { KvmSegment, Vcpu } from "./vcpu.ts";

/** Where every test program is loaded and entered. */
export const CODE = 0x1000;

export interface GuestOptions {
  /** Initial registers (RIP defaults to CODE, RSP to 0x8000, RFLAGS to 0x2). */
  regs?: Partial<Record<"rax" | "rbx" | "rcx" | "rdx" | "rsi" | "rdi" | "rsp" | "rbp" | "rip" | "rflags", number>>;
  /** Guest RAM size from guest-physical 0 (one memslot, slot 0). */
  memSize?: number;
  /** Trace the VM (`createVm({ trace: true })`). */
  trace?: boolean;
  /** The handle to create the VM on (the shared default module otherwise). */
  kvm?: Kvm;
  /** Create the in-kernel PIC and PIT (KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2) before the vCPU. */
  irqchip?: boolean;
}

/** A VM and its one vCPU. */
export interface Guest {
  kvm: Kvm;
  vm: Vm;
  vcpu: Vcpu;
}

let shared: Kvm | null = null;
function defaultKvm(): Kvm {
  return shared ??= Kvm.openSync();
}

function create(code: readonly number[], opts: GuestOptions): Guest {
  const kvm = opts.kvm ?? defaultKvm();
  const vm = kvm.createVm({ trace: opts.trace ?? false });
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: opts.memSize ?? 0x10000 });
  vm.writeGuest(CODE, new Uint8Array(code));
  if (opts.irqchip) {
    vm.createIrqchip();
    vm.createPit2();
  }
  const vcpu = vm.createVcpu(0);
  // Under VMXLAB_ENGINE=jit|auto (the test command's JIT pass) the processor runs compiled code, as
  // every Machine's does then: the KVM-level tests hold the JIT to the same exits and counts.
  const engine = defaultEngine();
  if (engine !== "interp") vcpu.cpu.engine = engineFactory()!(vcpu.cpu, engine, { validate: true });
  return { kvm, vm, vcpu };
}

/**
 * A real-mode guest: CS=DS=ES=SS=0, so guest-physical address = offset, entered at 0000:1000.
 * @param code the program's bytes, loaded at CODE
 */
export function realModeGuest(code: readonly number[], opts: GuestOptions = {}): Guest {
  const g = create(code, opts);
  const s = g.vcpu.getSregs();
  s.cs.base = 0;
  s.cs.selector = 0;
  g.vcpu.setSregs(s);
  g.vcpu.setRegs({ rip: CODE, rsp: 0x8000, rflags: 0x2, ...opts.regs });
  return g;
}

function flatSegment(type: number, selector: number): KvmSegment {
  return { base: 0, limit: 0xffffffff, selector, type, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0 };
}

/**
 * A 32-bit protected-mode guest with flat 4 GiB segments (CS 0x08, data 0x10), paging off, entered
 * at CODE. No GDT is in memory: the hidden parts are loaded through KVM_SET_SREGS, as a VMM does.
 */
export function protectedModeGuest(code: readonly number[], opts: GuestOptions = {}): Guest {
  const g = create(code, opts);
  const s = g.vcpu.getSregs();
  s.cs = flatSegment(0xb, 0x08);
  s.ds = s.es = s.ss = s.fs = s.gs = flatSegment(0x3, 0x10);
  s.cr0 = 0x11; // PE, ET
  g.vcpu.setSregs(s);
  g.vcpu.setRegs({ rip: CODE, rsp: 0x8000, rflags: 0x2, ...opts.regs });
  return g;
}

/** Bytes of an ASCII string. */
export function ascii(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
