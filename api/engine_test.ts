/**
 * Engines in the service: `engine` on runs and sessions, /v1/info's table, the `jit` policy, the
 * limits under the JIT, and hooks (operator hook sets and QuickJS request scripts) giving the same
 * answers under interp, jit and auto.
 */
import { test } from "node:test";
import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { b64, call, fields, guest, GUESTS } from "./_testing.ts";

// A budget no engine reaches in a test's time (compiled, `jmp $` retires ~1.5 G instructions/s here).
const service = await createService({ workers: 2, limits: withLimits({ maxBudget: 100_000_000_000 }) });
const run = (body: Record<string, unknown>) => call(service, "POST", "/v1/runs", body);

/** What a reply says about the guest: everything but timings, the engine's name and its counters. */
// deno-lint-ignore no-explicit-any
function guestView(body: any): unknown {
  if (body === undefined || body === null || typeof body !== "object") return body;
  const { timings: _t, wallMs: _w, engine: _e, jit: _j, instance: _i, ...rest } = body;
  if (rest.run) rest.run = guestView(rest.run);
  return rest;
}

/** The same request under each engine: same status and the same guest-visible reply. */
async function sameUnderEveryEngine(body: Record<string, unknown>, what: string) {
  const replies = [];
  for (const engine of ["interp", "jit", "auto"]) {
    const r = await run({ ...body, engine });
    if (r.status === 200) assertEquals(r.body.engine, engine, what);
    replies.push({ engine, status: r.status, view: guestView(r.body), jit: r.body?.jit ?? r.body?.run?.jit });
  }
  for (const r of replies.slice(1)) {
    assertEquals({ status: r.status, view: r.view }, { status: replies[0].status, view: replies[0].view }, `${what}: ${r.engine} against interp`);
  }
  return replies;
}

/**
 * 32-bit loop at 0x100000, 200 times: hypercall 1 (add), OUT 0x99 of a running sum, IN 0x60, a store
 * to RAM, an MMIO read at 0xF0000000; then hypercall 4 (instruction count), 'Z' on 0xE9, HLT.
 */
const HOOKED_LOOP = [
  0xb9, 0xc8, 0x00, 0x00, 0x00, // mov ecx,200
  0xb8, 0x01, 0x00, 0x00, 0x00, // l: mov eax,1
  0x89, 0xcb, // mov ebx,ecx
  0x0f, 0x01, 0xc1, // vmcall            (eax = ebx + ecx)
  0x01, 0xc6, // add esi,eax
  0x89, 0xf0, // mov eax,esi
  0xe7, 0x99, // out 0x99,eax
  0xe4, 0x60, // in al,0x60
  0x01, 0xc7, // add edi,eax
  0x89, 0x34, 0x8d, 0x00, 0x00, 0x20, 0x00, // mov [ecx*4+0x200000],esi
  0xa1, 0x00, 0x00, 0x00, 0xf0, // mov eax,[0xf0000000]   (MMIO)
  0x01, 0xc5, // add ebp,eax
  0x49, // dec ecx
  0x75, 0xdb, // jnz l
  0xb8, 0x04, 0x00, 0x00, 0x00, // mov eax,4
  0x0f, 0x01, 0xc1, // vmcall            (eax = instructions so far)
  0x89, 0xc2, // mov edx,eax
  0xb0, 0x5a, 0xe6, 0xe9, // mov al,'Z'; out 0xe9,al
  0xf4, // h: hlt
  0xeb, 0xfd, // jmp h   (a session's next run halts again)
];
const LOOP_SCRIPT = `
  let n = 0;
  vm.onIo({ port: 0x60, direction: "in" }, () => (n++ * 7) & 0xff);
  vm.onIo({ port: 0x99, direction: "out" }, (io) => { if (io.value % 50 === 0) console.log("out", io.value, vm.instructions(), vm.regs().rip); });
  vm.onMmio({ base: 0xf0000000, size: 0x1000 }, { read: () => vm.instructions() & 0xffff });
  vm.onExit("hlt", () => { console.log("hlt", JSON.stringify(vm.regs()), vm.instructions()); });
`;

