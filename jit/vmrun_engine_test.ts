/** vmrun --engine jit and --engine auto report the same run as --engine interp, and what the JIT compiled. */
import { test } from "node:test";
import { assertEquals } from "../tests/assert.ts";
import { runScript } from "../tests/run_cli.ts";

test("vmrun --engine jit and auto report the same exit, registers and count as interp", () => {
  const report = (engine: string) => {
    const r = runScript("scripts/vmrun.ts", ["--engine", engine, "--mode", "protected", "--json", "tests/guests/pm_sieve.bin"]);
    assertEquals(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    const j = JSON.parse(lines[lines.length - 1]);
    assertEquals(j.engine, engine);
    // What the JIT compiled: under jit the guest's regions; no field under interp.
    assertEquals(j.jit === undefined, engine === "interp", `${engine}: jit ${JSON.stringify(j.jit)}`);
    if (engine === "jit") assertEquals(j.jit.regions > 0 && j.jit.compiledInstructions > 0, true, JSON.stringify(j.jit));
    return { exit: j.exit, regs: j.regs, instructions: j.instructions, exits: j.exits, console: j.console };
  };
  const a = report("interp");
  assertEquals(report("jit"), a);
  assertEquals(report("auto"), a);
});
