/**
 * A run can always be killed and its CPU freed (issue 16): a worker stuck on the CPU past every
 * limit (here in a trusted operator hook that spins) is a process the pool kills with SIGKILL. Its
 * run answers 503, its slot gets a new process (health says degraded until then), sessions on the
 * other worker survive, and no core stays busy.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import process from "node:process";
import { assert, assertEquals } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { b64, call, guest, GUESTS, idleCpuMs, TIMING_SLACK_MS } from "./_testing.ts";

/** mov ax,10; vmcall; hlt (16-bit) — hypercall 10, which the "spin" hook set never returns from. */
const SPIN_HYPERCALL = [0xb8, 0x0a, 0x00, 0x0f, 0x01, 0xc1, 0xf4];

/** The process exists and is not a zombie (an exited process nobody has reaped yet uses no CPU). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return process.platform !== "linux";
  }
}

test("A worker spinning in a hook is killed, its slot replaced, and the other worker's sessions survive", async () => {
  const service = await createService({
    workers: 2, prestart: true,
    scripts: [new URL("./testdata/stall_hooks.ts", import.meta.url)],
    limits: withLimits({ hookScript: { runMs: 50 } }),
    watchdogGraceMs: 200,
  });
  try {
    const a = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) });
    const b = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) });
    assertEquals([a.status, b.status], [201, 201]);
    const before = service.pool.pids;
    const t0 = performance.now();
    const r = await call(service, "POST", "/v1/runs", { image: b64(SPIN_HYPERCALL), hooks: ["spin"], timeoutMs: 100 });
    const ms = performance.now() - t0;
    assertEquals(r.status, 503, r.text);
    assertEquals(r.body.type, "/docs#problem-worker-lost");
    // The watchdog's limit: 100 ms + 200 ms grace, plus a killed process's exit.
    assert(ms < 100 + 200 + 500 + TIMING_SLACK_MS, `the stuck run answered after ${ms.toFixed(0)} ms`);
    const killed = before.filter((pid) => !service.pool.pids.includes(pid));
    assertEquals(killed.length, 1, "exactly one worker was replaced");
    // Health reports the missing worker while its replacement starts.
    const h = await call(service, "GET", "/healthz");
    assertEquals(h.body.status, "degraded", h.text);
    assertEquals(h.body.workers.killed, 1);
    // The killed process is gone and nothing of it uses the CPU.
    for (let i = 0; i < 50 && alive(killed[0]); i++) await new Promise((res) => setTimeout(res, 20));
    assert(!alive(killed[0]), `worker process ${killed[0]} still exists`);
    // One session was on each worker: the killed worker's is gone, the other's still runs.
    const left = [];
    for (const s of [a, b]) left.push((await call(service, "GET", `/v1/vms/${s.body.id}`)).status);
    assertEquals([...left].sort(), [200, 404]);
    const survivor = left[0] === 200 ? a : b;
    const run = await call(service, "POST", `/v1/vms/${survivor.body.id}/run`, {});
    assertEquals(run.status, 200, run.text);
    assertEquals(run.body.regs.eax, 1, run.text);
    // The replacement answers; health is ok again.
    for (let i = 0; i < 100 && service.pool.degraded; i++) await new Promise((res) => setTimeout(res, 50));
    assertEquals((await call(service, "GET", "/healthz")).body.status, "ok");
    const ok = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
    assertEquals(ok.body.console, "4\n");
    const busy = await idleCpuMs(1000);
    assert(busy < 300, `the service used ${busy.toFixed(0)} ms of CPU in an idle second after the kill`);
  } finally {
    await service.close();
  }
});