test("/v1/info: jit and auto are available, with notes; the default engine is interp", async () => {
  const r = await call(service, "GET", "/v1/info");
  assertEquals(r.status, 200);
  const by = (n: string) => r.body.engines.find((e: { name: string }) => e.name === n);
  for (const n of ["interp", "jit", "auto"]) assertEquals(by(n).available, true, n);
  assertMatch(by("jit").note, /WebAssembly.*first jit run/);
  assertMatch(by("auto").note, /64 times.*does not wait for binaryen/);
  assertEquals(by("kvm").available, false);
  assertEquals(r.body.defaultEngine, process.env.VMXLAB_ENGINE || "interp");
});

test("An engine that is not an engine is a 400 problem naming engine", async () => {
  const r = await run({ image: guest("hello16.bin"), engine: "turbo" });
  assertEquals(r.status, 400);
  assertEquals(r.headers.get("content-type"), "application/problem+json");
  assertEquals(fields(r), ["engine"]);
});

test("Operator hook sets, a request script, MMIO and an exits trace answer the same under interp, jit and auto", async () => {
  const replies = await sameUnderEveryEngine({
    image: b64(HOOKED_LOOP), mode: "protected", hooks: ["hypercalls", "io-log"], script: LOOP_SCRIPT,
    dumps: [{ addr: 0x200000, len: 804 }], trace: "exits",
  }, "hooked loop");
  const first = replies[0].view as { exit: unknown; console: string; logs: string[]; instructions: number; regs: { edx: number } };
  assertEquals(first.exit, { reason: "hlt" });
  assertEquals(first.console, "Z");
  assert(first.logs.length > 400 && first.logs.some((l) => l.startsWith("hlt ")), "hooks ran");
  assertEquals(first.regs.edx, first.instructions - 5, "hypercall 4 saw the count before the VMCALL retired");
  assert(replies[1].jit.regions > 0 && replies[1].jit.compiledInstructions > 0, `jit compiled code ran: ${JSON.stringify(replies[1].jit)}`);
});

test("Every stage of the kernel paths is the same under interp and jit (trace path)", async () => {
  await sameUnderEveryEngine({ image: guest("pm_hypercall.bin"), mode: "protected", hooks: ["hypercalls"], trace: "path" }, "pm_hypercall path");
  await sameUnderEveryEngine({ image: guest("rm_string_io.bin"), serialInput: "hi", trace: "path", dumps: [{ addr: 0x600, len: 4 }] }, "rm_string_io path");
});

test("Scripts that resume, stop, write memory, and a hypercall hook set's stop, agree under every engine", async () => {
  await sameUnderEveryEngine({
    image: b64(GUESTS.incHalt),
    script: `vm.onExit("hlt", () => { if (vm.regs().rax < 50) return "resume"; vm.stop("fifty"); });`,
  }, "resume and stop");
  await sameUnderEveryEngine({
    image: b64([0xe4, 0x60, 0xf4]), dumps: [{ addr: 0x500, len: 1 }],
    script: `vm.onIo({ port: 0x60 }, () => { vm.write(0x500, [0xab]); return vm.read(0x1000, 1)[0]; });`,
  }, "memory from a hook");
  // mov eax,3; mov ebx,7; vmcall (hypercall 3: stop with exit code 7)
  await sameUnderEveryEngine({
    image: b64([0xb8, 3, 0, 0, 0, 0xbb, 7, 0, 0, 0, 0x0f, 0x01, 0xc1, 0xf4]), mode: "protected", hooks: ["hypercalls"],
  }, "hypercall stop");
  // isa-debug-exit: mov al,5; out 0xf4,al
  await sameUnderEveryEngine({ image: b64([0xb0, 0x05, 0xe6, 0xf4, 0xf4]), hooks: ["isa-debug-exit"] }, "isa-debug-exit");
});

