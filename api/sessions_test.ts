/**
 * Sessions: create, run again and again, registers, memory, disassembly, the events stream, delete
 * and expiry, and their error paths.
 */
import { test } from "node:test";
import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { b64, call, fields, GUESTS } from "./_testing.ts";

// maxBudget: a spinning guest reaches its time limit before its budget under any engine (the JIT spins ~1.5 G instructions/s).
const service = await createService({ workers: 2, limits: withLimits({ maxSessions: 4, maxBudget: 100_000_000_000 }) });

async function create(body: Record<string, unknown> = {}): Promise<string> {
  const r = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt), ...body });
  assertEquals(r.status, 201, r.text);
  assertEquals(r.headers.get("location"), `/v1/vms/${r.body.id}`);
  return r.body.id;
}

/** Read an SSE response until `until` returns true for an event; returns the events. */
async function readEvents(res: Response, until: (e: { event: string; data: unknown }) => boolean) {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const events: { id: string; event: string; data: unknown }[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const e: Record<string, string> = {};
      for (const line of block.split("\n")) {
        const m = /^(\w+): ?(.*)$/.exec(line);
        if (m) e[m[1]] = m[2];
      }
      if (!e.event) continue;
      const ev = { id: e.id, event: e.event, data: JSON.parse(e.data) };
      events.push(ev);
      if (until(ev)) {
        await reader.cancel();
        return events;
      }
    }
  }
  return events;
}

test("A session runs from where its last run stopped", async () => {
  const id = await create();
  let r = await call(service, "POST", `/v1/vms/${id}/run`);
  assertEquals(r.status, 200, r.text);
  assertEquals(r.body.exit, { reason: "hlt" });
  assertEquals(r.body.regs.eax, 1);
  r = await call(service, "POST", `/v1/vms/${id}/run`, { budget: 1000 });
  assertEquals(r.body.regs.eax, 2);
  const info = await call(service, "GET", `/v1/vms/${id}`);
  assertEquals(info.body.runs, 2);
  assertEquals(info.body.lastExit, { reason: "hlt" });
  assertEquals((await call(service, "DELETE", `/v1/vms/${id}`)).status, 204);
});

test("GET and PUT /v1/vms/:id/regs read and change registers", async () => {
  const id = await create();
  let r = await call(service, "GET", `/v1/vms/${id}/regs`);
  assertEquals(r.body.regs.eip, 0x1000);
  assertEquals(r.body.regs.cs, 0);
  r = await call(service, "PUT", `/v1/vms/${id}/regs`, { eax: 41 });
  assertEquals(r.body.regs.eax, 41);
  r = await call(service, "POST", `/v1/vms/${id}/run`);
  assertEquals(r.body.regs.eax, 42);
  r = await call(service, "PUT", `/v1/vms/${id}/regs`, { eax: "x", foo: 1 });
  assertEquals(r.status, 400);
  assertEquals(fields(r).sort(), ["eax", "foo"]);
  await call(service, "DELETE", `/v1/vms/${id}`);
});

test("GET and PUT /v1/vms/:id/memory read and write guest memory as JSON or raw bytes", async () => {
  const id = await create({ mem: "64K" });
  let r = await call(service, "GET", `/v1/vms/${id}/memory?addr=0x1000&len=4`);
  assertEquals(r.body, { addr: 0x1000, len: 4, data: b64(GUESTS.incHalt) });
  r = await call(service, "PUT", `/v1/vms/${id}/memory?addr=0x2000`, { data: b64([1, 2, 3]) });
  assertEquals(r.body, { addr: 0x2000, len: 3 });
  r = await call(service, "PUT", `/v1/vms/${id}/memory?addr=8195`, new Uint8Array([4, 5]), { "content-type": "application/octet-stream" });
  assertEquals(r.body, { addr: 0x2003, len: 2 });
  const raw = await service.app.request(`/v1/vms/${id}/memory?addr=0x2000&len=5`, { headers: { accept: "application/octet-stream" } });
  assertEquals([...new Uint8Array(await raw.arrayBuffer())], [1, 2, 3, 4, 5]);
  r = await call(service, "GET", `/v1/vms/${id}/memory?addr=0xffff&len=2`);
  assertEquals(r.status, 400);
  assertEquals(fields(r), ["len"]);
  r = await call(service, "GET", `/v1/vms/${id}/memory?addr=0x10000&len=1`);
  assertEquals(fields(r), ["addr"]);
  r = await call(service, "GET", `/v1/vms/${id}/memory?addr=-1&len=x`);
  assertEquals(fields(r).sort(), ["addr", "len"]);
  await call(service, "DELETE", `/v1/vms/${id}`);
});

test("GET /v1/vms/:id/disasm disassembles at CS:EIP or an address", async () => {
  const id = await create();
  let r = await call(service, "GET", `/v1/vms/${id}/disasm?count=3`);
  assertEquals(r.status, 200, r.text);
  assertEquals(r.body.bits, 16);
  assertEquals(r.body.instructions.map((i: { text: string }) => i.text), ["inc ax", "hlt", "jmp 0x1000"]);
  r = await call(service, "GET", `/v1/vms/${id}/disasm?addr=0x1000&count=1&bits=32`);
  assertEquals(r.body.instructions[0], { address: 0x1000, bytes: "40", text: "inc eax" });
  r = await call(service, "GET", `/v1/vms/${id}/disasm?count=0`);
  assertEquals(fields(r), ["count"]);
  await call(service, "DELETE", `/v1/vms/${id}`);
});

