/**
 * Many random programs (tests/jit_gen.ts) under the interpreter and the JIT on two reused machines
 * (DiffPair): console, exits, OUTs, registers, EFLAGS, segment registers, instruction count and every
 * byte of RAM must be equal, run to the end and, for one program in four, with a budget that stops
 * it midway. 10,000 programs under Deno; Bun compiles wasm more slowly, so it runs 1,000
 * (`JIT_FUZZ_MANY=N` overrides). fuzz_test.ts runs fewer programs with a fresh machine each,
 * validating every module.
 */
import { test } from "node:test";
import process from "node:process";
import { assertEquals } from "../tests/assert.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";
import { DiffPair } from "../tests/jit_diff.ts";
import { GEN_LOAD, GEN_PORT, genProgram } from "../tests/jit_gen.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const COUNT = Number(process.env.JIT_FUZZ_MANY ?? (isBun ? 1000 : 10000));
const FIRST = 100_000; // seeds apart from fuzz_test.ts's
const BATCH = 500;

await loadJit();
const pairs = {
  protected: new DiffPair({ mode: "protected", memSize: 4 << 20 }, {}, [GEN_PORT]),
  paged: new DiffPair({ mode: "paged", memSize: 4 << 20 }, {}, [GEN_PORT]),
};

for (let first = FIRST; first < FIRST + COUNT; first += BATCH) {
  const last = Math.min(first + BATCH, FIRST + COUNT) - 1;
  test(`random programs ${first}..${last} on reused machines: interp and jit agree`, () => {
    for (let s = first; s <= last; s++) {
      const p = genProgram(s);
      const mode = s % 2 ? "protected" : "paged";
      const regs = { ...p.regs, rip: GEN_LOAD };
      assertEquals(pairs[mode].compare(p.code, GEN_LOAD, regs, 50_000_000), null, `seed ${s} (${mode}); reproduce: npm run fuzz -- --seed ${s} --count 1`);
      if (s % 4 === 0) {
        const budget = 1 + (s * 7919) % 2000;
        assertEquals(pairs[mode].compare(p.code, GEN_LOAD, regs, budget), null, `seed ${s} (${mode}), budget ${budget}`);
      }
    }
  });
}