test("A hook that throws is the same 422 hook-failed problem, with the same run so far, under every engine", async () => {
  const replies = await sameUnderEveryEngine({
    image: b64(HOOKED_LOOP), mode: "protected", hooks: ["hypercalls"],
    script: `let k = 0; vm.onIo({ port: 0x60 }, () => { if (++k === 150) throw new Error("boom"); return 1; }); vm.onIo({ port: 0x99 }, () => {}); vm.onMmio({ base: 0xf0000000, size: 16 }, { read: () => 2 });`,
  }, "hook throws");
  assertEquals(replies[0].status, 422);
  const p = replies[0].view as { hook: string; run: { exit: { reason: string }; instructions: number } };
  assertEquals(p.hook, "script io 0x60");
  assertEquals(p.run.exit.reason, "hook_error");
  assert(p.run.instructions > 1000);
});

test("Limits hold under the JIT: the exact budget, the console cap, and the wall-clock deadline of a spinning guest", async () => {
  for (const engine of ["jit", "auto"]) {
    // The budget: a spinning guest stops at exactly its budget (the VMX preemption timer).
    const b = await run({ image: b64(GUESTS.spin), engine, budget: 3_000_001 });
    assertEquals(b.status, 200, b.text);
    assertEquals(b.body.exit.reason, "budget");
    assertEquals(b.body.instructions, 3_000_001);
    // The deadline: a spinning guest with a budget far beyond its time limit (100 G instructions).
    const t = await run({ image: b64(GUESTS.spin), engine, budget: service.limits.maxBudget, timeoutMs: 300 });
    assertEquals(t.status, 200, t.text);
    assertEquals(t.body.exit.reason, "timeout");
    // The limit counts from when the request was queued (it bounds all the work done for it), so
    // the run stops 300 ms after the request came in, not 300 ms after the guest started.
    assert(t.body.timings.totalMs >= 300 && t.body.wallMs < 1500, `${engine}: answered ${t.body.timings.totalMs} ms after a 300 ms run came in (${t.body.wallMs} ms running)`);
    assert(t.body.instructions > 1_000_000, `${engine}: ${t.body.instructions} instructions`);
    if (engine === "jit") assert(t.body.jit.compiledInstructions > t.body.instructions / 2, "compiled code spun");
    // The console cap: a guest that prints forever is stopped.
    const c = await run({ image: b64(GUESTS.printForever), engine, budget: service.limits.maxBudget, timeoutMs: 10_000 });
    assertEquals(c.body.exit.reason, "stopped");
    assertEquals(c.body.consoleTruncated, true);
  }
});

test("Sessions run under the engine they were created with, and agree with interp", async () => {
  const views: unknown[] = [];
  for (const engine of ["interp", "jit"]) {
    const s = await call(service, "POST", "/v1/vms", { image: b64(HOOKED_LOOP), mode: "protected", hooks: ["hypercalls"], script: LOOP_SCRIPT, engine, budget: 1000 });
    assertEquals(s.status, 201, s.text);
    assertEquals(s.body.engine, engine);
    const id = s.body.id;
    const runs = [];
    for (let i = 0; i < 4; i++) {
      const r = await call(service, "POST", `/v1/vms/${id}/run`);
      assertEquals(r.status, 200, r.text);
      assertEquals(r.body.engine, engine);
      runs.push(guestView(r.body));
    }
    const regs = await call(service, "GET", `/v1/vms/${id}/regs`);
    views.push({ runs, regs: regs.body });
    assertEquals((await call(service, "GET", `/v1/vms/${id}`)).body.engine, engine);
    assertEquals((await call(service, "DELETE", `/v1/vms/${id}`)).status, 204);
  }
  assertEquals(views[1], views[0]);
});

test("A worker's reused machines get the engine each request asks for", async () => {
  const s = await createService({ workers: 1 });
  try {
    const body = { image: b64(HOOKED_LOOP), mode: "protected", hooks: ["hypercalls"], script: LOOP_SCRIPT };
    let want: unknown = null;
    for (const engine of ["jit", "interp", "auto", "interp", "jit", "jit"]) {
      const r = await call(s, "POST", "/v1/runs", { ...body, engine });
      assertEquals(r.status, 200, r.text);
      assertEquals(r.body.engine, engine);
      assertEquals(r.body.jit === undefined, engine === "interp", `${engine}: JIT counters only under the JIT`);
      if (engine === "jit") assert(r.body.jit.regions > 0, "a fresh JIT compiled the guest");
      want ??= guestView(r.body);
      assertEquals(guestView(r.body), want, engine);
    }
  } finally {
    await s.close();
  }
});

