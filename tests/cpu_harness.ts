/**
 * A small harness for processor tests: a VM with 16 MiB of RAM at guest-physical 0, one vCPU in
 * real mode or flat 32-bit protected mode, and a run loop that goes until the guest halts.
 *
 * It drives the same KVM-shaped API a VMM uses (`Kvm.openSync`, `createVm`, `setUserMemoryRegion`,
 * `createVcpu`, `setSregs`, `setRegs`, `run`), so what a test sees is what a script sees.
 *
 * - IN reads return all ones (the open bus); OUT writes are recorded in `io` and otherwise ignored.
 * - The run stops at the first exit that is not IO: HLT normally, or SHUTDOWN, MMIO, BUDGET ...
 * - A zero IVT entry jumps to 0:0 as on silicon unless `nullVectorIsFatal` is set.
 * - `VMXLAB_ENGINE=jit|auto` attaches the JIT to the processor, as it does for every Machine.
 *
 * Memory layout: the real-mode IVT at 0 (0x400 bytes); in protected mode a GDT at 0x500 (null, flat
 * code 0x08, flat data 0x10) and an IDT at 0x600 (256 gates, not present until `setHandler`); code
 * at 0x1000 by default; the stack below 0x8000 (real) or 0x80000 (protected).
 *
 * @example
 * ```ts
 * import { runCode } from "./cpu_harness.ts";
 * import { assertEquals } from "./assert.ts";
 * // mov eax, 7; add eax, eax; hlt
 * const r = runCode([0xb8, 7, 0, 0, 0, 0x01, 0xc0, 0xf4], { mode: "protected" });
 * assertEquals([r.exit.reason, r.regs.rax, r.insns], ["hlt", 14, 3]);
 * ```
 * @module
 */
import { Kvm, KVM_EXIT_IO_OUT, KvmExit, toVcpuExit, type KvmRegs, type KvmSegment, type VcpuExit, type Vcpu, type Vm } from "../runtime/mod.ts";
import { defaultEngine, engineFactory } from "../runtime/vmm/engines.ts";
import "../runtime/vmm/engine_env.ts"; // VMXLAB_ENGINE=jit|auto: binaryen loads with the module graph

/** Guest RAM: 16 MiB at guest-physical 0. */
export const RAM_BYTES = 16 << 20;

export type CpuMode = "real" | "protected";

/** A real-mode segment (base = selector << 4, 64 KiB limit, read/write data or code). */
export function realSeg(selector: number, code = false): KvmSegment {
  return {
    base: (selector & 0xffff) << 4, limit: 0xffff, selector: selector & 0xffff, type: code ? 0xb : 0x3, present: 1,
    dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0, unusable: 0,
  };
}
/** A flat 4 GiB 32-bit segment for protected mode (CPL 0). */
export function flatSeg(selector: number, code = false): KvmSegment {
  return {
    base: 0, limit: 0xffffffff, selector, type: code ? 0xb : 0x3, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1,
    avl: 0, unusable: 0,
  };
}

/** Where protected mode keeps its descriptor tables (see the layout above). */
export const GDT_BASE = 0x500;
export const IDT_BASE = 0x600;

/** One OUT the guest did (port writes are otherwise ignored). */
export interface IoWrite {
  port: number;
  size: number;
  value: number;
}

/** A VM with 16 MiB of RAM and one vCPU, ready for code. */
export class CpuHarness {
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  /** OUT writes seen by `run`, in order. */
  readonly io: IoWrite[] = [];

