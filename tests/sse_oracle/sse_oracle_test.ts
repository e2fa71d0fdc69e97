/**
 * MMX, SSE, SSE2 and SSE3 instructions against the host processor: vectors.txt holds what each
 * instruction did natively (oracle.c, built and run by build.sh on an x86-64 host with gcc -m32),
 * and vmxlab runs the same bytes (tests/sse_oracle/vectors.ts) under each engine. Every field must
 * match bit for bit: XMM0, MM0, MXCSR (result flags, sticky flags), EFLAGS' arithmetic flags, EAX.
 * sequences.txt holds random sequences of 1-8 instructions over XMM0-7 (every register encoding),
 * checked the same way; exceptions.txt has floating-point instructions with exceptions unmasked:
 * whether #XM was taken, and MXCSR, XMM0 and EAX at that point. RCPPS/RSQRTPS are not here: their results differ between processors (runtime/cpu/sse/sse_test.ts
 * checks the SDM's error bound instead).
 */
import { test } from "node:test";
import process from "node:process";
import { assert, assertEquals } from "../assert.ts";
import { CpuHarness } from "../cpu_harness.ts";
import { useEngine } from "../../runtime/vmm/tiering.ts";
import { loadSequences, loadVectors, runExceptionVectors, runSequences, runVectors } from "./vectors.ts";

const vectors = loadVectors();
const sequences = loadSequences();

test("the host-CPU vectors cover every instruction form the oracle runs", () => {
  const forms = new Set(vectors.map((v) => v.insn.slice(0, v.insn.length).map((b) => b.toString(16)).join(" ")));
  assert(vectors.length >= 5000, `only ${vectors.length} vectors`);
  assert(forms.size >= 200, `only ${forms.size} distinct instructions`);
});

// The JIT compiles each vector's block (a call into the interpreter's definition per instruction):
// every 8th vector keeps the file's time reasonable; SSE_JIT_ALL=1 runs them all (~1 min).
const jitSample = process.env.SSE_JIT_ALL ? vectors : vectors.filter((_, k) => k % 8 === 0);
for (const [engine, vs] of [["interp", vectors], ["jit", jitSample]] as const) {
  test(`${vs.length} SSE/SSE2/SSE3/MMX host-CPU vectors match bit for bit under ${engine}`, async () => {
    const h = new CpuHarness("protected");
    if (engine === "jit") await useEngine(h.vcpu, "jit", { validate: true });
    const mismatches = runVectors(h, vs);
    assertEquals(mismatches.slice(0, 20), []);
  });
}

for (const [engine, ss] of [["interp", sequences], ["jit", sequences.filter((_, k) => k % 8 === 0)]] as const) {
  test(`${ss.length} random SSE/SSE2/SSE3 sequences over XMM0-7 end as on the host CPU under ${engine}`, async () => {
    const h = new CpuHarness("protected");
    if (engine === "jit") await useEngine(h.vcpu, "jit", { validate: true });
    assertEquals(runSequences(h, ss).slice(0, 20), []);
  });
}

test("host-CPU vectors that once differed (regressions.txt, lines of oracle.c's output kept from larger runs) match", () => {
  const h = new CpuHarness("protected");
  const rs = loadVectors(new URL("./regressions.txt", import.meta.url));
  assert(rs.length >= 1);
  assertEquals(runVectors(h, rs), []);
});

const exceptions = loadVectors(new URL("./exceptions.txt", import.meta.url));
for (const [engine, vs] of [["interp", exceptions], ["jit", exceptions.filter((_, k) => k % 8 === 0)]] as const) {
  test(`${vs.length} host-CPU vectors with exceptions unmasked take #XM, or not, with the host's MXCSR under ${engine}`, async () => {
    const h = new CpuHarness("protected");
    if (engine === "jit") await useEngine(h.vcpu, "jit", { validate: true });
    assert(vs.some((v) => v.faulted) && vs.some((v) => !v.faulted));
    assertEquals(runExceptionVectors(h, vs).slice(0, 20), []);
  });
}
