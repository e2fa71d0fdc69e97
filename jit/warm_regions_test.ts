/**
 * Region discovery under auto takes in only blocks that have run (jit/DESIGN.md section 1): a path
 * that never runs is not compiled, and one that starts running later makes the region compile
 * again with it. Results are the interpreter's either way.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../tests/assert.ts";
import { firstDifference, type GuestSpec, runGuest } from "../tests/jit_diff.ts";

/** mov ecx,N; xor edx,edx; l: cmp ecx,K; jne skip; inc edx; skip: dec ecx; jnz l; hlt */
function rareBranch(n: number, k: number): GuestSpec {
  const le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
  const image = new Uint8Array([0xb9, ...le(n), 0x31, 0xd2, 0x81, 0xf9, ...le(k), 0x75, 0x01, 0x42, 0x49, 0x75, 0xf4, 0xf4]);
  return { mode: "protected", image };
}

test("auto: a branch that never runs stays out of the region; jit compiles it", async () => {
  const g = rareBranch(200_000, 0xffffffff);
  const ref = await runGuest(g, "interp");
  const auto = await runGuest(g, "auto", { codeCache: false });
  const jit = await runGuest(g, "jit", { codeCache: false });
  assertEquals(firstDifference(ref.sum, auto.sum), null);
  assertEquals(firstDifference(ref.sum, jit.sum), null);
  // The loop's two blocks (cmp/jne and dec/jnz); not `inc edx`, nor the hlt after the loop.
  assertEquals({ regions: auto.jit!.stats.regions, blocks: auto.jit!.stats.blocks }, { regions: 1, blocks: 2 });
  assert(jit.jit!.stats.blocks > auto.jit!.stats.blocks, `jit compiled ${jit.jit!.stats.blocks} blocks`);
});

test("auto: a branch that starts running after the region was compiled is taken in by a second compile", async () => {
  // `inc edx` runs once, at the 5,000th iteration, long after the loop was compiled (64 iterations)
  // and before the region's 64th run (a run leaves every ~65,536 instructions), when it looks again.
  const n = 2_000_000;
  const g = rareBranch(n, n - 5_000);
  const ref = await runGuest(g, "interp");
  const auto = await runGuest(g, "auto", { codeCache: false });
  assertEquals(firstDifference(ref.sum, auto.sum), null);
  assertEquals(auto.sum.regs.rdx, 1);
  assertEquals({ regions: auto.jit!.stats.regions, blocks: auto.jit!.stats.blocks }, { regions: 2, blocks: 2 + 3 });
  assert(auto.jit!.stats.instructions > 0.9 * auto.sum.instructions, "the loop ran compiled");
});
