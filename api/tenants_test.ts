/**
 * Tenants (issue 16, item 6): with tokens, requests need `Authorization: Bearer TOKEN`; a tenant
 * can neither list, read, change, run, delete nor watch another's sessions (404, as if absent);
 * quotas on sessions, runs in flight and guest memory per tenant; the JIT's shared code cache is
 * off, so a tenant cannot tell (cachedRegions) whether another ran an image; and `npm start` binds
 * beyond loopback only with tokens.
 */
import { test } from "node:test";
import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { isLoopback, parseTokens, tenantOf } from "./tenants.ts";
import { runScript } from "../tests/run_cli.ts";
import { b64, call, guest, GUESTS } from "./_testing.ts";

const A = "token-of-tenant-a-0123456789";
const B = "token-of-tenant-b-9876543210";
const tokens = parseTokens(`# two tenants\nalice ${A}\n\nbob ${B}\n`);
const service = await createService({
  workers: 2, tokens,
  limits: withLimits({ tenantMaxSessions: 2, tenantMaxMemBytes: 64 << 20, tenantMaxConcurrentRuns: 2, maxBudget: 100_000_000_000 }),
});
const as = (token: string) => ({ authorization: `Bearer ${token}` });

test("The tokens file: pairs, comments, and every malformed line named", () => {
  assertEquals([...tokens.values()], ["alice", "bob"]);
  assertEquals(tenantOf(tokens, `Bearer ${A}`), "alice");
  assertEquals(tenantOf(tokens, `Bearer ${A}x`), null);
  assertEquals(tenantOf(tokens, undefined), null);
  for (const [text, why] of [["alice", /TENANT TOKEN/], ["a/b 0123456789abcdef", /tenant name/], ["alice short", /16 to 256/], [`a ${A}\nb ${A}`, /already given/], ["", /no tokens/]] as const) {
    let err = "";
    try {
      parseTokens(text);
    } catch (e) {
      err = (e as Error).message;
    }
    assertMatch(err, why);
  }
  assert(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("localhost") && !isLoopback("0.0.0.0") && !isLoopback("10.0.0.1"), "loopback");
});

test("Without a valid token: 401 with WWW-Authenticate; health, docs and the OpenAPI document stay public", async () => {
  for (const h of [{}, { authorization: "Bearer wrong-token-0000000000" }, { authorization: A }] as Record<string, string>[]) {
    const r = await call(service, "GET", "/v1/vms", undefined, h);
    assertEquals(r.status, 401, r.text);
    assertEquals(r.body.type, "/docs#problem-unauthorized");
    assertMatch(r.headers.get("www-authenticate") ?? "", /^Bearer/);
  }
  assertEquals((await call(service, "POST", "/v1/runs", { image: guest("hello16.bin") })).status, 401);
  for (const p of ["/healthz", "/docs", "/v1/openapi.json"]) assertEquals((await call(service, "GET", p)).status, 200, p);
});

test("Tenant A cannot list, read, change, run, watch or delete tenant B's session", async () => {
  const vm = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) }, as(B));
  assertEquals(vm.status, 201, vm.text);
  const id = vm.body.id;
  const mine = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) }, as(A));
  assertEquals((await call(service, "GET", "/v1/vms", undefined, as(A))).body.sessions.map((s: { id: string }) => s.id), [mine.body.id]);
  assertEquals((await call(service, "GET", "/v1/vms", undefined, as(B))).body.sessions.map((s: { id: string }) => s.id), [id]);
  const attempts: [string, string, unknown?][] = [
    ["GET", ""], ["POST", "/run", {}], ["GET", "/regs"], ["PUT", "/regs", { eax: 1 }], ["GET", "/memory?addr=0&len=16"],
    ["PUT", "/memory?addr=0", { data: "AQID" }], ["GET", "/disasm"], ["GET", "/events"], ["DELETE", ""],
  ];
  for (const [m, p, body] of attempts) {
    const r = await call(service, m, `/v1/vms/${id}${p}`, body, as(A));
    assertEquals(r.status, 404, `${m} ${p}: ${r.text}`);
    assertEquals(r.body.type, "/docs#problem-not-found");
  }
  // B's session is untouched: its first run adds one to AX.
  const run = await call(service, "POST", `/v1/vms/${id}/run`, {}, as(B));
  assertEquals(run.body.regs.eax, 1, run.text);
  assertEquals((await call(service, "DELETE", `/v1/vms/${id}`, undefined, as(B))).status, 204);
  assertEquals((await call(service, "DELETE", `/v1/vms/${mine.body.id}`, undefined, as(A))).status, 204);
});

