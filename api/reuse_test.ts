/**
 * Workers reuse machines (`Machine.reset()`) for one-shot runs and deleted sessions: a run on a
 * reused machine must see exactly what it would see on a new one.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../tests/assert.ts";
import { VmHost } from "./actions.ts";
import { createService } from "./app.ts";
import { DEFAULT_LIMITS } from "./config.ts";
import { BUNDLED_SCRIPTS, loadHookScripts, scriptUrl } from "./hooks.ts";
import { b64, call, ENGINE } from "./_testing.ts";
import type { MachineSpec, RunReport, RunSpec } from "./protocol.ts";

/**
 * Leaves state behind: 32 KiB of 0xab at 0x20000 (REP STOSB), 0x1234 at 0x5000, 16 bytes from
 * port 0x60 at 0x28000 (REP INSB, the script's hook), the UART scratch register, the PIC mask, a
 * PIT channel, registers; hypercall 1 (the bundled "hypercalls" set), then HLT.
 */
const DIRTY = [
  0xb8, 0x00, 0x20, 0x8e, 0xc0, 0x31, 0xff, 0xb9, 0x00, 0x80, 0xb0, 0xab, 0xf3, 0xaa,
  0xc7, 0x06, 0x00, 0x50, 0x34, 0x12,
  0xbc, 0x00, 0x90, 0x50,
  0xba, 0x60, 0x00, 0xbf, 0x00, 0x80, 0xb9, 0x10, 0x00, 0xf3, 0x6c,
  0xba, 0xff, 0x03, 0xb0, 0x5a, 0xee,
  0xb0, 0xfe, 0xe6, 0x21,
  0xb0, 0x34, 0xe6, 0x43, 0xb0, 0x10, 0xe6, 0x40, 0xe6, 0x40,
  0xb0, 0x78, 0xe6, 0xe9,
  0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x01, 0xc1, // mov eax,1; vmcall
  0xf4,
];
const DIRTY_SCRIPT = "vm.onIo({ port: 0x60 }, () => 0x11); vm.onExit('hlt', () => { console.log('hlt'); });";
/** Prints the UART scratch register, the PIC mask, [0x5000] and [0x20000] on the debug console; hlt. */
const PROBE = [
  0xba, 0xff, 0x03, 0xec, 0xe6, 0xe9,
  0xe4, 0x21, 0xe6, 0xe9,
  0xa1, 0x00, 0x50, 0xe6, 0xe9,
  0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xa0, 0x00, 0x00, 0xe6, 0xe9,
  0xf4,
];
const PROBE_DUMPS = [{ addr: 0x5000, len: 4 }, { addr: 0x20000, len: 8 }, { addr: 0x28000, len: 4 }, { addr: 0x7000, len: 4 }, { addr: 0x8ffe, len: 2 }];

function spec(image: number[], extra: Partial<MachineSpec> = {}): MachineSpec {
  return { image: new Uint8Array(image), format: "raw", mode: "real", memBytes: DEFAULT_LIMITS.defaultMemBytes, engine: ENGINE, regs: [], hooks: [], trace: "off", ...extra };
}
const RUN: RunSpec = { budget: 1_000_000, timeoutMs: 5000, dumps: [] };
const PROBE_RUN: RunSpec = { ...RUN, dumps: PROBE_DUMPS };

/** The parts of a report that say what the guest saw (not how long it took). */
function seen(r: RunReport) {
  const { timings: _t, wallMs: _w, ...rest } = r;
  // Under the JIT (VMXLAB_ENGINE=jit): the counters, not the time, nor how many regions the
  // process's code cache already held (a property of the worker's history, not of the machine).
  if (rest.jit) rest.jit = { ...rest.jit, compileMs: 0, cachedRegions: 0 };
  return rest;
}

async function host(): Promise<VmHost> {
  const { sets } = await loadHookScripts(BUNDLED_SCRIPTS.map(scriptUrl));
  return new VmHost(DEFAULT_LIMITS, sets, () => {});
}

