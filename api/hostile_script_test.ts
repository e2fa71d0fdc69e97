/**
 * Hostile request scripts (issue 16, item 1): a value a script throws or returns is read inside
 * QuickJS as plain data, under a deadline and with a size cap — never by calling its getters,
 * `toJSON`, Proxy traps or `toString` in the host. Each request answers within the script's own
 * limit plus a fixed grace, and no thread is left spinning afterwards.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import process from "node:process";
import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { ANSWER_GRACE_MS, withLimits } from "./config.ts";
import { b64, call, guest, GUESTS, idleCpuMs, TIMING_SLACK_MS } from "./_testing.ts";

const RUN_MS = 300;
/** The grace every answer gets past its limits (issue 16: "say 250 ms"). */
const GRACE_MS = ANSWER_GRACE_MS;
// Started before the timed requests: the first request would otherwise wait for the workers to start.
const service = await createService({ workers: 2, prestart: true, limits: withLimits({ hookScript: { callMs: 100, runMs: RUN_MS } }) });

const SPIN = "for (;;) {}";
/** Thrown values whose reading would never end if the host read them by calling into the script. */
const HOSTILE: Record<string, string> = {
  getter: `throw { get x() { ${SPIN} } };`,
  toJSON: `throw { toJSON() { ${SPIN} } };`,
  "Error with a message getter": `const e = new Error("m"); Object.defineProperty(e, "message", { get() { ${SPIN} } }); throw e;`,
  "Error with a name getter": `const e = new Error("m"); Object.defineProperty(e, "name", { get() { ${SPIN} } }); throw e;`,
  "Error with a stack getter": `const e = new Error("m"); Object.defineProperty(e, "stack", { get() { ${SPIN} } }); throw e;`,
  "name getter on Error.prototype": `Object.defineProperty(Error.prototype, "name", { get() { ${SPIN} } }); throw new TypeError("t");`,
  Proxy: `throw new Proxy({}, { get() { ${SPIN} }, getOwnPropertyDescriptor() { ${SPIN} }, ownKeys() { ${SPIN} }, getPrototypeOf() { ${SPIN} }, has() { ${SPIN} } });`,
  "Proxy around an Error": `throw new Proxy(new Error("p"), { get() { ${SPIN} }, getOwnPropertyDescriptor() { ${SPIN} }, getPrototypeOf() { ${SPIN} } });`,
};

// A worker's first script run pays for V8 compiling the paths it takes (100–300 ms): warm both
// workers, so the timed requests below measure the limits, not the warm-up.
await Promise.all([0, 1].map(() => call(service, "POST", "/v1/runs", { image: guest("pm_hypercall.bin"), mode: "protected", script: "vm.onHypercall(1, () => 1);" })));

async function timed(body: Record<string, unknown>) {
  const t0 = performance.now();
  const r = await call(service, "POST", "/v1/runs", body);
  return { r, ms: performance.now() - t0 };
}

for (const [name, thrower] of Object.entries(HOSTILE)) {
  test(`A script that throws a hostile value (${name}) at its top level is a 422 within its limit`, async () => {
    const { r, ms } = await timed({ image: guest("pm_hypercall.bin"), mode: "protected", script: thrower });
    assertEquals(r.status, 422, r.text);
    assertEquals(r.body.type, "/docs#problem-script");
    assert(["exception", "timeout"].includes(r.body.cause), r.text);
    assert(ms < RUN_MS + GRACE_MS + TIMING_SLACK_MS, `answered after ${ms.toFixed(0)} ms (limit ${RUN_MS} + ${GRACE_MS} + ${TIMING_SLACK_MS} slack)`);
  });

  test(`A hook that throws a hostile value (${name}) is a 422 hook-failed within its limit`, async () => {
    const { r, ms } = await timed({ image: guest("pm_hypercall.bin"), mode: "protected", script: `vm.onHypercall(1, () => { ${thrower} });` });
    assertEquals(r.status, 422, r.text);
    assertEquals(r.body.type, "/docs#problem-hook-failed");
    assertEquals(r.body.hook, "script hypercall 1");
    assert(ms < RUN_MS + GRACE_MS + TIMING_SLACK_MS, `answered after ${ms.toFixed(0)} ms (limit ${RUN_MS} + ${GRACE_MS} + ${TIMING_SLACK_MS} slack)`);
  });
}

