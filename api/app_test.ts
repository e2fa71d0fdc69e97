/**
 * The service through `app.request`: health, info, one-shot runs of every test guest, and every
 * error path of the run endpoint.
 */
import { test } from "node:test";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { Buffer } from "node:buffer";
import { b64, call, ENGINE, expected, fields, guest, GUESTS } from "./_testing.ts";

const service = await createService({ workers: 2 });

test("GET /healthz answers ok", async () => {
  const r = await call(service, "GET", "/healthz");
  assertEquals(r.status, 200);
  assertEquals(r.body.status, "ok");
});

test("GET /v1/info reports engines, modes, limits and the bundled hook sets", async () => {
  const r = await call(service, "GET", "/v1/info");
  assertEquals(r.status, 200);
  assertEquals(r.body.engines.find((e: { name: string }) => e.name === "interp").available, true);
  assertEquals(r.body.engines.find((e: { name: string }) => e.name === "kvm").available, false);
  assertEquals(r.body.modes.map((m: { name: string }) => m.name), ["real", "protected", "paged", "long"]);
  assertEquals(r.body.limits.maxBudget, service.limits.maxBudget);
  assertEquals(r.body.hookSets.map((h: { name: string }) => h.name), ["hypercalls", "isa-debug-exit", "io-log"]);
});

test("POST /v1/runs runs the hello guest and reports like vmrun --json", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
  assertEquals(r.status, 200);
  assertEquals(r.body.console, "4\n");
  assertEquals(r.body.exit, { reason: "hlt" });
  assertEquals(r.body.instructions, 7);
  assertEquals(r.body.regs.eip, 0x100c);
  assertEquals(r.body.ports["0x3f8"], { out: 2 });
  assertEquals(r.body.userspaceExits, { io: 2, hlt: 1 });
  assertEquals(r.body.engine, ENGINE);
  assert(r.body.timings.totalMs >= r.body.timings.runMs);
});

for (const [file, e] of Object.entries(expected)) {
  test(`POST /v1/runs runs guest ${file} to its expected output`, async () => {
    const r = await call(service, "POST", "/v1/runs", {
      image: guest(file), mode: e.mode, format: e.format, regs: e.regs, hooks: file === "pm_hypercall.bin" ? ["hypercalls"] : [],
      // The x87 guests compute in software floating point (microseconds an instruction), and under
      // the JIT compile every block first: the default 5 s is too tight on a busy machine.
      ...(file.startsWith("cfloat") ? { timeoutMs: service.limits.maxTimeoutMs } : {}),
    });
    assertEquals(r.status, 200, r.text);
    assertEquals(r.body.console, e.stdout);
    assertEquals(r.body.exit.reason, e.exit);
  });
}

test("POST /v1/runs includes memory dumps, serial input and an exits trace", async () => {
  const r = await call(service, "POST", "/v1/runs", {
    image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 }, dumps: [{ addr: "0x1000", len: 4 }], trace: "exits", serialInput: "abc",
  });
  assertEquals(r.status, 200);
  assertEquals(r.body.memory, { "0x1000": "baf80300" });
  assertEquals(r.body.trace.kind, "exits");
  assertEquals(r.body.trace.events.map((e: { reason: string }) => e.reason), ["io", "io", "hlt"]);
  assertEquals(r.body.trace.events[0].data, [0x34]);
});

test("POST /v1/runs with trace path lists the kernel stages of the IO path", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 }, trace: "path" });
  const stages = r.body.trace.events.map((e: { stage: string }) => e.stage);
  for (const s of ["vcpuEnterGuest", "vmxHandleExit", "handleIo", "kvmEmulatePio"]) assert(stages.includes(s), `${s} in ${stages.join(",")}`);
});

test("A guest in an endless loop ends with reason budget", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: b64(GUESTS.spin), budget: 100_000 });
  assertEquals(r.body.exit, { reason: "budget" });
  assertEquals(r.body.instructions, 100_000);
  assertEquals(r.body.userspaceExits, { budget: 1 }, "slices of the budget are not reported as exits");
});

test("A guest in an endless loop ends with reason timeout at its wall-time limit", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: b64(GUESTS.spin), budget: service.limits.maxBudget, timeoutMs: 100 });
  assertEquals(r.body.exit, { reason: "timeout" });
  assert(r.body.wallMs < 1000, `wallMs ${r.body.wallMs}`);
});

test("A guest that exits on every few instructions still stops at its wall-time limit", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: b64([0xb0, 0x01, 0xe6, 0x80, 0xeb, 0xfa]), budget: service.limits.maxBudget, timeoutMs: 100 });
  assertEquals(r.body.exit, { reason: "timeout" });
  assert(r.body.wallMs < 1500, `wallMs ${r.body.wallMs}`);
  assertEquals(r.body.userspaceExits.budget, undefined, "slices of the budget are not reported as exits");
});

