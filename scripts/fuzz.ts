/**
 * npm run fuzz: random guest programs (tests/jit_gen.ts) under the interpreter and the JIT, compared on
 * everything a run leaves (console, exit, instruction count, exits, registers, EFLAGS, RAM, the OUTs
 * a hook saw), each run to the end and again with a budget that stops it midway. The first program
 * that differs is shrunk (instructions of the main line dropped while it still differs) and printed
 * with both states, so a failure is reproduced from its seed alone.
 *
 *   npm run fuzz -- [--seed S] [--count N] [--size K] [--no-shrink]
 *
 * Exit status 0 when every program agrees, 1 on a difference.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { firstDifference, type GuestSpec, runGuest } from "../tests/jit_diff.ts";
import { GEN_LOAD, GEN_PORT, genProgram, splitProgram } from "../tests/jit_gen.ts";

const { values: v } = parseArgs({
  args: process.argv.slice(2),
  options: {
    seed: { type: "string" }, count: { type: "string" }, size: { type: "string" }, "no-shrink": { type: "boolean" },
  },
});
const seed = Number(v.seed ?? 1), count = Number(v.count ?? 1000), size = Number(v.size ?? 40);
if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 1 || !Number.isInteger(size) || size < 1) {
  console.error("Usage: npm run fuzz -- [--seed S] [--count N] [--size K] [--no-shrink]");
  process.exit(2);
}

const specOf = (code: Uint8Array, regs: Record<string, number>, s: number, budget?: number): GuestSpec => ({
  mode: s % 2 ? "protected" : "paged", image: code, load: GEN_LOAD, regs: { ...regs, rip: GEN_LOAD },
  ioPorts: [GEN_PORT], machine: { memSize: 4 << 20 }, budget: budget ?? 1_000_000,
});

/** The first difference for program `code` of seed `s` (whole run, then a midway budget), or null. */
async function differs(code: Uint8Array, regs: Record<string, number>, s: number): Promise<string | null> {
  const g = specOf(code, regs, s);
  const a = await runGuest(g, "interp");
  const b = await runGuest(g, "jit", { callout: s % 3 !== 0 });
  const d = firstDifference(a.sum, b.sum);
  if (d !== null) return `whole run: ${d}`;
  const budget = 1 + (s * 7919) % Math.max(1, a.sum.instructions);
  const a2 = await runGuest({ ...g, budget }, "interp");
  const b2 = await runGuest({ ...g, budget }, "jit");
  const d2 = firstDifference(a2.sum, b2.sum);
  return d2 === null ? null : `budget ${budget}: ${d2}`;
}

const hex = (u: Uint8Array) => [...u].map((x) => x.toString(16).padStart(2, "0")).join(" ");
const t0 = performance.now();
for (let s = seed; s < seed + count; s++) {
  const p = genProgram(s, size);
  const d = await differs(p.code, p.regs, s);
  if (d === null) {
    if ((s - seed + 1) % 100 === 0) console.log(`${s - seed + 1} programs agree (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    continue;
  }
  console.log(`seed ${s} differs (${s % 2 ? "protected" : "paged"} mode): ${d}`);
  if (!v["no-shrink"]) {
    // Shrink: the main line is a list of pieces (an instruction, a guarded block, a loop, a call);
    // drop pieces while the program still differs, halving the chunk size down to one piece.
    const sp = splitProgram(s, size);
    let keep = sp.pieces.map((_, k) => k);
    for (let chunk = Math.max(1, keep.length >> 1); chunk >= 1; chunk >>= 1) {
      for (let at = 0; at < keep.length;) {
        const trial = [...keep.slice(0, at), ...keep.slice(at + chunk)];
        if (trial.length > 0 && await differs(sp.build(trial), p.regs, s) !== null) keep = trial;
        else at += chunk;
      }
    }
    const small = sp.build(keep);
    console.log(`shrunk from ${sp.pieces.length} to ${keep.length} pieces (${small.length} bytes); load at 0x${GEN_LOAD.toString(16)}, ${s % 2 ? "protected" : "paged"} mode`);
    console.log(`bytes: ${hex(small)}`);
    console.log(`registers: ${JSON.stringify(p.regs)}`);
    console.log(`difference: ${await differs(small, p.regs, s)}`);
  } else {
    console.log(`bytes: ${hex(p.code)}`);
  }
  process.exit(1);
}
console.log(`${count} programs from seed ${seed} agree under interp and jit (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
