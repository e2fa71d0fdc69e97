/**
 * Lockstep: the interpreter and the JIT side by side on two identical machines, one block at a
 * time, stopping at the first block after which their states differ (`vmrun --engine lockstep`).
 *
 * Each step runs machine A (interpreter) and machine B (JIT) for the same number of instructions:
 * the length of the block at A's RIP. The preemption-timer budget is exact in both tiers, so both
 * stop at the same instruction and B's compiled code runs that block and no more. After each step
 * the exits, instruction counts, registers and segment registers are compared; guest RAM is compared
 * every `memEvery` steps and at the end (a full compare costs milliseconds), and when it differs the run is replayed
 * from the start on fresh machines, comparing RAM after every block of the last window, so that the
 * block reported is the first whose state differs.
 */
import type { Machine, RunResult } from "./machine.ts";
import { CpuFault } from "../cpu/fault.ts";
import * as stateMod from "../cpu/state.ts";
import { fpuStateHex } from "../cpu/x87/x87.ts";
import { useEngine } from "./tiering.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { Cr0, Seg, St, TLB_ENTRIES } = stateMod;

/** Two machines built from the same options and image: A runs the interpreter, B the JIT. */
export type MachinePair = () => { a: Machine; b: Machine };

export interface LockstepOptions {
  /** Stop after this many instructions (default: no limit). */
  budget?: number;
  /** Compare guest RAM every this many blocks (default 4096; 1 compares after every block). */
  memEvery?: number;
}

/** A difference between the tiers after one block. */
export interface LockstepDifference {
  /** Blocks run before the one that differs, and instructions retired before it. */
  block: number;
  instructions: number;
  /** CS:EIP where the block starts, and its bytes. */
  cs: number;
  eip: number;
  code32: boolean;
  bytes: number[];
  /** What differs first, and the two states after the block. */
  what: string;
  interp: LockstepState;
  jit: LockstepState;
}

export interface LockstepState {
  exit: unknown;
  instructions: number;
  regs: Record<string, number>;
  sregs: unknown;
  /** The x87 state (FCW..R7) as hex. */
  fpu: string;
  /** When RAM differs: the first differing guest-physical address and 16 bytes from there. */
  memAt?: number;
  mem?: number[];
}

export interface LockstepOutcome {
  /** A's runs summed (exit of the last). */
  result: RunResult;
  blocks: number;
  difference: LockstepDifference | null;
  /** A and B as they ended. */
  a: Machine;
  b: Machine;
}

/** The first guest-physical address where the two machines' RAM differs, or -1. */
function firstMemDiff(a: Machine, b: Machine): number {
  const x = a.vm.memoryView(0, a.memSize), y = b.vm.memoryView(0, b.memSize);
  const n = Math.min(x.length, y.length);
  const xw = new Int32Array(x.buffer, x.byteOffset, n >> 2), yw = new Int32Array(y.buffer, y.byteOffset, n >> 2);
  for (let k = 0; k < xw.length; k++) {
    if (xw[k] !== yw[k]) {
      for (let j = k * 4; ; j++) if (x[j] !== y[j]) return j;
    }
  }
  return -1;
}

const stateOf = (m: Machine, r: RunResult): LockstepState => ({
  exit: JSON.parse(JSON.stringify(r.exit, (_k, v) => v instanceof Uint8Array ? [...v] : v)),
  instructions: r.instructions,
  regs: { ...m.vcpu.getRegs() } as unknown as Record<string, number>,
  sregs: m.vcpu.getSregs(),
  fpu: fpuStateHex(m.vcpu.cpu),
});

/**
 * A cheap compare after every block (no allocation): exit reason, count, GPRs, RIP, EFLAGS and the
 * segment cache. The full states are compared (as JSON) when this finds something, and at RAM checks.
 */
function quickDifference(a: Machine, b: Machine, ra: RunResult, rb: RunResult): string | null {
  if (ra.exit.reason !== rb.exit.reason) return "exit";
  if (ra.instructions !== rb.instructions) return "instructions";
  const x = a.vcpu.cpu, y = b.vcpu.cpu;
  for (let r = 0; r < 8; r++) if (x.st[r * 2] !== y.st[r * 2]) return "regs";
  if (x.st[St.RIP] !== y.st[St.RIP] || x.getFlags() !== y.getFlags()) return "regs";
  for (let s = 0; s < 8; s++) {
    if (x.segBase[s] !== y.segBase[s] || x.segLo[s] !== y.segLo[s] || x.segHi[s] !== y.segHi[s]) return "sregs";
  }
  // The x87 state: FCW through R7 (fpu_state.ts), as 32-bit words of the state block.
  for (let k = 0x400 >> 2; k < 0x4a0 >> 2; k++) if (x.st[k] !== y.st[k]) return "fpu";
  return null;
}

/** The block A is about to run: its start and bytes (empty when the fetch faults). */
function blockAt(m: Machine): { cs: number; eip: number; code32: boolean; bytes: number[]; len: number } {
  const cpu = m.vcpu.cpu;
  const eip = Number(m.vcpu.getRegs().rip) >>> 0;
  const at = { cs: cpu.getSegSel(Seg.CS), eip, code32: cpu.code32 };
  // Decode only what needs no page walk: a walk here would set accessed bits the JIT machine's run does not.
  if (cpu.st[St.CR0] & Cr0.PG) {
    const p = ((cpu.segBase[Seg.CS] + eip) | 0) >>> 12;
    if (cpu.tlbR[p & (TLB_ENTRIES - 1)] !== p) return { ...at, bytes: [], len: 1 };
  }
  try {
    const blk = cpu.getBlock(eip);
    return { ...at, bytes: blk.insns.flatMap((i) => i.bytes), len: blk.insns.length };
  } catch (e) {
    if (e instanceof CpuFault) return { ...at, bytes: [], len: 1 };
    throw e;
  }
}

