/**
 * Differential harness: run the same guest under two engines and compare everything a run leaves
 * behind (console, exit, instruction count, exits by reason, registers, EFLAGS, segment registers,
 * a hash of all guest RAM, the IO a hook saw, the x87 state).
 */
import { Buffer } from "node:buffer";
import { Machine, type MachineOptions } from "../runtime/vmm/machine.ts";
import { type Engine, useEngine } from "../runtime/vmm/tiering.ts";
import { fpuStateHex } from "../runtime/cpu/x87/x87.ts";
import type { JitEngine, JitOptions, JitStats } from "../jit/engine.ts";

export interface GuestSpec {
  mode: "real" | "protected" | "paged";
  image: Uint8Array;
  format?: "raw" | "elf" | "multiboot";
  load?: number;
  regs?: Record<string, number>;
  budget?: number;
  /** Ports whose OUTs are recorded by a userspace hook (and whose INs return a counter). */
  ioPorts?: number[];
  machine?: MachineOptions;
}

/** Everything compared between engines. */
export interface RunSummary {
  console: string;
  exit: string;
  instructions: number;
  exits: Record<string, number>;
  regs: Record<string, number>;
  sregs: string;
  memHash: string;
  io: number[];
  /** The x87 state block (FCW..R7) as hex. */
  fpu: string;
}

/** FNV-1a over 32-bit words (fast enough for 16 MiB per run). */
export function hashMemory(bytes: Uint8Array): string {
  const w = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
  let h = 0x811c9dc5 | 0;
  for (let k = 0; k < w.length; k++) h = Math.imul(h ^ w[k], 16777619);
  return (h >>> 0).toString(16);
}

/** Run `g` under `engine`; returns the summary and the JIT engine (for stats). */
export async function runGuest(g: GuestSpec, engine: Engine, opts: JitOptions = {}): Promise<{ sum: RunSummary; jit: JitEngine | null; m: Machine }> {
  const m = new Machine({ mode: g.mode, ...g.machine });
  m.load(g.image, { format: g.format ?? "raw", loadAddr: g.load });
  if (g.regs) m.vcpu.setRegs(g.regs);
  m.onHypercall(1, (a) => (a[0] + a[1]) | 0);
  const io: number[] = [];
  let inCount = 0;
  for (const port of g.ioPorts ?? []) {
    m.onIo({ port, direction: "out", name: `rec${port}`, handler: (x) => { io.push(port, x.value >>> 0); } });
    m.onIo({ port, direction: "in", name: `in${port}`, handler: () => 0x5a + inCount++ });
  }
  const jit = await useEngine(m, engine, { validate: true, strict: true, ...opts });
  const r = m.run({ budget: g.budget ?? 50_000_000 });
  const regs = m.vcpu.getRegs() as unknown as Record<string, number>;
  const sum: RunSummary = {
    console: m.console,
    exit: r.exit.reason,
    instructions: r.instructions,
    exits: r.exits,
    regs: { ...regs },
    sregs: JSON.stringify(m.vcpu.getSregs()),
    memHash: hashMemory(m.vm.memoryView(0, m.memSize)),
    io,
    fpu: fpuStateHex(m.vcpu.cpu),
  };
  return { sum, jit, m };
}

/** The first difference between two summaries, or null. */
export function firstDifference(a: RunSummary, b: RunSummary): string | null {
  for (const k of Object.keys(a) as (keyof RunSummary)[]) {
    const x = JSON.stringify(a[k]), y = JSON.stringify(b[k]);
    if (x !== y) return `${k}: ${x} vs ${y}`;
  }
  return null;
}

/**
 * Two reusable machines, one interpreted and one under the JIT, for running many small guests
 * fast (the fuzzer): each run resets both (zeroing only the pages written), and RAM is compared
 * byte for byte instead of hashed. Needs binaryen loaded (`await loadJit()`).
 */
export class DiffPair {
  private readonly a: Machine;
  private readonly b: Machine;
  constructor(
    opts: MachineOptions & { mode: "protected" | "paged" },
    jit: JitOptions = {},
    private readonly ioPorts: number[] = [],
    engine: "jit" | "auto" = "jit",
  ) {
    this.a = new Machine({ ...opts, reusable: true, engine: "interp" });
    this.b = new Machine({ ...opts, reusable: true, engine, jit: { strict: true, ...jit } });
  }

  /** The JIT machine's engine counters (since its last reset). */
  get jitStats(): JitStats | null {
    return this.b.jitStats;
  }

  /** Run `image` at `load` with `regs` on both machines; returns the first difference, or null. */
  compare(image: Uint8Array, load: number, regs: Record<string, number>, budget: number): string | null {
    const sa = this.runOne(this.a, image, load, regs, budget);
    const sb = this.runOne(this.b, image, load, regs, budget);
    const d = firstDifference(sa, sb);
    if (d !== null) return d;
    const ra = this.a.vm.memoryView(0, this.a.memSize), rb = this.b.vm.memoryView(0, this.b.memSize);
    if (!bytesEqual(ra, rb)) {
      let k = 0;
      while (ra[k] === rb[k]) k++;
      return `memory at 0x${k.toString(16)}: 0x${ra[k].toString(16)} vs 0x${rb[k].toString(16)}`;
    }
    return null;
  }

  private runOne(m: Machine, image: Uint8Array, load: number, regs: Record<string, number>, budget: number): RunSummary {
    m.reset();
    m.load(image, { format: "raw", loadAddr: load });
    m.vcpu.setRegs(regs);
    const io: number[] = [];
    for (const port of this.ioPorts) m.onIo({ port, direction: "out", name: `rec${port}`, handler: (x) => { io.push(port, x.value >>> 0); } });
    const r = m.run({ budget });
    return {
      console: m.console, exit: r.exit.reason, instructions: r.instructions, exits: r.exits,
      regs: { ...(m.vcpu.getRegs() as unknown as Record<string, number>) }, sregs: JSON.stringify(m.vcpu.getSregs()),
      memHash: "", io, fpu: fpuStateHex(m.vcpu.cpu),
    };
  }
}

/** Whether two byte arrays are equal (memcmp through node:buffer). */
function bytesEqual(x: Uint8Array, y: Uint8Array): boolean {
  return x.length === y.length && Buffer.compare(x, y) === 0;
}
