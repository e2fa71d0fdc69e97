/**
 * The pool's watchdog: a worker stuck past every limit (here in a trusted operator hook) is
 * replaced; its run is a 503 worker-lost problem, its sessions close, and the service goes on.
 */
import { test } from "node:test";
import { assertEquals } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { b64, call, guest, GUESTS } from "./_testing.ts";

test("A stuck worker is replaced: its run is a 503 and its sessions close", async () => {
  const service = await createService({
    workers: 1,
    scripts: [new URL("./testdata/stall_hooks.ts", import.meta.url)],
    limits: withLimits({ hookScript: { runMs: 50 } }),
    watchdogGraceMs: 200,
  });
  try {
    const vm = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) });
    assertEquals(vm.status, 201);
    // mov eax,9; vmcall; hlt (16-bit: mov ax,9)
    const r = await call(service, "POST", "/v1/runs", { image: b64([0xb8, 0x09, 0x00, 0x0f, 0x01, 0xc1, 0xf4]), hooks: ["stall"], timeoutMs: 100 });
    assertEquals(r.status, 503, r.text);
    assertEquals(r.body.type, "/docs#problem-worker-lost");
    assertEquals((await call(service, "GET", `/v1/vms/${vm.body.id}`)).status, 404);
    const ok = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
    assertEquals(ok.body.console, "4\n");
  } finally {
    await service.close();
  }
});
