/**
 * Auto's tiering rules (jit/DESIGN.md section 9): a block is compiled only if it reached the
 * threshold at a loop's pace (the hot window), and compiling is paid from a budget of wall time.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../tests/assert.ts";
import { firstDifference, type GuestSpec, runGuest } from "../tests/jit_diff.ts";

const LOAD = 0x100000;
// 100000: mov esi, 200          ; outer iterations
// 100005: o: mov ecx, 1000      ; an inner loop of 2,000 instructions
// 10000a: i: dec ecx
//         jnz i
// 10000d: mov edx, 0x100030
//         call edx              ; f, through a register: no static edge, an entry of its own if compiled
// 100014: dec esi
//         jnz o
//         hlt
// 100030: f: add eax, esi; rol eax, 1; ret     (runs once per 2,000 instructions)
const pace = new Uint8Array([
  0xbe, 0xc8, 0x00, 0x00, 0x00,
  0xb9, 0xe8, 0x03, 0x00, 0x00,
  0x49, 0x75, 0xfd,
  0xba, 0x30, 0x00, 0x10, 0x00,
  0xff, 0xd2,
  0x4e, 0x75, 0xee,
  0xf4,
  ...new Array(0x30 - 0x18).fill(0x90),
  0x01, 0xf0, 0xd1, 0xc0, 0xc3,
]);
const G: GuestSpec = { mode: "protected", image: pace, load: LOAD, regs: { rip: LOAD, rsp: 0x80000 } };

test("auto leaves a function called once per 2,000 instructions interpreted, unless the hot window is off", async () => {
  const a = await runGuest(G, "interp");
  const paced = await runGuest(G, "auto", { codeCache: false, compileShare: Infinity });
  const eager = await runGuest(G, "auto", { codeCache: false, compileShare: Infinity, hotWindow: Infinity });
  assertEquals(firstDifference(a.sum, paced.sum), null);
  assertEquals(firstDifference(a.sum, eager.sum), null);
  // f's 64 runs take 128,000 instructions, more than the default window (512 x 64 = 32,768): it
  // stays interpreted, and so does the code it returns to; without the window both become entries
  // of regions of their own.
  assert(paced.jit!.stats.instructions > a.sum.instructions / 2, "the loops ran compiled");
  assert(eager.jit!.stats.regions > paced.jit!.stats.regions, `regions: windowed ${paced.jit!.stats.regions}, eager ${eager.jit!.stats.regions}`);
});

test("auto stops compiling when its compile budget is spent (compileShare 0, a first compile that takes 25 ms)", async () => {
  const a = await runGuest(G, "interp");
  const slowFirst = (() => {
    let first = true;
    return () => {
      if (!first) return;
      first = false;
      const t = performance.now();
      while (performance.now() - t < 25) { /* a compile longer than the 20 ms saved up */ }
    };
  })();
  const b = await runGuest(G, "auto", { codeCache: false, compileShare: 0, beforeTranslate: slowFirst });
  const c = await runGuest(G, "auto", { codeCache: false, compileShare: Infinity });
  assertEquals(firstDifference(a.sum, b.sum), null);
  assertEquals(b.jit!.stats.regions, 1, "the first compile spent the budget, which never grows back");
  assert(c.jit!.stats.regions > 1, `without a budget: ${c.jit!.stats.regions} regions`);
});
