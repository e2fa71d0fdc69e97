/**
 * Caps on what grows with a request (issue 16, items 7 and 9): the answer's size (`truncated`),
 * the `ports` map, event streams per session; and the observability: `/metrics` in the Prometheus
 * text format and a one-line access log.
 */
import { test } from "node:test";
import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { b64, call, guest, GUESTS } from "./_testing.ts";

const log: string[] = [];
const service = await createService({
  workers: 1, accessLog: (l) => log.push(l),
  limits: withLimits({ maxAnswerBytes: 64 * 1024, maxReportPorts: 16, maxStreamsPerSession: 2 }),
});

/** mov cx,40; mov dx,0x1000; l: out dx,al; inc dx; loop l; hlt — writes 40 different ports. */
const MANY_PORTS = [0xb9, 40, 0, 0xba, 0x00, 0x10, 0xee, 0x42, 0xe2, 0xfc, 0xf4];

test("A report lists at most maxReportPorts ports and says it was cut", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: b64(MANY_PORTS) });
  assertEquals(r.status, 200, r.text);
  assertEquals(Object.keys(r.body.ports).length, 16);
  assertEquals(r.body.truncated, true);
  const small = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin"), regs: { eax: 2, ebx: 2 } });
  assertEquals(small.body.truncated, undefined);
});

test("An answer is cut to maxAnswerBytes: trace events, then logs, then console", async () => {
  // Prints forever: the console cap (1 MiB) stops it, far past the 64 KiB answer cap; the path trace is large too.
  const r = await call(service, "POST", "/v1/runs", { image: b64(GUESTS.printForever), trace: "path", budget: 5_000_000 });
  assertEquals(r.status, 200, r.text);
  assert(r.text.length <= 64 * 1024 + 4096, `${r.text.length} bytes`);
  assertEquals(r.body.truncated, true);
  assertEquals(r.body.consoleTruncated, true);
  assert(r.body.trace.dropped > 0, "trace events were dropped");
});

test("Event streams per session are capped (429)", async () => {
  const vm = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) });
  const open = [await service.app.request(`/v1/vms/${vm.body.id}/events`), await service.app.request(`/v1/vms/${vm.body.id}/events`)];
  for (const o of open) assertEquals(o.status, 200);
  const third = await call(service, "GET", `/v1/vms/${vm.body.id}/events`);
  assertEquals(third.status, 429);
  assertEquals(third.body.type, "/docs#problem-too-many-streams");
  assertEquals((await call(service, "DELETE", `/v1/vms/${vm.body.id}`)).status, 204);
  for (const o of open) await o.body?.cancel();
});

test("GET /metrics: the Prometheus text format, with runs by exit reason and by problem, histograms and gauges", async () => {
  await call(service, "POST", "/v1/runs", { image: b64(GUESTS.echoPort60), script: "vm.onIo({ port: 0x60 }, () => { throw 1; })" });
  const r = await service.app.request("/metrics");
  assertEquals(r.status, 200);
  assertMatch(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  assertMatch(text, /^vmxlab_run_exits_total\{reason="hlt"\} [1-9]\d*$/m);
  assertMatch(text, /^vmxlab_run_failures_total\{problem="hook-failed"\} 1$/m);
  assertMatch(text, /^vmxlab_run_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m);
  assertMatch(text, /^vmxlab_run_queue_seconds_count [1-9]\d*$/m);
  assertMatch(text, /^vmxlab_http_requests_total\{route="\/v1\/runs",status="200"\} [1-9]\d*$/m);
  assertMatch(text, /^vmxlab_http_requests_total\{route="\/v1\/vms\/:id\/events",status="429"\} 1$/m);
  assertMatch(text, /^vmxlab_workers_killed_total 0$/m);
  assertMatch(text, /^vmxlab_sessions 0$/m);
  // Every sample line is NAME{labels} VALUE or NAME VALUE; every family has HELP and TYPE.
  for (const line of text.trim().split("\n")) {
    assert(/^# (HELP|TYPE) vmxlab_\w+ .+$/.test(line) || /^vmxlab_\w+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$/.test(line), line);
  }
});

test("The access log has one line per answer: time, tenant, method, path, status, ms, bytes", async () => {
  log.length = 0;
  await call(service, "GET", "/healthz");
  await call(service, "GET", "/v1/vms/nope");
  assertEquals(log.length, 2);
  assertMatch(log[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z local GET \/healthz 200 \d+\.\dms (\d+|-)$/);
  assertMatch(log[1], / GET \/v1\/vms\/nope 400 /);
});

test("The caps service closes", async () => {
  await service.close();
});

test("/v1/info names hook scripts by file name, not by their path on the server", async () => {
  const s = await createService({ workers: 1 });
  try {
    const r = await call(s, "GET", "/v1/info");
    for (const h of r.body.hookSets) assert(!h.script.includes("/"), h.script);
    assertEquals(r.body.hookSets[0].script, "hypercalls.ts");
  } finally {
    await s.close();
  }
});

test("console.log at a script's top level reaches the first run's logs", async () => {
  const s = await createService({ workers: 1 });
  try {
    const r = await call(s, "POST", "/v1/runs", { image: b64(GUESTS.echoPort60), script: `console.log("top", 1); vm.onIo({ port: 0x60 }, () => { console.log("hook"); return 0x41; });` });
    assertEquals(r.body.logs, ["top 1", "hook"]);
    const vm = await call(s, "POST", "/v1/vms", { image: b64(GUESTS.incHalt), script: `console.log("set up");` });
    assertEquals((await call(s, "POST", `/v1/vms/${vm.body.id}/run`)).body.logs, ["set up"]);
    assertEquals((await call(s, "POST", `/v1/vms/${vm.body.id}/run`)).body.logs, []);
  } finally {
    await s.close();
  }
});
