/**
 * No guest code can make the JIT throw, abort or crash the process (issue 15): a region that fails
 * to translate or compile runs interpreted, counted in jitStats; an abort of binaryen's instance
 * (an assertion in its C++) is caught, and the instance is replaced by a fresh one. And the
 * Relooper shape that aborted it (a Jcc whose taken and fall-through targets are equal, in an
 * irreducible loop: tests/guests/pm_jcc_next.asm) compiles.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assert, assertEquals } from "../tests/assert.ts";
import { firstDifference, type GuestSpec, runGuest } from "../tests/jit_diff.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { type Binaryen, binaryenReplaced, binaryenReplacements, liveBinaryen } from "./_binaryen.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";

await loadJit();

const guest = (name: string) => new Uint8Array(readFileSync(new URL(`../tests/guests/${name}`, import.meta.url)));
const JCC_NEXT: GuestSpec = { mode: "protected", image: guest("pm_jcc_next.bin"), regs: { rdi: 3 } };

test("a Jcc to the next instruction inside an irreducible loop compiles (the Relooper's duplicate-branch assertion)", async () => {
  const a = await runGuest(JCC_NEXT, "interp");
  // Python's model of the guest (tests/guests/gen_expected.py jcc_next) says 9e9db6e8.
  assertEquals(a.sum.console, "9e9db6e8\n");
  for (const opts of [{}, { codeCache: false }, { callout: false, codeCache: false }]) {
    const b = await runGuest(JCC_NEXT, "jit", opts); // strict: a failure would throw here
    assertEquals(firstDifference(a.sum, b.sum), null);
    assertEquals(b.jit!.stats.failures, 0);
    assert(b.jit!.stats.instructions > a.sum.instructions / 2, `compiled code ran ${b.jit!.stats.instructions}`);
  }
});

/** Runs `g` on a machine under jit whose translations first call `hook`; returns its console, stats and result. */
function runWithHook(g: GuestSpec, hook: (b: Binaryen) => void) {
  const m = new Machine({ mode: "protected", engine: "jit", jit: { beforeTranslate: hook, codeCache: false } });
  m.load(g.image, { format: "raw" });
  if (g.regs) m.vcpu.setRegs(g.regs);
  const r = m.run({ budget: 50_000_000 });
  return { console: m.console, exit: r.exit.reason, instructions: r.instructions, stats: m.jitStats! };
}

test("a region whose translation throws runs interpreted, counted in jitStats.failures", async () => {
  const a = await runGuest(JCC_NEXT, "interp");
  let calls = 0;
  const r = runWithHook(JCC_NEXT, () => {
    if (calls++ === 0) throw new Error("injected translation failure");
  });
  assertEquals([r.console, r.exit, r.instructions], [a.sum.console, "hlt", a.sum.instructions]);
  assertEquals(r.stats.failures, 1);
  assertEquals(r.stats.aborts, 0);
  assert(r.stats.regions > 0, "the other regions compiled");
});

test("an abort of binaryen's instance is caught: the run goes on interpreted and a fresh instance replaces it", async () => {
  const a = await runGuest(JCC_NEXT, "interp");
  const before = liveBinaryen()!;
  const replaced = binaryenReplacements();
  let calls = 0;
  // A real abort: the Relooper's assertion, reached through binaryen's own API on its first translation.
  const r = runWithHook(JCC_NEXT, (b) => {
    if (calls++ !== 0) return;
    const m = new b.Module();
    const rl = new b.Relooper(m);
    const x = rl.addBlock(m.nop()), y = rl.addBlock(m.nop());
    rl.addBranch(x, y, m.i32.const(1), 0);
    rl.addBranch(x, y, 0, 0); // the same target twice: Assertion failed: !contains(BranchesOut, Target)
  });
  assertEquals([r.console, r.exit, r.instructions], [a.sum.console, "hlt", a.sum.instructions]);
  assertEquals(r.stats.failures, 1);
  assertEquals(r.stats.aborts, 1);
  assertEquals(calls, 1, "nothing more was translated with the aborted instance");
  assertEquals(r.stats.regions, 0);
  await binaryenReplaced();
  assertEquals(binaryenReplacements(), replaced + 1);
  const now = liveBinaryen();
  assert(now !== null && now !== before, "a fresh binaryen instance is live");
  // The fresh instance compiles: the same guest again, strict (a failure throws).
  const b = await runGuest(JCC_NEXT, "jit", { codeCache: false });
  assertEquals(firstDifference(a.sum, b.sum), null);
  assert(b.jit!.stats.regions > 0 && b.jit!.stats.failures === 0);
});
