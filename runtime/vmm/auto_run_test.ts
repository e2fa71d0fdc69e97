/**
 * `runAuto` (what `vmrun --engine auto` runs): a short program never waits for binaryen; a long one
 * loads it while the interpreter runs on in slices and finishes under the JIT; the slices do not
 * show in the result. Each case runs in a fresh process, where binaryen is not loaded yet.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../../tests/assert.ts";
import { runScript } from "../../tests/run_cli.ts";

function child(what: string) {
  const r = runScript("runtime/vmm/_auto_run_child.ts", [what]);
  assertEquals(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

test("runAuto: a program that ends within the first slice runs interpreted and never loads binaryen", () => {
  const j = child("short");
  assertEquals(j.exit, { reason: "hlt" });
  assertEquals(j.eax, 500500);
  assertEquals(j.instructions, 3 * 1000 + 2);
  assertEquals(j.loaded, false);
  assertEquals(j.engine, "interp");
});

test("runAuto: a long program loads binaryen while it is interpreted, finishes under auto, and counts one run's exits", () => {
  const n = 100_000_000;
  const j = child("long");
  assertEquals(j.exit, { reason: "hlt" });
  assertEquals(j.instructions, 3 * n + 2);
  assertEquals(j.eax, Number((BigInt(n) * BigInt(n + 1) / 2n) % 2n ** 32n));
  assertEquals(j.exits, { hlt: 1 }, "no slice's end among the exits");
  assertEquals(j.userspaceExits, { hlt: 1 });
  assertEquals(j.loaded, true);
  assertEquals(j.engine, "auto");
  assert(j.regions > 0, "the loop was compiled once binaryen had loaded");
});

test("runAuto: the caller's budget and time limit hold across the slices", () => {
  const b = child("budget");
  assertEquals(b.exit, { reason: "budget" });
  assertEquals(b.instructions, 2_500_000);
  assertEquals(b.exits, { preemption_timer: 1 }, "only the budget's own end");
  assertEquals(b.userspaceExits, { budget: 1 });
  const t = child("timeout");
  assertEquals(t.exit, { reason: "timeout" });
  assert(t.wallMs >= 50, `ran ${t.wallMs} ms of a 50 ms limit`);
});

test("runAuto: a run whose time limit is too near for loading binaryen finishes interpreted, on time", () => {
  const j = child("near");
  assertEquals(j.exit, { reason: "timeout" });
  assertEquals(j.loaded, false, "binaryen's loading would have held the thread past the limit");
  assertEquals(j.engine, "interp");
  assert(j.wallMs >= 400 && j.instructions > 0, JSON.stringify(j));
});