test("A worker's second jit run of an image takes its regions from the code cache, with the same answer", async () => {
  const s = await createService({ workers: 1 });
  try {
    const body = { image: guest("pm_crc32.bin"), mode: "protected", engine: "jit" };
    const first = await call(s, "POST", "/v1/runs", body);
    const second = await call(s, "POST", "/v1/runs", body);
    assertEquals([first.status, second.status], [200, 200], second.text);
    assert(second.body.jit.regions > 0);
    assertEquals(second.body.jit.cachedRegions, second.body.jit.regions, JSON.stringify(second.body.jit));
    assertEquals(guestView(second.body), guestView(first.body));
  } finally {
    await s.close();
  }
});

test("jit: 'off' refuses jit and auto with a 422 naming engine; 'preload' says so in /v1/info", async () => {
  const off = await createService({ workers: 1, jit: "off", defaultEngine: "interp" });
  try {
    const info = await call(off, "GET", "/v1/info");
    assertEquals(info.body.engines.find((e: { name: string }) => e.name === "jit").available, false);
    const r = await call(off, "POST", "/v1/runs", { image: guest("hello16.bin"), engine: "auto" });
    assertEquals(r.status, 422);
    assertEquals(fields(r), ["engine"]);
    assertMatch(r.body.detail, /turned off by the operator/);
    const ok = await call(off, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
    assertEquals(ok.body.engine, "interp");
  } finally {
    await off.close();
  }
  const pre = await createService({ workers: 1, jit: "preload", defaultEngine: "jit" });
  try {
    const info = await call(pre, "GET", "/v1/info");
    assertMatch(info.body.engines.find((e: { name: string }) => e.name === "jit").note, /as each worker starts/);
    assertEquals(info.body.defaultEngine, "jit");
    const r = await call(pre, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
    assertEquals(r.body.engine, "jit");
    assertEquals(r.body.console, "4\n");
  } finally {
    await pre.close();
  }
});

test("The engines' service closes", async () => {
  await service.close();
});

test("auto in a worker without binaryen: a short run answers at once, interpreted; a long one loads it between slices and finishes under auto", async () => {
  // A new service's worker has not loaded binaryen (the default jit policy loads it on demand).
  const s = await createService({ workers: 1 });
  try {
    const short = await call(s, "POST", "/v1/runs", { image: guest("hello16.bin"), engine: "auto" });
    assertEquals(short.status, 200, short.text);
    assertEquals(short.body.engine, "auto");
    assertEquals(short.body.jit.regions, 0, "nothing compiled: binaryen was not needed");
    const interp = await call(s, "POST", "/v1/runs", { image: guest("hello16.bin"), engine: "interp" });
    assertEquals(guestView(short.body), guestView(interp.body));

    // mov ecx,60000000; l: add eax,ecx; dec ecx; jnz l; hlt   (180,000,002 instructions)
    const n = 60_000_000;
    const loop = [0xb9, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4];
    const long = await call(s, "POST", "/v1/runs", { image: b64(loop), mode: "protected", engine: "auto", budget: 400_000_000, timeoutMs: 30_000 });
    assertEquals(long.status, 200, long.text);
    assertEquals(long.body.exit.reason, "hlt");
    assertEquals(long.body.instructions, 3 * n + 2);
    assertEquals(long.body.regs.eax, Number((BigInt(n) * BigInt(n + 1) / 2n) % 2n ** 32n));
    assertEquals(long.body.exits, { hlt: 1 }, "the slices' ends are not exits");
    assertEquals(long.body.engine, "auto");
    assert(long.body.jit.regions > 0 && long.body.jit.compiledInstructions > 0, JSON.stringify(long.body.jit));
  } finally {
    await s.close();
  }
});
