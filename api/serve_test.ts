/**
 * The server over loopback, with the runtime's own HTTP server (Deno.serve or Bun.serve).
 */
import { test } from "node:test";
import { assertEquals } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { listen } from "./serve.ts";
import { guest } from "./_testing.ts";

test("listen() serves the app on 127.0.0.1 and stops", async () => {
  const service = await createService({ workers: 1 });
  const server = await listen(service, { host: "127.0.0.1", port: 0 });
  try {
    const h = await fetch(`${server.url}/healthz`);
    assertEquals((await h.json()).status, "ok");
    const r = await fetch(`${server.url}/v1/runs`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } }),
    });
    assertEquals((await r.json()).console, "4\n");
    const bad = await fetch(`${server.url}/v1/runs`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    assertEquals(bad.status, 400);
    assertEquals(bad.headers.get("content-type"), "application/problem+json");
    await bad.body?.cancel();
  } finally {
    await server.stop();
    await service.close();
  }
});