test("VmHost reuses the machine of a finished run, and the next run sees a new machine", async () => {
  const expected = seen(await (await host()).run(spec(PROBE), PROBE_RUN));
  assertEquals(expected.console, "\0\0\0\0");
  assertEquals(Object.values(expected.memory).every((hex) => /^0+$/.test(hex)), true);

  const h = await host();
  const dirty = await h.run(spec(DIRTY, { hooks: ["hypercalls"], script: DIRTY_SCRIPT, trace: "path", regs: [["esi", 0x5555]] }), RUN);
  assertEquals(dirty.exit.reason, "hlt");
  assertEquals(dirty.console, "x");
  assertEquals(dirty.logs, ["hlt"]);
  assertEquals(h.pooled, { ready: 0, used: 1 });
  h.recycle();
  assertEquals(h.pooled, { ready: 1, used: 0 });
  const probe = await h.run(spec(PROBE), PROBE_RUN);
  assertEquals(h.pooled, { ready: 0, used: 1 }, "the probe ran on the reused machine");
  assertEquals(seen(probe), expected);
  // A used machine is reset on the spot when the next run comes before the worker was idle.
  await h.run(spec(DIRTY, { hooks: ["hypercalls"], script: DIRTY_SCRIPT }), RUN);
  const again = await h.run(spec(PROBE), PROBE_RUN);
  assertEquals(seen(again), expected);
});

test("VmHost: a deleted session's machine is reused without its state; a failed build's too", async () => {
  const h = await host();
  const expected = seen(await (await host()).run(spec(PROBE), PROBE_RUN));
  await h.create("s1", spec(DIRTY, { hooks: ["hypercalls"], script: DIRTY_SCRIPT }));
  h.sessionRun("s1", RUN);
  h.writeMemory("s1", 0x5000, new Uint8Array([9, 9, 9, 9]));
  h.destroy("s1");
  assertEquals(h.pooled.used, 1);
  assertEquals(seen(await h.run(spec(PROBE), PROBE_RUN)), expected);
  // A script that fails to set up: the run fails, the machine goes back with its hooks removed.
  h.recycle();
  let failed = false;
  try {
    await h.run(spec(DIRTY, { hooks: ["hypercalls"], script: "vm.onIo({ port: 0x60 }, () => 1); throw new Error('no')" }), RUN);
  } catch {
    failed = true;
  }
  assert(failed, "the script's setup failed");
  h.recycle();
  assertEquals(seen(await h.run(spec(PROBE), PROBE_RUN)), expected);
});

test("POST /v1/runs: alternating dirty and probe runs on one worker; every probe sees a new machine", async () => {
  const service = await createService({ workers: 1 });
  try {
    const dirty = { image: b64(DIRTY), hooks: ["hypercalls"], script: DIRTY_SCRIPT, trace: "path" };
    const probe = { image: b64(PROBE), dumps: PROBE_DUMPS };
    const first = await call(service, "POST", "/v1/runs", probe);
    assertEquals(first.status, 200, first.text);
    for (let i = 0; i < 6; i++) {
      const d = await call(service, "POST", "/v1/runs", dirty);
      assertEquals(d.status, 200, d.text);
      assertEquals(d.body.console, "x");
      const p = await call(service, "POST", "/v1/runs", probe);
      assertEquals(p.status, 200, p.text);
      assertEquals(seen(p.body), seen(first.body), `probe ${i}`);
    }
  } finally {
    await service.close();
  }
});

test("A run's report comes back as JSON text with every timing, the main thread's included", async () => {
  const service = await createService({ workers: 1 });
  try {
    const r = await call(service, "POST", "/v1/runs", { image: b64(PROBE) });
    assertEquals(r.status, 200, r.text);
    assertEquals(r.headers.get("content-type"), "application/json");
    assertEquals(Object.keys(r.body.timings).sort(), ["queueMs", "runMs", "setupMs", "totalMs", "workerMs"]);
    for (const v of Object.values(r.body.timings)) assert(typeof v === "number" && v >= 0, `timing ${v}`);
    assert(r.body.timings.totalMs >= r.body.timings.workerMs, "total includes the worker's time");
  } finally {
    await service.close();
  }
});

test("VmHost keeps at most 64 MiB of guest RAM in ready machines; older configurations make room", async () => {
  const h = await host();
  const mib = 1 << 20;
  await h.create("a", spec(PROBE, { memBytes: 16 * mib }));
  await h.create("b", spec(PROBE, { memBytes: 16 * mib }));
  h.destroy("a");
  h.destroy("b");
  h.recycle();
  assertEquals(h.pooled, { ready: 2, used: 0 });
  await h.run(spec(PROBE, { memBytes: 32 * mib }), RUN);
  h.recycle();
  assertEquals(h.pooled, { ready: 3, used: 0 }, "16 + 16 + 32 MiB fit");
  await h.run(spec(PROBE, { memBytes: 8 * mib }), RUN);
  h.recycle();
  assertEquals(h.pooled, { ready: 2, used: 0 }, "the two 16 MiB machines made room for the 8 MiB one");
  const expected = seen(await (await host()).run(spec(PROBE, { memBytes: 32 * mib }), PROBE_RUN));
  assertEquals(seen(await h.run(spec(PROBE, { memBytes: 32 * mib }), PROBE_RUN)), expected);
});
