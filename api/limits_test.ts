/**
 * Every limit bounds all the work done for a request (issue 16, items 2 and 3): hook scripts,
 * including the host functions they call, count against the hook deadlines and the run's
 * timeoutMs; the script's top level counts against timeoutMs; dumps are capped in all; time queued
 * counts, and a run that cannot start in time is refused with 503 and Retry-After. Each answer
 * comes within timeoutMs (or the hook limit) plus the 250 ms grace.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { ANSWER_GRACE_MS, withLimits } from "./config.ts";
import { b64, call, guest, GUESTS, idleCpuMs, TIMING_SLACK_MS } from "./_testing.ts";

const service = await createService({
  workers: 2, prestart: true,
  limits: withLimits({ maxBudget: 100_000_000_000, hookScript: { callMs: 100, runMs: 2_000 } }),
});

async function timed(body: Record<string, unknown>) {
  const t0 = performance.now();
  const r = await call(service, "POST", "/v1/runs", body);
  return { r, ms: performance.now() - t0 };
}
const within = (ms: number, limit: number) =>
  assert(ms < limit + ANSWER_GRACE_MS + TIMING_SLACK_MS, `answered after ${ms.toFixed(0)} ms (limit ${limit} + ${ANSWER_GRACE_MS} grace + ${TIMING_SLACK_MS} slack)`);

test("A hook that loops on host calls (vm.read of 64 KiB) is stopped at its 100 ms per call", async () => {
  // Warm both workers first: a worker's first script run also pays for V8 compiling the paths it takes.
  await Promise.all([0, 1].map(() => timed({ image: guest("pm_hypercall.bin"), mode: "protected", script: "vm.onHypercall(1, () => vm.read(0, 65536).length);" })));
  for (const body of ["let n = 0; for (;;) n += vm.read(0, 65536).length;", "let n = 0; for (;;) { try { n += vm.read(0, 65536).length; } catch { n++; } }"]) {
    const { r, ms } = await timed({ image: guest("pm_hypercall.bin"), mode: "protected", script: `vm.onHypercall(1, () => { ${body} });` });
    assertEquals(r.status, 422, r.text);
    assertEquals(r.body.cause, "timeout");
    within(ms, 100);
  }
});

test("Hook time counts against the run's timeoutMs", async () => {
  const s = await createService({ workers: 1, prestart: true, limits: withLimits({ hookScript: { callMs: 5_000, runMs: 5_000 } }) });
  try {
    const t0 = performance.now();
    const r = await call(s, "POST", "/v1/runs", { image: guest("pm_hypercall.bin"), mode: "protected", timeoutMs: 200, script: "vm.onHypercall(1, () => { for (;;) {} });" });
    const ms = performance.now() - t0;
    assertEquals(r.status, 422, r.text);
    assertEquals(r.body.cause, "timeout");
    within(ms, 200);
    // Its top level too.
    const t1 = performance.now();
    const top = await call(s, "POST", "/v1/runs", { image: b64(GUESTS.spin), timeoutMs: 150, script: "for (;;) {}" });
    assertEquals(top.status, 422, top.text);
    assertEquals(top.body.cause, "timeout");
    within(performance.now() - t1, 150);
  } finally {
    await s.close();
  }
});

test("Dumps are capped in all, and a 1 MiB dump answers within the run's limit", async () => {
  const tooMuch = await timed({ image: b64(GUESTS.incHalt), dumps: Array.from({ length: 8 }, (_, i) => ({ addr: i << 20, len: 1 << 20 })) });
  assertEquals(tooMuch.r.status, 400, tooMuch.r.text);
  assertEquals(tooMuch.r.body.errors[0].field, "dumps");
  const { r, ms } = await timed({ image: b64(GUESTS.incHalt), timeoutMs: 100, dumps: [{ addr: 0, len: 1 << 20 }] });
  assertEquals(r.status, 200, r.text);
  assertEquals(r.body.memory["0x0"].length, 2 << 20);
  within(ms, 100);
});

test("A run that cannot start within its timeoutMs is refused with 503 and Retry-After", async () => {
  const s = await createService({ workers: 1, prestart: true, limits: withLimits({ maxBudget: 100_000_000_000 }) });
  try {
    const spin = call(s, "POST", "/v1/runs", { image: b64(GUESTS.spin), budget: 100_000_000_000, timeoutMs: 1_000 });
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    const r = await call(s, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 }, timeoutMs: 200 });
    const ms = performance.now() - t0;
    assertEquals(r.status, 503, r.text);
    assertEquals(r.body.type, "/docs#problem-busy");
    assert(r.headers.get("retry-after") !== null, "Retry-After");
    within(ms, 200);
    assertEquals((await spin).body.exit.reason, "timeout");
    // The refused run was never started: the worker is free and answers the next one.
    const ok = await call(s, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
    assertEquals(ok.body.console, "4\n");
  } finally {
    await s.close();
  }
});

test("A jit run on a worker without binaryen answers within its limit: run, or 503 with Retry-After", async () => {
  const s = await createService({ workers: 1, prestart: true });
  try {
    const t0 = performance.now();
    const r = await call(s, "POST", "/v1/runs", { image: b64([0xf4, 0xf4]), engine: "jit", timeoutMs: 200 });
    const ms = performance.now() - t0;
    // A worker whose runtime loaded binaryen already (VMXLAB_ENGINE=jit) runs it.
    if (r.status === 503) {
      assertEquals(r.body.type, "/docs#problem-engine-loading");
      assert(r.headers.get("retry-after") !== null, "Retry-After");
    } else {
      assertEquals(r.status, 200, r.text);
    }
    within(ms, 200);
  } finally {
    await s.close();
  }
});

test("No core is left busy after the limits tests", async () => {
  const busy = await idleCpuMs(1000);
  assert(busy < 300, `${busy.toFixed(0)} ms of CPU in an idle second`);
});

test("The limits service closes", async () => {
  await service.close();
});
