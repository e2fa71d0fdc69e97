/**
 * The OpenAPI document against the app: every route is documented and every documented route is
 * served; each response an exercise of every route gets has a documented status and matches the
 * documented schema; references resolve; the docs page is self-contained.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { openApiPath, type RouteDoc } from "./openapi.ts";
import { b64, call, guest, GUESTS } from "./_testing.ts";

const service = await createService({ workers: 2 });
const doc = service.openapi as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>; components: { schemas: Record<string, unknown> } };

test("Every route the app serves is in the OpenAPI document, and nothing else is", () => {
  const served = new Set(service.app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`));
  const documented = new Set(Object.entries(doc.paths).flatMap(([p, ms]) => Object.keys(ms).map((m) => `${m} ${p}`)));
  assertEquals([...served].sort(), [...documented].sort());
  assert(served.size >= 15, `${served.size} routes`);
});

test("Every $ref in the document resolves to a component", () => {
  const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
  for (const r of refs) {
    const name = r.slice(8, -1).replace("#/components/schemas/", "");
    assert(name in doc.components.schemas, `dangling ${r}`);
  }
  assert(refs.length > 10);
});

test("Every error response is documented as application/problem+json", () => {
  for (const [p, ms] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(ms)) {
      for (const [status, r] of Object.entries(op.responses)) {
        if (Number(status) >= 400) assertEquals(Object.keys(r.content ?? {}), ["application/problem+json"], `${m} ${p} ${status}`);
      }
    }
  }
});

function routeFor(method: string, path: string): RouteDoc {
  const p = path.split("?")[0];
  const r = service.routes.find((d) => d.method === method.toLowerCase() &&
    new RegExp("^" + d.path.replace(/:[a-z]+/g, "[^/]+") + "$").test(p));
  if (!r) throw new Error(`No documented route for ${method} ${p}`);
  return r;
}

const seen = new Set<string>();

/** A request whose response must have a documented status and match the documented schema. */
async function checked(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const r = await call(service, method, path, body, headers);
  const route = routeFor(method, path);
  const d = route.responses[r.status];
  assert(d, `${method} ${path} answered ${r.status}, which is not documented (${Object.keys(route.responses)}): ${r.text}`);
  if (d.schema) {
    assertEquals(r.headers.get("content-type")?.split(";")[0], d.contentType ?? "application/json", `${method} ${path}`);
    const p = d.schema.safeParse(r.body);
    assert(p.success, `${method} ${path} ${r.status} does not match its schema: ${p.error?.message}\n${r.text}`);
  } else if (d.raw) {
    assertEquals(r.headers.get("content-type")?.split(";")[0], d.raw.type);
  }
  seen.add(`${route.method} ${route.path}`);
  return r;
}

test("What each route returns matches its documented schema", async () => {
  await checked("GET", "/healthz");
  await checked("GET", "/v1/info");
  await checked("GET", "/v1/openapi.json");
  await checked("GET", "/docs");
  await checked("GET", "/metrics");
  await checked("POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 }, trace: "exits", dumps: [{ addr: 0x1000, len: 2 }] });
  await checked("POST", "/v1/runs", { image: "!" });
  await checked("POST", "/v1/runs", "{");
  await checked("POST", "/v1/runs", "x", { "content-type": "text/plain" });
  await checked("POST", "/v1/runs", { image: guest("hello16.bin"), engine: "kvm" });
  await checked("POST", "/v1/runs", { image: b64(GUESTS.echoPort60), script: "vm.onIo({ port: 0x60 }, () => { throw 1; })" });
  const created = await checked("POST", "/v1/vms", { image: b64(GUESTS.incHalt) });
  const id = created.body.id;
  await checked("POST", "/v1/vms", { image: "" });
  await checked("GET", "/v1/vms");
  await checked("GET", `/v1/vms/${id}`);
  await checked("GET", "/v1/vms/nope");
  await checked("POST", `/v1/vms/${id}/run`);
  await checked("POST", `/v1/vms/${id}/run`, { budget: -1 });
  await checked("GET", `/v1/vms/${id}/regs`);
  await checked("PUT", `/v1/vms/${id}/regs`, { eax: 7 });
  await checked("PUT", `/v1/vms/${id}/regs`, { eax: 7.5 });
  await checked("GET", `/v1/vms/${id}/memory?addr=0x1000&len=4`);
  await checked("GET", `/v1/vms/${id}/memory?addr=zz&len=4`);
  await checked("PUT", `/v1/vms/${id}/memory?addr=0x2000`, { data: "AAEC" });
  await checked("GET", `/v1/vms/${id}/disasm?addr=0x1000&count=2`);
  await checked("GET", `/v1/vms/${id}/disasm?bits=64`);
  await checked("POST", `/v1/vms/${id}/console`, { input: "hi" });
  await checked("POST", `/v1/vms/${id}/console`, { input: "" });
  const events = await service.app.request(`/v1/vms/${id}/events`);
  assertEquals(events.headers.get("content-type"), "text/event-stream");
  seen.add("get /v1/vms/:id/events");
  await checked("DELETE", `/v1/vms/${id}`);
  await events.body?.cancel();
  await checked("DELETE", `/v1/vms/${id}`);
  await checked("GET", "/v1/vms/vm-0123456789abcdef/regs");
  // Every route was exercised.
  assertEquals([...seen].sort(), service.routes.map((r) => `${r.method} ${r.path}`).sort());
});

test("The docs page lists every operation and problem type and loads nothing from elsewhere", async () => {
  const r = await call(service, "GET", "/docs");
  for (const p of Object.keys(doc.paths)) assert(r.text.includes(p.replace(/[{}]/g, (c) => c)), p);
  assert(r.text.includes('id="problem-hook-failed"'));
  assert(!/<script|<link|@import|url\(/i.test(r.text), "no external resources");
  assert(!/(src|href)="(https?:)?\/\//i.test(r.text), "no off-site links or sources");
});

test("The OpenAPI test service closes", async () => {
  await service.close();
});
