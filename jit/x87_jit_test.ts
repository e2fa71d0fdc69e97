/**
 * x87 code under the JIT: compiled regions run x87 instructions by calling the interpreter's own
 * definition (a callout, jit/translate.ts), so the x87 state must match the interpreter's after
 * every block. Lockstep checks it block by block on the float guest (tests/guests/c/float.c), whose
 * full runs under every engine are in guests_diff_test.ts and whose output is checked against the
 * host CPU in tests/guests_test.ts.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assert, assertEquals } from "../tests/assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { runLockstep } from "../runtime/vmm/lockstep.ts";

const REPO = new URL("..", import.meta.url).pathname;

test("lockstep runs the x87 float guest with the same registers, x87 state and RAM after every block", async () => {
  const image = new Uint8Array(readFileSync(`${REPO}tests/guests/cfloat_O2.elf`));
  const mk = () => {
    const m = new Machine({ mode: "protected" });
    m.load(image, { format: "elf" });
    return m;
  };
  const out = await runLockstep(() => ({ a: mk(), b: mk() }), { budget: 40_000, memEvery: 64 });
  assertEquals(out.difference, null);
  assert(out.blocks > 1000, `${out.blocks} blocks`);
  assert(out.a.console.startsWith("float guest\nharmonic-f "), out.a.console);
});
