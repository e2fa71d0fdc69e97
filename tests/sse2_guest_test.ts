/**
 * The SSE2 C guest (tests/guests/sse2: gcc -m32 -msse2 -mfpmath=sse -mno-80387 -O2, freestanding)
 * prints, under every engine, exactly what the same source printed when run natively on the host
 * processor (sse2.expected, written by build.sh): IEEE bit patterns of doubles and floats from a
 * Mandelbrot, an n-body simulation, sums, conversions, comparisons and the four rounding modes.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assert, assertEquals } from "./assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { REPO } from "./run_cli.ts";

const elf = new Uint8Array(readFileSync(`${REPO}/tests/guests/sse2/sse2.elf`));
const expected = readFileSync(`${REPO}/tests/guests/sse2/sse2.expected`, "utf8");

for (const engine of ["interp", "jit", "auto"] as const) {
  test(`the SSE2 C guest prints what it printed on the host CPU (${engine})`, async () => {
    const m = await Machine.create({ mode: "protected", engine, jit: engine === "auto" ? { threshold: 50 } : undefined });
    m.load(elf, { format: "elf" });
    const r = m.run({ budget: 100_000_000 });
    assertEquals(r.exit.reason, "hlt");
    assertEquals(m.console, expected);
    assert(expected.endsWith("sse2 done\n"));
  });
}

const bench = new Uint8Array(readFileSync(`${REPO}/tests/guests/sse2/bench_sse2.elf`));
const benchExpected = readFileSync(`${REPO}/tests/guests/sse2/bench_sse2.expected`, "utf8");
for (const engine of ["interp", "jit"] as const) {
  test(`the SSE2 benchmark guest (bench nbody-sse2) prints the host's output whatever its pass count (${engine})`, async () => {
    const m = await Machine.create({ mode: "protected", engine });
    m.load(bench, { format: "elf" });
    m.vcpu.setRegs({ rdi: 2 });
    const r = m.run({ budget: 50_000_000 });
    assertEquals(r.exit.reason, "hlt");
    assertEquals(m.console, benchExpected);
    assert(/^nbody [0-9a-f]{16} [0-9a-f]{16} mandel [0-9a-f]{8}\n$/.test(benchExpected));
  });
}
