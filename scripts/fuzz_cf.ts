/**
 * npm run fuzz:cf: random control flow (tests/jit_cfgen.ts: jumps to the next instruction, to
 * themselves, into the middle of instructions, across pages, both Jcc targets equal, irreducible
 * loops, stores into code pages) under the interpreter and under jit and auto, on reused machines,
 * in protected and paged mode. Everything a run leaves is compared (console, exit, instruction
 * count, exits, registers, EFLAGS, every byte of RAM, the OUTs a hook saw), and a region that fails
 * to compile is an error too (strict engines). The first difference is printed with the program's
 * bytes and registers.
 *
 *   npm run fuzz:cf -- [--seed S] [--count N] [--size K]
 *
 * Exit status 0 when every program agrees, 1 on a difference or a failure.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { loadJit } from "../runtime/vmm/tiering.ts";
import { DiffPair } from "../tests/jit_diff.ts";
import { CF_PORT, genCfProgram } from "../tests/jit_cfgen.ts";

const { values: v } = parseArgs({
  args: process.argv.slice(2),
  options: { seed: { type: "string" }, count: { type: "string" }, size: { type: "string" } },
});
const seed = Number(v.seed ?? 1), count = Number(v.count ?? 10_000), size = Number(v.size ?? 60);
if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 1 || !Number.isInteger(size) || size < 1) {
  console.error("Usage: npm run fuzz:cf -- [--seed S] [--count N] [--size K]");
  process.exit(2);
}

await loadJit();
const mem = { memSize: 4 << 20 };
const pairs = {
  jit: { protected: new DiffPair({ mode: "protected", ...mem }, {}, [CF_PORT]), paged: new DiffPair({ mode: "paged", ...mem }, {}, [CF_PORT]) },
  auto: {
    protected: new DiffPair({ mode: "protected", ...mem }, { threshold: 2 }, [CF_PORT], "auto"),
    paged: new DiffPair({ mode: "paged", ...mem }, { threshold: 3 }, [CF_PORT], "auto"),
  },
};
const hex = (u: Uint8Array) => [...u].map((x) => x.toString(16).padStart(2, "0")).join(" ");
const t0 = performance.now();
for (let s = seed; s < seed + count; s++) {
  const p = genCfProgram(s, size);
  const mode = s % 2 ? "protected" : "paged";
  for (const engine of ["jit", "auto"] as const) {
    let d: string | null;
    try {
      d = pairs[engine][mode].compare(p.code, p.regs.rip, p.regs, p.budget);
    } catch (e) {
      d = `the JIT failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`;
    }
    if (d === null) continue;
    console.log(`seed ${s} differs under ${engine} (${mode} mode, budget ${p.budget}): ${d}`);
    console.log(`load at 0x${p.regs.rip.toString(16)}; registers: ${JSON.stringify(p.regs)}`);
    console.log(`bytes (${p.code.length}): ${hex(p.code)}`);
    process.exit(1);
  }
  if ((s - seed + 1) % 500 === 0) console.log(`${s - seed + 1} programs agree (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
console.log(`${count} programs from seed ${seed} agree under interp, jit and auto (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
