/**
 * The fetch-based client example (scripts/client.ts) against a server on loopback.
 */
import { test } from "node:test";
import { assertEquals, assertMatch } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { listen } from "./serve.ts";
import { ProblemError, VmxlabClient, walkthrough } from "../scripts/client.ts";

test("The client example's walkthrough runs against a live server", async () => {
  const service = await createService({ workers: 1 });
  const server = await listen(service, { host: "127.0.0.1", port: 0 });
  try {
    const lines: string[] = [];
    await walkthrough(new VmxlabClient(server.url), (l) => lines.push(l));
    assertMatch(lines[0], /^one-shot: console "4\\n", exit hlt, 7 instructions/);
    assertMatch(lines[1], /422 Not supported: .*\[mode\]/);
    assertMatch(lines[2], /console "2\\n", exit hlt/);
    assertEquals(lines.at(-1), `  events: console "2\\n", exit, closed`);
    const client = new VmxlabClient(server.url);
    const err = await client.regs("vm-0000000000000000").catch((e) => e);
    assertEquals(err instanceof ProblemError && err.status, 404);
  } finally {
    await server.stop();
    await service.close();
  }
});