test("The issue's request (timeoutMs 1, a getter that spins) answers within 1 ms plus the grace", async () => {
  const { r, ms } = await timed({ image: guest("pm_hypercall.bin"), mode: "protected", timeoutMs: 1, script: HOSTILE.getter });
  // The script's top level counts against the 1 ms: a timeout (422), or a 503 if no worker could
  // start it or finish within the grace; never a worker left spinning.
  assert(r.status === 422 || r.status === 503, r.text);
  assert(ms < 1 + GRACE_MS + TIMING_SLACK_MS, `answered after ${ms.toFixed(0)} ms`);
});

test("A hook that returns a value with a spinning toJSON or getter is stopped at its deadline", async () => {
  for (const ret of [`({ toJSON() { ${SPIN} } })`, `({ get x() { ${SPIN} } })`, `new Proxy({}, { get() { ${SPIN} }, ownKeys() { ${SPIN} } })`]) {
    const { r, ms } = await timed({ image: guest("pm_hypercall.bin"), mode: "protected", script: `vm.onHypercall(1, () => ${ret});` });
    assertEquals(r.status, 422, r.text);
    assertEquals(r.body.cause, "timeout", r.text);
    assert(ms < RUN_MS + GRACE_MS + TIMING_SLACK_MS, `answered after ${ms.toFixed(0)} ms`);
  }
});

test("Thrown values are read as plain data: the message of an ordinary Error, capped in size", async () => {
  const plain = await timed({ image: b64(GUESTS.echoPort60), script: `vm.onIo({ port: 0x60 }, () => { throw new RangeError("plain " + 42); });` });
  assertMatch(plain.r.body.detail, /threw RangeError: plain 42/);
  const big = await timed({ image: b64(GUESTS.echoPort60), script: `throw new Error("x".repeat(4 << 20));` });
  assertEquals(big.r.status, 422);
  assert(big.r.text.length < 16_384, `a ${big.r.text.length}-byte problem for a 4 MiB message`);
  const str = await timed({ image: b64(GUESTS.echoPort60), script: `throw "a string";` });
  assertMatch(str.r.body.detail, /threw Error: a string/);
});

/** A worker process's resident memory in bytes (Linux). */
function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

test("Deep structures do not abort QuickJS nor leak (issue 16, item 4)", { skip: process.platform !== "linux" && "reads /proc" }, async () => {
  // The script builds its 200,000-deep array for longer than the 300 ms the service above gives.
  const s = await createService({ workers: 1, prestart: true });
  try {
    const post = (script: string) => call(s, "POST", "/v1/runs", { image: guest("pm_hypercall.bin"), mode: "protected", script });
    const deep = "let o = 1; for (let i = 0; i < 200000; i++) o = [o];";
    const first = await post(`${deep} JSON.stringify(o);`);
    assertEquals(first.status, 422, first.text);
    assertMatch(first.body.detail, /stack overflow|QuickJS/);
    const rss0 = rssOf(s.pool.pids[0]);
    for (let i = 0; i < 2; i++) {
      for (const tail of ["JSON.stringify(o);", "vm.onHypercall(1, () => JSON.stringify(o).length);", "String(o);"]) {
        const r = await post(`${deep} ${tail}`);
        assert(r.status === 422 || r.status === 200, r.text);
      }
    }
    const grew = rssOf(s.pool.pids[0]) - rss0;
    // It lost ~17 MB per request when QuickJS aborted.
    assert(grew < 40 << 20, `the worker grew by ${(grew / 2 ** 20).toFixed(1)} MB over 6 requests`);
    const ok = await post("vm.onHypercall(1, ([a, b]) => (a + b) >>> 0);");
    assertEquals(ok.body.console, "33333333\n");
  } finally {
    await s.close();
  }
});

test("No thread keeps spinning after hostile values were thrown", async () => {
  // Every request above has answered; whatever read their values must have stopped too.
  const busy = await idleCpuMs(1000);
  assert(busy < 300, `the process used ${busy.toFixed(0)} ms of CPU in an idle second: a thread is still spinning`);
  const ok = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
  assertEquals(ok.body.console, "4\n");
});

test("The hostile-script service closes", async () => {
  await service.close();
});
