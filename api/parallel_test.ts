/**
 * Many runs at once: each gets its own correct result and its own machine; a spinning guest does
 * not stop the others, nor health checks.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { b64, call, guest, GUESTS } from "./_testing.ts";

// A budget no spinning guest reaches before its time limit, under any engine (the JIT spins `jmp $`
// at ~1.5 G instructions/s, past the default 500 M maximum in a third of a second).
const service = await createService({ workers: 2, limits: withLimits({ maxBudget: 100_000_000_000 }) });

/**
 * mov ax,[0x600]; mov [0x502],ax; mov [0x600],bx; mov [0x500],bx; hlt — reports what it found at
 * 0x600 (zero in a fresh machine) and leaves its own marker there.
 */
const MARKER = [0xa1, 0x00, 0x06, 0xa3, 0x02, 0x05, 0x89, 0x1e, 0x00, 0x06, 0x89, 0x1e, 0x00, 0x05, 0xf4];

test("Fifty parallel runs each get their own correct result, sharing no state", async () => {
  const hello = guest("hello16.bin");
  const marker = b64(MARKER);
  const runs = Array.from({ length: 50 }, (_, i) =>
    i % 2 === 0
      ? call(service, "POST", "/v1/runs", { image: hello, regs: { eax: i % 8, ebx: 1 } })
      : call(service, "POST", "/v1/runs", { image: marker, regs: { ebx: 0x1000 + i }, dumps: [{ addr: 0x500, len: 4 }] })
  );
  const results = await Promise.all(runs);
  results.forEach((r, i) => {
    assertEquals(r.status, 200, r.text);
    assertEquals(r.body.exit, { reason: "hlt" });
    if (i % 2 === 0) {
      assertEquals(r.body.console, `${(i % 8) + 1}\n`, `run ${i}`);
    } else {
      const v = 0x1000 + i;
      // Its own marker at 0x500, and a zero found at 0x600: no other run's marker leaked in.
      assertEquals(r.body.memory, { "0x500": [v & 0xff, v >> 8, 0, 0].map((b) => b.toString(16).padStart(2, "0")).join("") }, `run ${i}`);
      assertEquals(r.body.regs.ebx, v);
    }
  });
});

test("A spinning guest runs to its time limit while other runs and health checks are served", async () => {
  const spin = call(service, "POST", "/v1/runs", { image: b64(GUESTS.spin), budget: service.limits.maxBudget, timeoutMs: 1500 });
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) {
    const h = await call(service, "GET", "/healthz");
    assertEquals(h.status, 200);
    const r = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
    assertEquals(r.body.console, "4\n");
  }
  assert(performance.now() - t0 < 1400, `ten runs took ${Math.round(performance.now() - t0)} ms while a guest spun`);
  const s = await spin;
  assertEquals(s.body.exit, { reason: "timeout" });
  assert(s.body.wallMs >= 1400);
});

test("A spinning guest and a spinning hook at once leave the service answering", async () => {
  const spin = call(service, "POST", "/v1/runs", { image: b64(GUESTS.spin), budget: service.limits.maxBudget, timeoutMs: 600 });
  const hook = call(service, "POST", "/v1/runs", { image: b64(GUESTS.echoPort60), script: "vm.onIo({ port: 0x60 }, () => { for (;;) {} })" });
  const t0 = performance.now();
  const h = await call(service, "GET", "/healthz");
  assertEquals(h.status, 200);
  assert(performance.now() - t0 < 200);
  assertEquals((await spin).body.exit.reason, "timeout");
  assertEquals((await hook).body.cause, "timeout");
  const r = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
  assertEquals(r.body.console, "4\n");
});

test("The parallel test service closes", async () => {
  await service.close();
});