/** Add a step's run to the total; the budget slices of lockstep itself are not counted as exits. */
function add(sum: RunResult, r: RunResult, slice: boolean): void {
  sum.exit = r.exit;
  sum.instructions += r.instructions;
  sum.wallMs += r.wallMs;
  for (const [k, v] of Object.entries(r.exits)) {
    const n = slice && k === "preemption_timer" ? v - 1 : v;
    if (n > 0) sum.exits[k] = (sum.exits[k] ?? 0) + n;
  }
  for (const [k, v] of Object.entries(r.userspaceExits)) {
    const n = slice && k === "budget" ? v - 1 : v;
    if (n > 0) sum.userspaceExits[k] = (sum.userspaceExits[k] ?? 0) + n;
  }
}

/**
 * Run a guest under the interpreter and the JIT in lockstep.
 * @param pair builds the two machines (called again for a replay when RAM differs)
 * @param opts budget and RAM-compare interval
 * @returns A's result, the blocks run, and the first difference (null when the tiers agree)
 */
export async function runLockstep(pair: MachinePair, opts: LockstepOptions = {}): Promise<LockstepOutcome> {
  const memEvery = Math.max(1, opts.memEvery ?? 4096);
  const first = await pass(pair, opts.budget ?? Infinity, memEvery, Infinity);
  if (first.difference === null || first.memOnly === false) return first;
  // RAM differed at a check: replay, comparing RAM after every block since the last good check.
  const second = await pass(pair, opts.budget ?? Infinity, memEvery, first.lastGood);
  return second.difference !== null ? second : first;
}

async function pass(pair: MachinePair, budget: number, memEvery: number, everyFrom: number): Promise<LockstepOutcome & { memOnly: boolean; lastGood: number }> {
  const { a, b } = pair();
  await useEngine(b, "jit");
  const sum: RunResult = { exit: { reason: "budget" } as RunResult["exit"], instructions: 0, exits: {}, userspaceExits: {}, wallMs: 0 };
  let blocks = 0, lastGood = 0;
  for (;;) {
    const at = blockAt(a);
    const n = Math.min(at.len, budget - sum.instructions);
    if (n <= 0) break;
    const ra = a.run({ budget: n });
    const rb = b.run({ budget: n });
    const last = ra.exit.reason !== "budget" || sum.instructions + ra.instructions >= budget;
    const check = blocks >= everyFrom || (blocks + 1) % memEvery === 0 || last;
    let what = quickDifference(a, b, ra, rb);
    let sa: LockstepState | null = null, sb: LockstepState | null = null;
    if (what !== null || check) {
      sa = stateOf(a, ra);
      sb = stateOf(b, rb);
      for (const k of ["exit", "instructions", "regs", "sregs", "fpu"] as const) {
        if (JSON.stringify(sa[k]) !== JSON.stringify(sb[k])) { what = k; break; }
      }
    }
    let memOnly = false;
    if (what === null && check) {
      const d = firstMemDiff(a, b);
      if (d >= 0) {
        what = "memory";
        memOnly = true;
        sa!.memAt = sb!.memAt = d;
        sa!.mem = [...a.vm.memoryView(d, Math.min(16, a.memSize - d))];
        sb!.mem = [...b.vm.memoryView(d, Math.min(16, b.memSize - d))];
      } else lastGood = blocks;
    }
    const slice = ra.exit.reason === "budget" && sum.instructions + ra.instructions < budget;
    if (what !== null) {
      add(sum, ra, slice);
      const difference: LockstepDifference = {
        block: blocks, instructions: sum.instructions - ra.instructions, cs: at.cs, eip: at.eip, code32: at.code32,
        bytes: at.bytes, what, interp: sa!, jit: sb!,
      };
      return { result: sum, blocks: blocks + 1, difference, a, b, memOnly, lastGood };
    }
    add(sum, ra, slice);
    blocks++;
    if (last) break;
  }
  return { result: sum, blocks, difference: null, a, b, memOnly: false, lastGood };
}

/**
 * A difference as text: where, what, both states and the block's disassembly.
 * @param d the difference
 * @param disasm disassembles the block's bytes (runtime/vmm/disasm.ts), or null for bytes only
 */
export function formatDifference(d: LockstepDifference, disasm: ((bytes: Uint8Array, eip: number, bits: 16 | 32) => string[]) | null): string {
  const hex = (v: number) => `0x${(v >>> 0).toString(16)}`;
  // The segment registers only when they are what differs (they are long and rarely the cause).
  const brief = (x: LockstepState) => d.what === "sregs" ? x : { ...x, sregs: undefined };
  const lines = [
    `lockstep: the interpreter and the JIT differ after block ${d.block} at ${hex(d.cs)}:${hex(d.eip)} (${d.instructions} instructions before it): ${d.what}`,
    "block:",
    ...(disasm && d.bytes.length ? disasm(new Uint8Array(d.bytes), d.eip, d.code32 ? 32 : 16) : [d.bytes.map((x) => x.toString(16).padStart(2, "0")).join(" ")]).map((l) => `  ${l}`),
    `interp: ${JSON.stringify(brief(d.interp))}`,
    `jit:    ${JSON.stringify(brief(d.jit))}`,
  ];
  return lines.join("\n") + "\n";
}