test("A guest that prints without end is stopped at the console limit", async () => {
  const s = await createService({ workers: 1, limits: withLimits({ maxConsoleBytes: 1000 }) });
  try {
    const r = await call(s, "POST", "/v1/runs", { image: b64(GUESTS.printForever), budget: 10_000_000 });
    assertEquals(r.status, 200);
    assertEquals(r.body.exit.reason, "stopped");
    assertStringIncludes(r.body.exit.detail, "Console output limit");
    assertEquals(r.body.console, "x".repeat(1000));
    assertEquals(r.body.consoleTruncated, true);
  } finally {
    await s.close();
  }
});

test("Hook set isa-debug-exit ends the run with the exit code", async () => {
  // mov al,1; out 0xf4,al; hlt
  const r = await call(service, "POST", "/v1/runs", { image: b64([0xb0, 0x01, 0xe6, 0xf4, 0xf4]), hooks: ["isa-debug-exit"] });
  assertEquals(r.body.exit, { reason: "stopped", detail: "exit code 3" });
});

test("Hook set io-log logs each userspace IO exit", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 }, hooks: ["io-log"] });
  assertEquals(r.body.logs, ["out 0x3f8 size 1 data 34", "out 0x3f8 size 1 data 0a"]);
});

// --- error paths ---------------------------------------------------------------------------------

test("An unknown route is a 404 problem", async () => {
  const r = await call(service, "GET", "/v1/nothing");
  assertEquals(r.status, 404);
  assertEquals(r.headers.get("content-type"), "application/problem+json");
  assertEquals(r.body.type, "/docs#problem-not-found");
});

test("A known route with the wrong method is a 405 problem with Allow", async () => {
  const r = await call(service, "DELETE", "/v1/runs");
  assertEquals(r.status, 405);
  assertEquals(r.headers.get("allow"), "POST");
});

test("A body that is not JSON is a 400 malformed-json problem", async () => {
  const r = await call(service, "POST", "/v1/runs", "{not json");
  assertEquals(r.status, 400);
  assertEquals(r.body.type, "/docs#problem-malformed-json");
});

test("A body with another media type is a 415 problem naming the header", async () => {
  const r = await call(service, "POST", "/v1/runs", "image=1", { "content-type": "application/x-www-form-urlencoded" });
  assertEquals(r.status, 415);
  assertEquals(fields(r), ["content-type"]);
});

test("A body over the limit is a 413 problem", async () => {
  const s = await createService({ workers: 1, limits: withLimits({ maxBodyBytes: 1024 }) });
  try {
    const r = await call(s, "POST", "/v1/runs", { image: "A".repeat(4096) });
    assertEquals(r.status, 413);
    assertEquals(r.body.type, "/docs#problem-body-too-large");
  } finally {
    await s.close();
  }
});

test("An engine that is not built yet is a 422 problem naming engine", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), engine: "kvm" });
  assertEquals(r.status, 422);
  assertEquals(fields(r), ["engine"]);
  assertMatch(r.body.detail, /not built yet/);
});

test("Long mode is a 422 problem naming mode", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), mode: "long" });
  assertEquals(r.status, 422);
  assertEquals(fields(r), ["mode"]);
});

test("A truncated ELF is a 422 image problem naming image", async () => {
  const elf = Buffer.from(guest("cguest_O2.elf"), "base64").subarray(0, 60);
  const r = await call(service, "POST", "/v1/runs", { image: elf.toString("base64"), mode: "protected", format: "elf" });
  assertEquals(r.status, 422);
  assertEquals(r.body.type, "/docs#problem-image");
  assertEquals(fields(r), ["image"]);
});

test("An entry point outside guest memory is a 422 problem naming entry", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), entry: "0xfffff", mem: "64K" });
  assertEquals(r.status, 422);
  assertEquals(fields(r), ["entry"]);
});

test("An unknown hook set is a 400 problem naming the list element", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), hooks: ["io-log", "nope"] });
  assertEquals(r.status, 400);
  assertEquals(fields(r), ["hooks.1"]);
});

test("Runs beyond the concurrency limit are a 429 problem with Retry-After", async () => {
  // maxBudget: the spinning run reaches its time limit first under any engine (the JIT spins ~1.5 G instructions/s).
  const s = await createService({ workers: 1, limits: withLimits({ maxConcurrentRuns: 1, maxBudget: 100_000_000_000 }) });
  try {
    const slow = call(s, "POST", "/v1/runs", { image: b64(GUESTS.spin), budget: s.limits.maxBudget, timeoutMs: 300 });
    await new Promise((r) => setTimeout(r, 20));
    const r = await call(s, "POST", "/v1/runs", { image: guest("hello16.bin") });
    assertEquals(r.status, 429);
    assertEquals(r.headers.get("retry-after"), "1");
    assertEquals((await slow).body.exit.reason, "timeout");
  } finally {
    await s.close();
  }
});

test("The service closes its workers", async () => {
  await service.close();
});
