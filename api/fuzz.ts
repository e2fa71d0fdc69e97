/**
 * The service's fuzzers (issue 16): hostile guests, hostile request scripts, and requests generated
 * from the OpenAPI document. Each sends requests through `app.request` (the worker processes are
 * real) and checks every answer: no 500, no answer later than its time limit plus the grace (and a
 * slack for a loaded host), every answer matches the schema the document gives for its status,
 * a deleted session is a 404. `npm run fuzz:service` runs them at full size; `fuzz_service_test.ts`
 * runs a sample in CI.
 */
import { readFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import type { z } from "zod";
import type { Service } from "./app.ts";
import { ANSWER_GRACE_MS } from "./config.ts";

/** A small deterministic generator (mulberry32), so a failure is reproduced from its seed. */
export class Rng {
  constructor(private s: number) {}
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** What a fuzzer found. */
export interface FuzzStats {
  requests: number;
  /** Answers by status, and 4xx/5xx problems by status and type ("503 busy"). */
  byStatus: Record<string, number>;
  /** Runs that overran and were answered by the service's deadline (503 deadline-exceeded): in time, but the run did not finish. */
  overran: number;
  /** Some of the requests that overran. */
  overranSamples: string[];
  /** Answers with a 500 (or another 5xx that is not a documented 503), with the request. */
  serverErrors: { status: number; detail: string; request: string }[];
  /** Answers past the time limit plus the grace plus the slack. */
  late: { ms: number; limitMs: number; request: string }[];
  /** Answers that do not match their documented schema. */
  mismatches: { status: number; route: string; issue: string }[];
  /** Requests on a deleted session that did not answer 404. */
  afterDelete: { route: string; status: number }[];
  /** The slowest answer relative to its limit (ms past the limit). */
  worstOverMs: number;
}

export function emptyStats(): FuzzStats {
  return { requests: 0, byStatus: {}, overran: 0, overranSamples: [], serverErrors: [], late: [], mismatches: [], afterDelete: [], worstOverMs: -Infinity };
}

/** Merge `b` into `a`. */
export function mergeStats(a: FuzzStats, b: FuzzStats): FuzzStats {
  a.requests += b.requests;
  a.overran += b.overran;
  a.overranSamples.push(...b.overranSamples.slice(0, Math.max(0, KEEP - a.overranSamples.length)));
  for (const [k, v] of Object.entries(b.byStatus)) a.byStatus[k] = (a.byStatus[k] ?? 0) + v;
  a.serverErrors.push(...b.serverErrors);
  a.late.push(...b.late);
  a.mismatches.push(...b.mismatches);
  a.afterDelete.push(...b.afterDelete);
  a.worstOverMs = Math.max(a.worstOverMs, b.worstOverMs);
  return a;
}

const KEEP = 20;
const short = (s: string) => (s.length > 400 ? s.slice(0, 400) + "…" : s);

interface Answer {
  status: number;
  ms: number;
  body: unknown;
  text: string;
  contentType: string;
}

async function send(service: Service, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  const t0 = performance.now();
  const res = await service.app.request(path, init);
  const ct = res.headers.get("content-type") ?? "";
  // An event stream never ends by itself: its headers are the answer.
  const text = ct.startsWith("text/event-stream") ? (await res.body?.cancel(), "") : await res.text();
  const ms = performance.now() - t0;
  let parsed: unknown;
  if (/json/.test(ct) && text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  return { status: res.status, ms, body: parsed, text, contentType: ct };
}

/**
 * Send a run as a client should: a 503 busy (every worker taken, by a run that overran or one
 * being replaced) is tried again after a pause, up to 5 times, so the fuzzer tests guests rather
 * than the queue. Each answer counts.
 */
async function sendRun(service: Service, st: FuzzStats, body: Record<string, unknown>, limitMs: number, slackMs: number, request: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const a = await send(service, "POST", "/v1/runs", body);
    record(st, a, limitMs, slackMs, request);
    if (!(a.status === 503 && String((a.body as { type?: string })?.type).endsWith("#problem-busy"))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Record an answer: status, 5xx, lateness against `limitMs` (none: Infinity). */
function record(st: FuzzStats, a: Answer, limitMs: number, slackMs: number, request: string): void {
  st.requests++;
  const type = (a.body as { type?: string } | undefined)?.type ?? "";
  const key = a.status >= 400 && type ? `${a.status} ${type.replace(/^.*#problem-/, "")}` : String(a.status);
  st.byStatus[key] = (st.byStatus[key] ?? 0) + 1;
  // A 503 the service documents (busy, deadline-exceeded, engine-loading, …) is an answer in time, not a crash.
  if (a.status >= 500 && !(a.status === 503 && /#problem-(busy|deadline-exceeded|engine-loading|worker-lost|memory-exhausted|shutting-down)$/.test(type))) {
    if (st.serverErrors.length < KEEP) st.serverErrors.push({ status: a.status, detail: short(a.text), request: short(request) });
    else st.serverErrors.push({ status: a.status, detail: "", request: "" });
  }
  if (a.status === 503 && type.endsWith("#problem-deadline-exceeded")) {
    st.overran++;
    if (st.overranSamples.length < KEEP) st.overranSamples.push(short(request));
  }
  if (limitMs !== Infinity) {
    const over = a.ms - limitMs;
    st.worstOverMs = Math.max(st.worstOverMs, over);
    if (over > ANSWER_GRACE_MS + slackMs) st.late.push({ ms: Math.round(a.ms), limitMs, request: short(request) });
  }
}

/**
 * Load binaryen and QuickJS in every worker first (a jit run and a script run with time to spare
 * on each), so the fuzzers measure the limits, not a worker's one-time loading (which holds it for
 * a second or two and turns short runs queued behind it into 503s).
 */
export async function warmUp(service: Service): Promise<void> {
  const image = Buffer.from(guestBytes("pm_hypercall.bin")).toString("base64");
  const body = { image, mode: "protected", engine: "jit", timeoutMs: 20_000, script: "vm.onHypercall(1, () => 1);" };
  await Promise.all(service.pool.pids.map(() => send(service, "POST", "/v1/runs", body)));
}

// -----------------------------------------------------------------------------------------------
// Hostile guests
// -----------------------------------------------------------------------------------------------
const REPO = new URL("..", import.meta.url).pathname;
const GUEST_FILES = ["hello16.bin", "pm_hypercall.bin", "pm_crc32.bin", "pm_kernel.bin", "pm_serial.bin", "rm_int.bin", "rm_string_io.bin", "rm_triple.bin", "rm_ud.bin", "pm_xpage.bin"];
const guestCache = new Map<string, Uint8Array>();
function guestBytes(f: string): Uint8Array {
  let b = guestCache.get(f);
  if (!b) guestCache.set(f, b = new Uint8Array(readFileSync(`${REPO}tests/guests/${f}`)));
  return b;
}
const u32 = (x: number) => [x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, (x >>> 24) & 0xff];

/** Crafted protected-mode guests: string IO and page tables pointing anywhere, self-modifying code, exception storms. */
function craftedGuest(rng: Rng): { image: number[]; mode: string } {
  const addr = rng.pick([0x2000000, 0xfffff000, 0x10000000 + rng.int(0x1000000), rng.int(2 ** 32), 0x500, 0xffffffff]);
  switch (rng.int(8)) {
    case 0: return { image: [0xbf, ...u32(addr), 0x66, 0xba, 0x60, 0x00, 0x6c, 0xf4], mode: "protected" }; // mov edi,X; mov dx,0x60; insb; hlt
    case 1: return { image: [0xbe, ...u32(addr), 0x66, 0xba, 0xe9, 0x00, 0x6e, 0xf4], mode: "protected" }; // mov esi,X; mov dx,0xe9; outsb; hlt
    case 2: return { image: [0xbf, ...u32(addr), 0xb9, ...u32(rng.int(5000)), 0x66, 0xba, 0x60, 0x00, 0xf3, 0x6c, 0xf4], mode: "protected" }; // rep insb
    case 3: return { image: [0xb8, ...u32(addr & ~0xfff), 0x0f, 0x22, 0xd8, 0xb8, 0x11, 0, 0, 0x80, 0x0f, 0x22, 0xc0, 0xeb, 0xfe], mode: "protected" }; // mov cr3; paging on
    case 4: return { image: [0xc6, 0x05, ...u32(0x100006), 0xf4, 0x40, 0xeb, 0xf5, 0x90], mode: "protected" }; // rewrites its own jump into hlt
    case 5: return { image: [0x0f, 0x0b], mode: rng.pick(["real", "protected", "paged"]) }; // ud2 (no handler: an exception exit)
    case 6: return { image: [0x31, 0xc9, 0xf7, 0xf1, 0xeb, 0xfa], mode: rng.pick(["real", "protected"]) }; // div by zero, again
    default: return { image: [0x8b, 0x05, ...u32(addr), 0xa3, ...u32(addr ^ 0x1000), 0xf4], mode: rng.pick(["protected", "paged"]) }; // load and store anywhere
  }
}

/**
 * @param known when false, leave out the crafted string IO and CR3 guests of issue 16 item 5 (INSB/OUTSB
 *   and page tables outside RAM raise host exceptions in the processor; its fix is the processor's)
 */
/** The crafted guests issue 16 item 5 is about: string IO or CR3 with an address operand. */
function isItem5(image: number[]): boolean {
  return (image[0] === 0xbf || image[0] === 0xbe) && image.length <= 17 || (image[0] === 0xb8 && image[5] === 0x0f && image[6] === 0x22);
}

export async function fuzzGuests(service: Service, n: number, rng: Rng, slackMs: number, known = true): Promise<FuzzStats> {
  const st = emptyStats();
  const engines = ["interp", "jit", "auto"];
  for (let i = 0; i < n; i++) {
    let image: number[] | Uint8Array, mode: string;
    const kind = rng.int(3);
    if (kind === 0) {
      image = Array.from({ length: 1 + rng.int(64) }, () => rng.int(256));
      mode = rng.pick(["real", "protected", "paged"]);
    } else if (kind === 1) {
      const f = rng.pick(GUEST_FILES);
      const b = Uint8Array.from(guestBytes(f));
      for (let k = 1 + rng.int(8); k > 0; k--) b[rng.int(b.length)] = rng.int(256);
      image = b;
      mode = f.startsWith("pm_") ? rng.pick(["protected", "paged"]) : "real";
    } else {
      ({ image, mode } = craftedGuest(rng));
      if (!known && isItem5(image)) continue;
    }
    const timeoutMs = rng.pick([1, 5, 20, 50, 200]);
    const body = {
      image: Buffer.from(image instanceof Uint8Array ? image : Uint8Array.from(image)).toString("base64"), format: "raw", mode,
      engine: rng.pick(engines), budget: 1 + rng.int(2_000_000), timeoutMs, mem: rng.pick(["64K", "1M", "16M", 4096 * (1 + rng.int(64))]),
      ...(rng.chance(0.2) ? { trace: rng.pick(["exits", "path"]) } : {}),
      ...(rng.chance(0.2) ? { dumps: [{ addr: rng.int(0x20000), len: 1 + rng.int(4096) }] } : {}),
    };
    await sendRun(service, st, body, timeoutMs, slackMs, JSON.stringify(body));
  }
  return st;
}

// -----------------------------------------------------------------------------------------------
// Hostile scripts
// -----------------------------------------------------------------------------------------------
const SPIN = "for (;;) {}";
function hostileValue(rng: Rng): string {
  const n = rng.pick([10, 1000, 200000]);
  return rng.pick([
    `({ get x() { ${SPIN} } })`, `({ toJSON() { ${SPIN} } })`, `new Proxy({}, { get() { ${SPIN} }, ownKeys() { ${SPIN} }, getOwnPropertyDescriptor() { ${SPIN} }, getPrototypeOf() { ${SPIN} } })`,
    `(() => { const e = new Error("m"); Object.defineProperty(e, "message", { get() { ${SPIN} } }); return e; })()`,
    `(() => { let o = 1; for (let i = 0; i < ${n}; i++) o = [o]; return o; })()`,
    `"x".repeat(${rng.pick([10, 1 << 16, 1 << 22])})`, `new Array(${rng.pick([10, 1e5, 1e6])}).fill(1.5)`, `Symbol("s")`, `NaN`, `2 ** 80`, `-1`,
    `{ [Symbol.toPrimitive]() { ${SPIN} } }`, `(() => { const a = []; a.push(a); return a; })()`, `new Error("x".repeat(1 << 20))`,
  ]);
}
function hostileBody(rng: Rng): string {
  return rng.pick([
    `throw ${hostileValue(rng)};`, `return ${hostileValue(rng)};`, `console.log(${hostileValue(rng)}); return 1;`,
    `let n = 0; for (;;) n += vm.read(0, 65536).length;`, `for (;;) { try { vm.read(0, 65536); } catch {} }`,
    `for (;;) vm.write(0x500, new Array(65536).fill(1));`, `for (;;) vm.regs();`, `for (;;) console.log("x".repeat(4096));`,
    `function f() { return f() + 1; } return f();`, `const a = []; for (;;) a.push(new Array(1000));`, SPIN,
    `JSON.stringify(${hostileValue(rng)}); return 1;`, `vm.setRegs(${hostileValue(rng)}); return 1;`, `vm.stop(${hostileValue(rng)});`,
    `return vm.read(${rng.pick(["-1", "2 ** 40", "0", "1e9"])}, ${rng.pick(["-1", "65537", "1", "NaN"])});`,
  ]);
}

export async function fuzzScripts(service: Service, n: number, rng: Rng, slackMs: number): Promise<FuzzStats> {
  const st = emptyStats();
  const hypercall = Buffer.from(guestBytes("pm_hypercall.bin")).toString("base64");
  for (let i = 0; i < n; i++) {
    const body = hostileBody(rng);
    const script = rng.chance(0.3)
      ? `(() => { ${body} })();`
      : `vm.onHypercall(1, () => { ${body} });${rng.chance(0.3) ? ` vm.onExit("hlt", () => { ${hostileBody(rng)} });` : ""}`;
    const timeoutMs = rng.pick([50, 300, 1000]);
    const req = { image: hypercall, mode: "protected", script, timeoutMs, engine: rng.pick(["interp", "auto"]) };
    await sendRun(service, st, req, timeoutMs, slackMs, JSON.stringify({ script, timeoutMs }));
  }
  return st;
}

// -----------------------------------------------------------------------------------------------
// Requests from the OpenAPI document
// -----------------------------------------------------------------------------------------------
type Schema = Record<string, unknown>;

/** A value for a JSON schema (resolving $refs), sometimes deliberately wrong. */
function gen(s: Schema | undefined, doc: Schema, rng: Rng, depth = 0): unknown {
  if (!s || depth > 6) return rng.pick([null, 0, "x", [], {}]);
  if (typeof s.$ref === "string") {
    const name = s.$ref.replace("#/components/schemas/", "");
    return gen(((doc.components as Schema).schemas as Schema)[name] as Schema, doc, rng, depth + 1);
  }
  // One value in eight is of a random wrong kind.
  if (rng.chance(0.02)) return rng.pick([null, -1, 1.5, "zz", true, [], {}, "x".repeat(1000), 2 ** 53, -(2 ** 40)]);
  const alts = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  if (alts) return gen(rng.pick(alts), doc, rng, depth + 1);
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum)) return rng.pick(s.enum as unknown[]);
  const type = Array.isArray(s.type) ? rng.pick(s.type as string[]) : s.type as string | undefined;
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      const props = (s.properties ?? {}) as Record<string, Schema>;
      const required = new Set((s.required ?? []) as string[]);
      for (const [k, v] of Object.entries(props)) {
        if (required.has(k) ? !rng.chance(0.03) : rng.chance(0.3)) out[k] = gen(v, doc, rng, depth + 1);
      }
      if (rng.chance(0.03)) out["unknownField"] = 1;
      if (s.additionalProperties && typeof s.additionalProperties === "object" && rng.chance(0.5)) {
        out[rng.pick(["eax", "rip", "k", "0x10"])] = gen(s.additionalProperties as Schema, doc, rng, depth + 1);
      }
      return out;
    }
    case "array": {
      const max = Math.min(Number(s.maxItems ?? 4), 4);
      const len = Math.max(Number(s.minItems ?? 0), rng.int(max + 1));
      return Array.from({ length: len }, () => gen(s.items as Schema, doc, rng, depth + 1));
    }
    case "integer": case "number": {
      const lo = Number(s.minimum ?? 0), hi = Number(s.maximum ?? 2 ** 32);
      const v = rng.pick([lo, hi, lo + rng.int(Math.min(hi - lo + 1, 2 ** 31)), hi + 1, lo - 1, 4096, 0x1000]);
      return type === "integer" ? Math.trunc(v) : v;
    }
    case "boolean": return rng.chance(0.5);
    case "string": {
      if (s.format === "base64" || s.contentEncoding === "base64") {
        return Buffer.from(rng.chance(0.7) ? guestBytes(rng.pick(["hello16.bin", "pm_hypercall.bin"])) : Uint8Array.from({ length: rng.int(32) }, () => rng.int(256))).toString("base64");
      }
      if (typeof s.pattern === "string" && /0x/.test(s.pattern)) return rng.pick(["0x1000", "0", "4096", "0xffffffff", "zz"]);
      if (typeof s.pattern === "string" && /KMG/i.test(s.pattern)) return rng.pick(["64K", "1M", "16M", "3K", "9G"]);
      return rng.pick(["", "a", "vm.onHypercall(1, () => 1)", "x".repeat(Math.min(Number(s.maxLength ?? 100), 100))]);
    }
    default: return rng.pick([null, 1, "x", {}]);
  }
}

/** A zod issue, short. */
function issueOf(e: z.ZodError): string {
  const i = e.issues[0];
  return `${i.path.join(".")}: ${i.message}`;
}

export async function fuzzApi(service: Service, n: number, rng: Rng, slackMs: number): Promise<FuzzStats> {
  const st = emptyStats();
  const doc = service.openapi as Schema;
  const live: string[] = [];
  const deleted: string[] = [];
  const routes = service.routes;
  for (let i = 0; i < n; i++) {
    const r = rng.int(5) === 0 ? routes.find((x) => x.operationId === "createVm")! : rng.pick(routes);
    let path = r.path;
    let id: string | null = null;
    if (path.includes(":id")) {
      const which = rng.int(10);
      id = which < 6 && live.length ? rng.pick(live) : which < 8 && deleted.length ? rng.pick(deleted) : rng.pick(["vm-0123456789abcdef", "nope", "vm-" + "f".repeat(16)]);
      path = path.replace(":id", encodeURIComponent(id));
    }
    const op = ((doc.paths as Schema)[r.path.replace(/:([a-z]+)/g, "{$1}")] as Schema)[r.method] as Schema;
    const query: string[] = [];
    for (const p of (op.parameters ?? []) as Schema[]) {
      if (p.in !== "query" || (!p.required && rng.chance(0.3))) continue;
      const v = gen(p.schema as Schema, doc, rng);
      query.push(`${p.name}=${encodeURIComponent(typeof v === "object" ? JSON.stringify(v) : String(v))}`);
    }
    const reqBody = op.requestBody as Schema | undefined;
    let body: unknown;
    if (reqBody) {
      body = gen(((reqBody.content as Schema)["application/json"] as Schema).schema as Schema, doc, rng);
      if (body && typeof body === "object" && !Array.isArray(body) && r.operationId !== "writeMemory" && r.operationId !== "setRegs") {
        const b = body as Record<string, unknown>;
        // Keep runs short, so the fuzzer is about the API, not guests.
        if ("timeoutMs" in b || r.operationId === "run" || r.operationId === "runVm") b.timeoutMs ??= 200;
        if (typeof b.timeoutMs === "number" && b.timeoutMs > 1000) b.timeoutMs = 1000;
        if (typeof b.budget === "number" && b.budget > 5_000_000) b.budget = 5_000_000;
      }
    }
    const url = query.length ? `${path}?${query.join("&")}` : path;
    const limitMs = body && typeof (body as { timeoutMs?: unknown }).timeoutMs === "number" ? (body as { timeoutMs: number }).timeoutMs : 5000;
    const a = await send(service, r.method.toUpperCase(), url, body);
    record(st, a, limitMs, slackMs, `${r.method} ${url} ${JSON.stringify(body) ?? ""}`);
    // The answer matches its documented schema.
    const docd = r.responses[a.status];
    if (docd?.schema && /json/.test(a.contentType)) {
      const p = docd.schema.safeParse(a.body);
      if (!p.success && st.mismatches.length < KEEP) st.mismatches.push({ status: a.status, route: `${r.method} ${r.path}`, issue: issueOf(p.error) });
    } else if (!docd || a.status >= 400) {
      const p = service.schemas.Problem.safeParse(a.body);
      if ((!p.success || !/^application\/problem\+json/.test(a.contentType)) && st.mismatches.length < KEEP) {
        st.mismatches.push({ status: a.status, route: `${r.method} ${r.path}`, issue: p.success ? `content-type ${a.contentType}` : issueOf(p.error) });
      }
    }
    if (id !== null && deleted.includes(id) && a.status !== 404 && a.status !== 400 && st.afterDelete.length < KEEP) st.afterDelete.push({ route: `${r.method} ${r.path}`, status: a.status });
    if (r.operationId === "createVm" && a.status === 201) live.push((a.body as { id: string }).id);
    if (r.operationId === "deleteVm" && a.status === 204 && id !== null) {
      live.splice(live.indexOf(id), 1);
      deleted.push(id);
    }
    // Keep the session count down: delete one now and then.
    if (live.length > 6) {
      const gone = live.shift()!;
      await send(service, "DELETE", `/v1/vms/${gone}`);
      deleted.push(gone);
    }
  }
  for (const id of live) await send(service, "DELETE", `/v1/vms/${id}`);
  return st;
}
