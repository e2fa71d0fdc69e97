/**
 * Random control flow (tests/jit_cfgen.ts: jumps to the next instruction, to themselves, into the middle
 * of instructions, across pages, both Jcc targets equal, irreducible loops, stores into code pages)
 * under the interpreter and under jit and auto on reused machines: everything a run leaves must be
 * equal, and no region may fail to compile (the machines are strict: a failure throws). A sample
 * here; `npm run fuzz:cf -- --count N` runs more.
 */
import { test } from "node:test";
import process from "node:process";
import { assertEquals } from "../tests/assert.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";
import { DiffPair } from "../tests/jit_diff.ts";
import { CF_PORT, genCfProgram } from "../tests/jit_cfgen.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const COUNT = Number(process.env.JIT_CF_FUZZ ?? (isBun ? 80 : 200));
const FIRST = Number(process.env.JIT_CF_SEED ?? 1);
const BATCH = 25;

await loadJit();
const mem = { memSize: 4 << 20 };
const pairs = {
  jit: { protected: new DiffPair({ mode: "protected", ...mem }, { validate: true }, [CF_PORT]), paged: new DiffPair({ mode: "paged", ...mem }, { validate: true }, [CF_PORT]) },
  auto: { protected: new DiffPair({ mode: "protected", ...mem }, { threshold: 2 }, [CF_PORT], "auto"), paged: new DiffPair({ mode: "paged", ...mem }, { threshold: 3 }, [CF_PORT], "auto") },
};

for (let first = FIRST; first < FIRST + COUNT; first += BATCH) {
  const last = Math.min(first + BATCH, FIRST + COUNT) - 1;
  test(`random control flow ${first}..${last}: interp, jit and auto agree`, () => {
    for (let s = first; s <= last; s++) {
      const p = genCfProgram(s);
      const mode = s % 2 ? "protected" : "paged";
      const why = `seed ${s} (${mode}); reproduce: npm run fuzz:cf -- --seed ${s} --count 1`;
      assertEquals(pairs.jit[mode].compare(p.code, p.regs.rip, p.regs, p.budget), null, why);
      assertEquals(pairs.auto[mode].compare(p.code, p.regs.rip, p.regs, p.budget), null, `${why} (auto)`);
    }
  });
}
