/**
 * Random programs (tests/jit_gen.ts) under the interpreter and the JIT, in protected and paged mode, run
 * to the end and again with a budget that stops them midway, with callouts on and off, and under
 * auto with low thresholds: console, exits, OUTs seen by the hook, registers, EFLAGS, RAM and
 * instruction count must be equal.
 * `JIT_FUZZ_COUNT=N JIT_FUZZ_SEED=S` runs more programs from another seed.
 */
import { test } from "node:test";
import process from "node:process";
import { assertEquals } from "../tests/assert.ts";
import { firstDifference, type GuestSpec, runGuest } from "../tests/jit_diff.ts";
import { GEN_LOAD, GEN_PORT, genProgram, splitProgram } from "../tests/jit_gen.ts";

const COUNT = Number(process.env.JIT_FUZZ_COUNT ?? 60);
const SEED = Number(process.env.JIT_FUZZ_SEED ?? 1);

/** Generated program `s` as a guest: protected mode for odd seeds, paged for even ones. */
function programSpec(s: number): { g: GuestSpec; mode: "protected" | "paged" } {
  const p = genProgram(s);
  const mode = s % 2 ? "protected" : "paged";
  return {
    mode,
    g: { mode, image: p.code, load: GEN_LOAD, regs: { ...p.regs, rip: GEN_LOAD }, ioPorts: [GEN_PORT], machine: { memSize: 4 << 20 } },
  };
}

// Batches of a few programs: each test stays well inside bun's 5 s default timeout.
const BATCH = 5;
for (let first = SEED; first < SEED + COUNT; first += BATCH) {
test(`random programs ${first}..${Math.min(first + BATCH, SEED + COUNT) - 1} leave the same state under interp and jit`, async () => {
  for (let s = first; s < Math.min(first + BATCH, SEED + COUNT); s++) {
    const { g, mode } = programSpec(s);
    const a = await runGuest(g, "interp");
    const b = await runGuest(g, "jit", { callout: s % 3 !== 0 });
    assertEquals(firstDifference(a.sum, b.sum), null, `seed ${s} (${mode})`);
    const budget = 1 + (s * 7919) % Math.max(1, a.sum.instructions);
    const a2 = await runGuest({ ...g, budget }, "interp");
    const b2 = await runGuest({ ...g, budget }, "jit");
    assertEquals(firstDifference(a2.sum, b2.sum), null, `seed ${s} (${mode}), budget ${budget}`);
  }
});
}

// Under auto, regions take in only blocks that have run (engine.ts compile): low thresholds compile
// while the program's branches are still half cold, so regions leave at cold edges and compile again.
const AUTO_COUNT = Math.max(5, Math.round(COUNT / 3));
for (let first = SEED + 1000; first < SEED + 1000 + AUTO_COUNT; first += BATCH) {
test(`random programs ${first}..${Math.min(first + BATCH, SEED + 1000 + AUTO_COUNT) - 1} leave the same state under interp and auto (thresholds 2 and 5)`, async () => {
  for (let s = first; s < Math.min(first + BATCH, SEED + 1000 + AUTO_COUNT); s++) {
    const { g, mode } = programSpec(s);
    const a = await runGuest(g, "interp");
    for (const threshold of [2, 5]) {
      const b = await runGuest(g, "auto", { threshold, codeCache: false });
      assertEquals(firstDifference(a.sum, b.sum), null, `seed ${s} (${mode}), threshold ${threshold}`);
    }
  }
});
}

test("splitProgram rebuilds the generated program from all its pieces and a smaller one from fewer", () => {
  for (const s of [3, 4, 77]) {
    const sp = splitProgram(s);
    const all = sp.build(sp.pieces.map((_, k) => k));
    assertEquals([...all], [...genProgram(s).code]);
    const fewer = sp.build([0, sp.pieces.length - 1]);
    assertEquals(fewer[fewer.length - 1], 0xf4, "ends with hlt");
    assertEquals(fewer.length <= all.length, true);
  }
});