  /**
   * @param mode "real": every segment base 0, selector 0 (CS:IP = 0:ip); "protected": CR0.PE=1 with
   *   flat 32-bit code (selector 0x08) and data (0x10) segments, no GDT needed until a segment load
   */
  constructor(mode: CpuMode = "real") {
    const kvm = Kvm.openSync();
    this.vm = kvm.createVm();
    this.vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: RAM_BYTES });
    this.vcpu = this.vm.createVcpu(0);
    this.vcpu.cpu.nullVectorIsFatal = false;
    // Under VMXLAB_ENGINE=jit|auto (the test command's JIT pass) the processor runs compiled code
    // too, so these hand-built system tests hold the JIT to the SDM as they hold the interpreter.
    const engine = defaultEngine();
    if (engine !== "interp") this.vcpu.cpu.engine = engineFactory()!(this.vcpu.cpu, engine, { validate: true });
    this.setMode(mode);
  }

  /** Put the vCPU in real mode (all segments 0) or flat 32-bit protected mode. */
  setMode(mode: CpuMode): void {
    const s = this.vcpu.getSregs();
    if (mode === "real") {
      s.cr0 &= ~1;
      s.cs = realSeg(0, true);
      s.ds = s.es = s.ss = s.fs = s.gs = realSeg(0);
      s.idt = { base: 0, limit: 0x3ff };
    } else {
      s.cr0 |= 1;
      s.cs = flatSeg(0x08, true);
      s.ds = s.es = s.ss = s.fs = s.gs = flatSeg(0x10);
      // null; 0x08: code, base 0, 4 GiB, 32-bit; 0x10: data, the same (SDM 3.4.5)
      this.write(GDT_BASE, [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0, 0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0]);
      this.write(IDT_BASE, new Uint8Array(256 * 8));
      s.gdt = { base: GDT_BASE, limit: 3 * 8 - 1 };
      s.idt = { base: IDT_BASE, limit: 256 * 8 - 1 };
    }
    this.vcpu.setSregs(s);
  }

  /**
   * Route interrupt or exception `vector` to code at `addr`: an IVT entry 0:addr in real mode (addr
   * below 0x10000), a 32-bit interrupt gate to 0x08:addr in protected mode (the processor pushes
   * EFLAGS, CS, EIP and, for #DF #TS #NP #SS #GP #PF #AC, an error code).
   */
  setHandler(vector: number, addr: number): void {
    if (this.vcpu.getSregs().cr0 & 1) {
      this.write(IDT_BASE + vector * 8, [addr & 0xff, (addr >> 8) & 0xff, 0x08, 0, 0, 0x8e, (addr >> 16) & 0xff, (addr >>> 24) & 0xff]);
    } else {
      this.write(vector * 4, [addr & 0xff, (addr >> 8) & 0xff, 0, 0]);
    }
  }

  /** Set segment registers by name (`{ ds: realSeg(0x1234) }`), keeping the others. */
  setSegs(segs: Partial<Record<"cs" | "ds" | "es" | "ss" | "fs" | "gs", KvmSegment>>): void {
    this.vcpu.setSregs({ ...this.vcpu.getSregs(), ...segs });
  }

  /** Copy bytes into guest memory at a physical address. */
  write(addr: number, bytes: ArrayLike<number>): void {
    this.vm.writeGuest(addr, Uint8Array.from(bytes));
  }
  read(addr: number, len: number): Uint8Array {
    return this.vm.readGuest(addr, len);
  }
  read8(addr: number): number {
    return this.read(addr, 1)[0];
  }
  read16(addr: number): number {
    const b = this.read(addr, 2);
    return b[0] | (b[1] << 8);
  }
  /** A little-endian dword, unsigned. */
  read32(addr: number): number {
    const b = this.read(addr, 4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }
  write16(addr: number, v: number): void {
    this.write(addr, [v & 0xff, (v >> 8) & 0xff]);
  }
  write32(addr: number, v: number): void {
    this.write(addr, [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff]);
  }

  /**
   * Run until an exit other than IO (normally HLT), answering IO as an empty bus does.
   * @param maxInsns an instruction budget (a BUDGET exit ends the run when it runs out)
   * @returns the exit, the registers after it, and the instructions retired by this run
   */
  run(maxInsns = 1_000_000): RunResult {
    const vcpu = this.vcpu;
    const before = vcpu.instructions;
    vcpu.setBudget(maxInsns);
    let exit: VcpuExit;
    for (;;) {
      const run = vcpu.run();
      if (run.exitReason === KvmExit.IO) {
        const io = run.io;
        if (io.direction === KVM_EXIT_IO_OUT) {
          for (let k = 0; k < io.count; k++) {
            let v = 0;
            for (let b = io.size - 1; b >= 0; b--) v = v * 256 + run.data[io.dataOffset + k * io.size + b];
            this.io.push({ port: io.port, size: io.size, value: v });
          }
        }
        continue; // IN: leave kvm_run.data as filled (all ones)
      }
      exit = toVcpuExit(run);
      break;
    }
    vcpu.setBudget(null);
    const regs = vcpu.getRegs();
    return { exit, regs, flags: regs.rflags, insns: vcpu.instructions - before, h: this };
  }
}

export interface RunResult {
  exit: VcpuExit;
  regs: KvmRegs;
  /** EFLAGS after the run. */
  flags: number;
  /** Instructions retired during the run (the HLT included). */
  insns: number;
  /** The harness, for memory reads after the run. */
  h: CpuHarness;
}

export interface RunCodeOptions {
  mode?: CpuMode;
  /** Where the code is loaded and starts (physical = linear; CS base is 0). Default 0x1000. */
  at?: number;
  /** Initial registers; rsp defaults to 0x8000 (real) or 0x80000 (protected), rflags to 0x2. */
  regs?: Partial<KvmRegs>;
  /** Extra memory contents: [address, bytes] pairs. */
  mem?: [number, ArrayLike<number>][];
  maxInsns?: number;
}

/**
 * Load `code` into a fresh VM and run it until it halts. End the code with HLT (0xF4).
 * @returns registers, flags, the exit and the instruction count; memory through `r.h.read*`
 */
export function runCode(code: ArrayLike<number>, opts: RunCodeOptions = {}): RunResult {
  const mode = opts.mode ?? "real";
  const h = new CpuHarness(mode);
  const at = opts.at ?? 0x1000;
  h.write(at, code);
  for (const [addr, bytes] of opts.mem ?? []) h.write(addr, bytes);
  h.vcpu.setRegs({
    rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0, rbp: 0, rsp: mode === "real" ? 0x8000 : 0x80000, rflags: 0x2,
    ...opts.regs,
    rip: at,
  });
  return h.run(opts.maxInsns);
}
