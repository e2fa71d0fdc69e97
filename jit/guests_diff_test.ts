/**
 * Every guest in tests/guests runs under the interpreter, under `jit` and under `auto` (a low
 * threshold, so both tiers take turns), and must leave the same console, exit, instruction count,
 * exits, registers, EFLAGS, segment registers and guest RAM.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assert, assertEquals } from "../tests/assert.ts";
import { firstDifference, type GuestSpec, runGuest } from "../tests/jit_diff.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";

await loadJit();

const REPO = new URL("..", import.meta.url).pathname;
interface Expected { mode: "real" | "protected"; format: "raw" | "elf" | "multiboot"; regs?: Record<string, number>; stdout: string; exit: string }
const expected: Record<string, Expected> = JSON.parse(readFileSync(`${REPO}tests/guests/expected.json`, "utf8"));

for (const [file, e] of Object.entries(expected)) {
  test(`guest ${file} leaves the same state under interp, jit and auto`, async () => {
    const g: GuestSpec = {
      mode: e.mode, format: e.format, image: new Uint8Array(readFileSync(`${REPO}tests/guests/${file}`)),
      regs: e.regs ? Object.fromEntries(Object.entries(e.regs).map(([k, v]) => ["r" + k.slice(1), v])) : undefined,
      ioPorts: file === "rm_string_io.bin" ? [0x60] : [],
    };
    const a = await runGuest(g, "interp");
    assertEquals(a.sum.console, e.stdout);
    const b = await runGuest(g, "jit");
    assertEquals(firstDifference(a.sum, b.sum), null);
    assert(b.jit!.stats.instructions > 0, "compiled code ran");
    const c = await runGuest(g, "auto", { threshold: 3 });
    assertEquals(firstDifference(a.sum, c.sum), null);
  });
}

// Budget checks sit only at region entries and loop heads (jit/DESIGN.md section 2): fib's
// call/return web and crc32's loop with a branch inside must still stop at the exact instruction.
for (const file of ["pm_fib.bin", "pm_crc32.bin"]) test(`guest ${file} stops at the same instruction under jit for every small budget`, async () => {
  const image = new Uint8Array(readFileSync(`${REPO}tests/guests/${file}`));
  for (const budget of [1, 2, 3, 17, 100, 1001, 4097, 65537, 200_003, 200_004, 200_005, 200_006, 200_007]) {
    const g: GuestSpec = { mode: "protected", image, budget };
    const a = await runGuest(g, "interp");
    const b = await runGuest(g, "jit");
    assertEquals(a.sum.exit, "budget");
    assertEquals(firstDifference(a.sum, b.sum), null, `budget ${budget}`);
  }
});

test("a loop calling a function on another page stays in compiled code (regions span pages)", async () => {
  const image = new Uint8Array(readFileSync(`${REPO}tests/guests/pm_xpage.bin`));
  const calls = 40_000;
  const g: GuestSpec = { mode: "protected", image, regs: { rdi: calls } };
  const a = await runGuest(g, "interp");
  const b = await runGuest(g, "jit");
  assertEquals(firstDifference(a.sum, b.sum), null);
  // Before regions spanned pages, every call and every return left wasm: 2 runs per call.
  assert(b.jit!.stats.runs < calls / 20, `runs ${b.jit!.stats.runs} for ${calls} calls`);
});

test("a long straight run of blocks gets budget checks of its own, so a small budget still runs compiled code", async () => {
  // 300 blocks of `inc eax` ×9 and `jmp $+2`, then HLT: one region of 128 blocks would otherwise
  // ask for 1,280 instructions of fuel at its entry and never start under a budget of 1,000.
  const block = [0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0xeb, 0x00];
  const image = new Uint8Array([...Array.from({ length: 300 }, () => block).flat(), 0xf4]);
  const g: GuestSpec = { mode: "protected", image, load: 0x100000, regs: { rip: 0x100000, rsp: 0x80000 }, budget: 1000 };
  const a = await runGuest(g, "interp");
  const b = await runGuest(g, "jit");
  assertEquals(a.sum.exit, "budget");
  assertEquals(firstDifference(a.sum, b.sum), null);
  assert(b.jit!.stats.instructions > 500, `compiled code retired ${b.jit!.stats.instructions}`);
});

test("the wall-clock deadline is checked after compiling, not only every 4096 blocks", async () => {
  // Zeroed RAM after a JMP: `add [eax], al` forever, a new region at every block in jit mode.
  const m = new Machine({ mode: "protected", engine: "jit" });
  m.load(new Uint8Array([0xeb, 0x00]), { format: "raw", loadAddr: 0x100000 });
  m.vcpu.setRegs({ rip: 0x100000, rsp: 0x80000, rax: 0x200000 });
  const t = performance.now();
  const r = m.run({ timeoutMs: 1, budget: 1e12 });
  assertEquals(r.exit.reason, "timeout");
  assert(performance.now() - t < 2000, "ended soon after its deadline");
});
