/**
 * Request hook scripts in QuickJS: hooks that work, hooks that throw, spin or run out of memory
 * (each ends its run with a clear error while the service keeps answering), and isolation.
 */
import { test } from "node:test";
import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { b64, call, fields, guest, GUESTS } from "./_testing.ts";

const service = await createService({ workers: 2, limits: withLimits({ hookScript: { callMs: 100, runMs: 500 } }) });
const run = (body: Record<string, unknown>) => call(service, "POST", "/v1/runs", body);

test("A script's hypercall hook answers the guest", async () => {
  const r = await run({ image: guest("pm_hypercall.bin"), mode: "protected", script: "vm.onHypercall(1, ([a, b]) => (a + b) >>> 0);" });
  assertEquals(r.status, 200, r.text);
  assertEquals(r.body.console, "33333333\n");
});

test("A script's IO hook supplies the value of an IN and can read registers and log", async () => {
  const r = await run({
    image: b64(GUESTS.echoPort60),
    script: `vm.onIo({ port: 0x60, direction: "in" }, (io) => { console.log("in", io.port, vm.regs().rip); return 0x41; });`,
  });
  assertEquals(r.body.console, "A");
  assertEquals(r.body.logs, ["in 96 4096"]);
});

test("A script's exit hook can resume the guest after HLT and stop the run", async () => {
  const r = await run({
    image: b64(GUESTS.incHalt),
    script: `vm.onExit("hlt", () => { if (vm.regs().rax < 5) return "resume"; vm.stop("five"); });`,
  });
  assertEquals(r.body.exit, { reason: "stopped", detail: "five" });
  assertEquals(r.body.regs.eax, 5);
});

test("A script can read and write guest memory from a hook", async () => {
  // in al,0x60; hlt — the hook writes 0xAB at 0x500 and reads the guest's first byte
  const r = await run({
    image: b64([0xe4, 0x60, 0xf4]), dumps: [{ addr: 0x500, len: 1 }],
    script: `vm.onIo({ port: 0x60 }, () => { vm.write(0x500, [0xab]); return vm.read(0x1000, 1)[0]; });`,
  });
  assertEquals(r.body.memory, { "0x500": "ab" });
  assertEquals(r.body.regs.eax & 0xff, 0xe4);
});

test("A script that throws in a hook ends the run with a 422 hook-failed problem", async () => {
  const r = await run({ image: b64(GUESTS.echoPort60), script: `vm.onIo({ port: 0x60 }, () => { throw new Error("boom"); });` });
  assertEquals(r.status, 422);
  assertEquals(r.body.type, "/docs#problem-hook-failed");
  assertEquals(r.body.cause, "exception");
  assertEquals(r.body.hook, "script io 0x60");
  assertMatch(r.body.detail, /threw Error: boom/);
  assertEquals(r.body.run.exit.reason, "hook_error");
  assertEquals(fields(r), ["script"]);
});

test("A hook that spins is stopped at its deadline while other requests are served", async () => {
  const spinning = run({ image: b64(GUESTS.echoPort60), script: `vm.onIo({ port: 0x60 }, () => { for (;;) {} });` });
  // Meanwhile: health and a full run on the other worker.
  const t0 = performance.now();
  const h = await call(service, "GET", "/healthz");
  assertEquals(h.status, 200);
  assert(performance.now() - t0 < 100, "healthz answered at once");
  const ok = await run({ image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
  assertEquals(ok.body.console, "4\n");
  const r = await spinning;
  assertEquals(r.status, 422);
  assertEquals(r.body.cause, "timeout");
  assertMatch(r.body.detail, /ran past its deadline \(100 ms\)/);
});

test("Hook calls share one deadline per run", async () => {
  // Each call takes ~60 ms, under the 100 ms per call; the run's 500 ms runs out on the ninth or so.
  const r = await run({
    image: b64([0xe4, 0x60, 0xeb, 0xfc]),
    script: `vm.onIo({ port: 0x60 }, () => { const t = Date.now(); while (Date.now() - t < 60) {} return 0; });`,
  });
  assertEquals(r.status, 422);
  assertEquals(r.body.cause, "timeout");
});

test("A script that spins at its top level is a 422 script problem", async () => {
  const r = await run({ image: b64(GUESTS.spin), script: "for (;;) {}" });
  assertEquals(r.status, 422);
  assertEquals(r.body.type, "/docs#problem-script");
  assertEquals(r.body.cause, "timeout");
  assertEquals(fields(r), ["script"]);
});

test("A hook that runs out of memory ends the run with cause memory", async () => {
  const s = await createService({ workers: 1, limits: withLimits({ hookScript: { memoryBytes: 2 << 20, callMs: 3000, runMs: 3000 } }) });
  try {
    for (const grow of ["a.push({ n: a.length, b: [1, 2, 3, 4, 5, 6, 7, 8] })", "a.push('xxxxxxxxxxxxxxxx' + a.length)"]) {
      const r = await call(s, "POST", "/v1/runs", { image: b64(GUESTS.echoPort60), script: `vm.onIo({ port: 0x60 }, () => { const a = []; for (;;) ${grow}; });` });
      assertEquals(r.status, 422);
      assertEquals(r.body.cause, "memory", r.body.detail);
      assertMatch(r.body.detail, /ran out of memory \(2097152 bytes\)/);
    }
  } finally {
    await s.close();
  }
});

test("A script with a syntax error is a 422 script problem", async () => {
  const r = await run({ image: b64(GUESTS.spin), script: "vm.onIo({ port: 0x60 }, () => {" });
  assertEquals(r.status, 422);
  assertMatch(r.body.detail, /SyntaxError/);
});

test("A script hook on a port a device claims is a 422 hook-conflict problem", async () => {
  const r = await run({ image: b64(GUESTS.spin), script: "vm.onIo({ port: 0x3f8 }, () => 0);" });
  assertEquals(r.status, 422);
  assertEquals(r.body.type, "/docs#problem-hook-conflict");
  assertMatch(r.body.detail, /claimed by userspace device "serial"/);
});

test("A hook script cannot reach files, the environment, the network or the process", async () => {
  const script = `
    const probes = {
      fetch: typeof fetch, Deno: typeof Deno, Bun: typeof Bun, process: typeof process, require: typeof require,
      std: typeof std, os: typeof os, XMLHttpRequest: typeof XMLHttpRequest, WebSocket: typeof WebSocket,
      Worker: typeof Worker, importScripts: typeof importScripts, globals: Object.getOwnPropertyNames(globalThis).sort().join(","),
    };
    let imported = "no";
    import("node:fs").then(() => { imported = "yes"; }, (e) => { imported = String(e); });
    let fnCtor = "no";
    try { fnCtor = typeof Function("return this")().Deno; } catch (e) { fnCtor = String(e); }
    vm.onIo({ port: 0x60 }, () => { console.log(JSON.stringify({ ...probes, imported, fnCtor })); return 0; });
  `;
  const r = await run({ image: b64(GUESTS.echoPort60), script });
  assertEquals(r.status, 200, r.text);
  const p = JSON.parse(r.body.logs[0]);
  for (const k of ["fetch", "Deno", "Bun", "process", "require", "std", "os", "XMLHttpRequest", "WebSocket", "Worker", "importScripts"]) {
    assertEquals(p[k], "undefined", k);
  }
  assertEquals(p.fnCtor, "undefined");
  assert(p.imported !== "yes", "dynamic import must fail");
  assert(!/Deno|process|fetch|require/.test(p.globals), p.globals);
});

test("The sandboxed service closes", async () => {
  await service.close();
});