test("Quotas per tenant: sessions and guest memory, given back on delete; one tenant's use leaves the other's", async () => {
  const made = [];
  for (let i = 0; i < 2; i++) made.push(await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt), mem: "4M" }, as(A)));
  assertEquals(made.map((r) => r.status), [201, 201]);
  const third = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt), mem: "4M" }, as(A));
  assertEquals(third.status, 429);
  assertEquals([third.body.type, third.body.quota], ["/docs#problem-quota-exceeded", "sessions"]);
  assert(third.headers.get("retry-after") !== null);
  // Bob is not held back by Alice's sessions.
  const bob = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt) }, as(B));
  assertEquals(bob.status, 201);
  await call(service, "DELETE", `/v1/vms/${bob.body.id}`, undefined, as(B));
  for (const r of made) assertEquals((await call(service, "DELETE", `/v1/vms/${r.body.id}`, undefined, as(A))).status, 204);
  // Memory: 64 MiB per tenant, so a 128 MiB run is refused, and a 48 MiB session leaves room for only 16 more.
  const big = await call(service, "POST", "/v1/runs", { image: b64(GUESTS.incHalt), mem: "128M" }, as(A));
  assertEquals([big.status, big.body.quota], [429, "memory"]);
  const s48 = await call(service, "POST", "/v1/vms", { image: b64(GUESTS.incHalt), mem: "48M" }, as(A));
  assertEquals(s48.status, 201);
  assertEquals((await call(service, "POST", "/v1/runs", { image: b64(GUESTS.incHalt), mem: "32M" }, as(A))).status, 429);
  assertEquals((await call(service, "POST", "/v1/runs", { image: b64(GUESTS.incHalt), mem: "16M" }, as(A))).status, 200);
  await call(service, "DELETE", `/v1/vms/${s48.body.id}`, undefined, as(A));
  assertEquals((await call(service, "POST", "/v1/runs", { image: b64(GUESTS.incHalt), mem: "32M" }, as(A))).status, 200);
});

test("Runs in flight per tenant", async () => {
  const spin = (t: string) => call(service, "POST", "/v1/runs", { image: b64(GUESTS.spin), budget: 100_000_000_000, timeoutMs: 400 }, as(t));
  const two = [spin(A), spin(A)];
  await new Promise((r) => setTimeout(r, 30));
  const third = await call(service, "POST", "/v1/runs", { image: guest("hello16.bin") }, as(A));
  assertEquals([third.status, third.body.quota], [429, "runs"]);
  assertEquals((await Promise.all(two)).map((r) => r.body.exit.reason), ["timeout", "timeout"]);
});

test("With tenants the JIT's shared code cache is off: a second tenant's run of the same image compiles it afresh", async () => {
  const body = { image: guest("pm_crc32.bin"), mode: "protected", engine: "jit" };
  const first = await call(service, "POST", "/v1/runs", body, as(A));
  assertEquals(first.status, 200, first.text);
  assert(first.body.jit.regions > 0, "compiled");
  for (const t of [B, A]) {
    const again = await call(service, "POST", "/v1/runs", body, as(t));
    assertEquals(again.body.jit.cachedRegions, 0, "no region from the cache");
  }
});

test("npm start refuses an address beyond loopback without --tokens", () => {
  const r = runScript("scripts/serve.ts", ["--host", "0.0.0.0", "--port", "0", "--workers", "1"]);
  assertEquals(r.status, 2);
  assertMatch(r.stderr, /needs --tokens/);
});

test("The tenants service closes", async () => {
  await service.close();
});