test("GET /v1/vms/:id/events streams console bytes, exits, and closed on delete", async () => {
  // Prints "hi\n" on the debug console, then halts.
  const id = await create({ image: b64([0xba, 0xe9, 0x00, 0xb0, 0x68, 0xee, 0xb0, 0x69, 0xee, 0xb0, 0x0a, 0xee, 0xf4]) });
  const res = await service.app.request(`/v1/vms/${id}/events`);
  assertEquals(res.headers.get("content-type"), "text/event-stream");
  const events = readEvents(res, (e) => e.event === "closed");
  await call(service, "POST", `/v1/vms/${id}/run`);
  await call(service, "DELETE", `/v1/vms/${id}`);
  const got = await events;
  assertEquals(got.map((e) => e.event), ["console", "exit", "closed"]);
  assertEquals(got[0].data, { text: "hi\n", bytes: 3 });
  assertEquals((got[1].data as { exit: unknown }).exit, { reason: "hlt" });
  assertEquals(got[2].data, { reason: "deleted" });
});

test("Last-Event-ID replays the events after it", async () => {
  const id = await create();
  await call(service, "POST", `/v1/vms/${id}/run`);
  await call(service, "POST", `/v1/vms/${id}/run`);
  const res = await service.app.request(`/v1/vms/${id}/events`, { headers: { "last-event-id": "1" } });
  const got = await readEvents(res, (e) => e.event === "exit");
  assertEquals(got.map((e) => [e.id, e.event]), [["2", "exit"]]);
  await call(service, "DELETE", `/v1/vms/${id}`);
});

test("A run while the session runs is a 409 problem", async () => {
  const id = await create({ image: b64(GUESTS.spin), budget: service.limits.maxBudget, timeoutMs: 300 });
  const first = call(service, "POST", `/v1/vms/${id}/run`);
  await new Promise((r) => setTimeout(r, 20));
  const second = await call(service, "POST", `/v1/vms/${id}/run`);
  assertEquals(second.status, 409);
  assertEquals((await first).body.exit.reason, "timeout");
  await call(service, "DELETE", `/v1/vms/${id}`);
});

test("An unknown session is a 404 problem and a malformed id a 400", async () => {
  for (const [m, p] of [["GET", ""], ["POST", "/run"], ["GET", "/regs"], ["PUT", "/regs"], ["GET", "/memory?addr=0&len=1"], ["PUT", "/memory?addr=0"], ["GET", "/disasm"], ["GET", "/events"], ["DELETE", ""]]) {
    const body = m === "PUT" ? (p === "/regs" ? { eax: 1 } : { data: "AA==" }) : undefined;
    const r = await call(service, m, `/v1/vms/vm-0000000000000000${p}`, body);
    assertEquals(r.status, 404, `${m} ${p}`);
    assertEquals(fields(r), ["id"]);
  }
  const r = await call(service, "GET", "/v1/vms/../etc");
  assert(r.status === 404 || r.status === 400);
  const bad = await call(service, "GET", "/v1/vms/nope/regs");
  assertEquals(bad.status, 400);
  assertEquals(fields(bad), ["id"]);
});

test("Sessions beyond the limit are a 429 problem, also when created at once", async () => {
  const burst = await Promise.all(Array.from({ length: 6 }, () => call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) })));
  assertEquals(burst.map((r) => r.status).sort(), [201, 201, 201, 201, 429, 429]);
  for (const r of burst) if (r.status === 201) await call(service, "DELETE", `/v1/vms/${r.body.id}`);
  const ids = [];
  for (let i = 0; i < 4; i++) ids.push(await create());
  const r = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) });
  assertEquals(r.status, 429);
  assertEquals(r.body.type, "/docs#problem-too-many-sessions");
  const list = await call(service, "GET", "/v1/vms");
  assertEquals(list.body.sessions.length, 4);
  for (const id of ids) await call(service, "DELETE", `/v1/vms/${id}`);
});

test("An idle session expires and its stream says so", async () => {
  const s = await createService({ workers: 1, limits: withLimits({ sessionIdleMs: 150 }) });
  try {
    const r = await call(s, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) });
    const id = r.body.id;
    const events = readEvents(await s.app.request(`/v1/vms/${id}/events`), (e) => e.event === "closed");
    const got = await events;
    assertEquals(got.at(-1)?.data, { reason: "expired" });
    const gone = await call(s, "GET", `/v1/vms/${id}`);
    assertEquals(gone.status, 404);
    assertMatch(gone.body.detail, /expired or been deleted/);
  } finally {
    await s.close();
  }
});

test("The session service closes", async () => {
  await service.close();
  assertEquals(service.sessions.size, 0);
});
