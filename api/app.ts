/**
 * The HTTP service: a Hono app whose routes turn requests into jobs for the worker pool (Firecracker's
 * API server and its `VmmAction`s). Routes validate with zod, map failures to problem documents
 * (`problem.ts`), and never touch VM state: machines live in the workers.
 *
 * @example
 * ```ts
 * import { createService } from "./app.ts";
 *
 * const service = await createService({ workers: 1 });
 * const res = await service.app.request("/healthz");
 * // res.status === 200
 * await service.close();
 * ```
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { streamSSE } from "hono/streaming";
import { HTTPException } from "hono/http-exception";
import { Buffer } from "node:buffer";
import { cpus } from "node:os";
import type { z } from "zod";
import { API_VERSION, DEFAULT_LIMITS, JIT_POLICIES, type JitPolicy, type Limits, type ServiceOptions } from "./config.ts";
import { defaultEngine as envDefaultEngine } from "../runtime/vmm/mod.ts";
import { ApiProblem, fieldProblem, fromWorkerError, fromZodError } from "./problem.ts";
import { makeSchemas, type RunRequest, type Schemas, toNumber } from "./schemas.ts";
import { buildOpenApi, type RouteDoc } from "./openapi.ts";
import { renderDocs } from "./docs.ts";
import { isBzImage } from "../runtime/vmm/mod.ts";
import { BUNDLED_SCRIPTS, loadHookScripts, scriptUrl } from "./hooks.ts";
import { WorkerJobError, WorkerPool } from "./pool.ts";
import { Session, SessionTable, type StreamEvent } from "./sessions.ts";
import { LOCAL_TENANT, tenantOf } from "./tenants.ts";
import { Metrics } from "./metrics.ts";
import { type EngineName, finishReportJson, type WorkerError, type HookSetInfo, type MachineSpec, type RegsReport, type RunReply, type RunReport, type RunSpec, type WorkerRequest } from "./protocol.ts";

export { BUNDLED_SCRIPTS };

/** The engines the service knows, and which it runs (the JIT's by the operator's `jit` policy). */
function engineTable(jit: JitPolicy): { name: string; available: boolean; note?: string }[] {
  const loads = jit === "preload"
    ? "binaryen is loaded as each worker starts"
    : "binaryen loads in each worker at its first jit run (about 1 s, once per worker)";
  const autoLoads = jit === "preload"
    ? loads
    : "a run does not wait for binaryen: it is interpreted until then, and loads binaryen in its worker (about 1 s, once per worker) if it outlasts its first million instructions with 2 s or more of its time left";
  const off = "turned off by the operator (npm start -- --jit off)";
  return [
    { name: "interp", available: true, note: "the interpreter: every instruction decoded once per block and interpreted" },
    {
      name: "jit", available: jit !== "off",
      note: jit === "off" ? off : `compiles each block (with its region) to WebAssembly with binaryen the first time it runs; ${loads}`,
    },
    {
      name: "auto", available: jit !== "off",
      note: jit === "off" ? off : `interprets cold code and compiles a block's region once the block has run 64 times; ${autoLoads}`,
    },
    { name: "kvm", available: false, note: "the hardware tier over /dev/kvm is not implemented in this version" },
  ];
}
const MODES = [
  { name: "real", available: true },
  { name: "protected", available: true },
  { name: "paged", available: true },
  { name: "long", available: false },
];

/** What the hook script sandbox offers, for `/v1/info`. */
const SCRIPT_API = [
  "vm.onIo({ port, direction?, sizes? }, (io) => value)", "vm.onHypercall(nr, (args) => rax)",
  "vm.onExit(reason, (exit) => \"resume\" | undefined)", "vm.onMmio({ base, size }, { read, write })",
  "vm.regs()", "vm.setRegs(regs)", "vm.read(addr, len)", "vm.write(addr, bytes)", "vm.instructions()", "vm.stop(detail)",
  "console.log(...)",
];

export interface Service {
  /** The Hono app: `app.fetch` for a server, `app.request` for tests. */
  readonly app: Hono;
  readonly limits: Limits;
  readonly schemas: Schemas;
  /** Every route, as declared (the OpenAPI document is built from these). */
  readonly routes: RouteDoc[];
  readonly openapi: Record<string, unknown>;
  readonly hookSets: HookSetInfo[];
  readonly pool: WorkerPool;
  readonly sessions: SessionTable;
  /** Start the workers now (otherwise the first run does). */
  start(): Promise<void>;
  /**
   * For a shutdown: close every session (their event streams end), refuse new runs (503), and wait
   * until the runs in flight have answered or `ms` has passed. Resolves whether they all answered.
   */
  drain(ms: number): Promise<boolean>;
  /** Close every session and stop the workers (runs still in flight answer 503). */
  close(): Promise<void>;
}

/** Build the service: load the hook scripts, declare the routes. Workers start at the first run. */
export async function createService(opts: ServiceOptions = {}): Promise<Service> {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const jit = opts.jit ?? "lazy";
  if (!JIT_POLICIES.includes(jit)) throw new RangeError(`Invalid jit policy: ${jit} (expected ${JIT_POLICIES.join(", ")})`);
  const defaultEngine: EngineName = opts.defaultEngine ?? envDefaultEngine();
  if (!["interp", "jit", "auto"].includes(defaultEngine)) throw new RangeError(`Invalid default engine: ${defaultEngine} (expected interp, jit or auto)`);
  if (defaultEngine !== "interp" && jit === "off") throw new RangeError(`The default engine ${defaultEngine} needs the JIT, which is off`);
  const ENGINES = engineTable(jit);
  const scripts = (opts.scripts ?? BUNDLED_SCRIPTS).map(scriptUrl);
  // The main thread loads the scripts too, to check hook set names before a request reaches a worker.
  const { info: hookSets } = await loadHookScripts(scripts);
  const hookNames = new Set(hookSets.map((h) => h.name));
  const schemas = makeSchemas(limits, defaultEngine, [...hookNames]);
  const startedAt = performance.now();
  let inFlight = 0;
  /**
   * What each tenant holds: runs in flight, live sessions (and ones being made), guest RAM. The
   * tenant quotas apply with tokens; without, the one tenant has the service's own limits.
   */
  const usage = new Map<string, { runs: number; sessions: number; memBytes: number }>();
  const usageOf = (t: string) => {
    let u = usage.get(t);
    if (!u) usage.set(t, u = { runs: 0, sessions: 0, memBytes: 0 });
    return u;
  };
  /** Guest RAM of every live session and run in flight. */
  let totalMemBytes = 0;
  const tokens = opts.tokens ?? null;
  /** Each request's tenant, set by the auth middleware. */
  const tenantByRequest = new WeakMap<Request, string>();
  const tenant = (c: Context): string => tenantByRequest.get(c.req.raw) ?? LOCAL_TENANT;
  /** Set by drain(): new runs are refused. */
  let draining = false;
  /** Sessions being built: they count against the session limit already. */
  let creating = 0;

  const sessions: SessionTable = new SessionTable(limits.sessionIdleMs, (s) => {
    pool.submit({ op: "destroy", session: s.id }, { worker: s.worker, watchdogMs: 10_000 }).catch(() => {});
  });
  // A closed session (deleted, expired, lost with its worker, shut down) gives its quota back.
  sessions.onClosed = (s) => {
    const u = usageOf(s.tenant);
    u.sessions--;
    release(s.tenant, s.memBytes);
  };

  /** Take `bytes` of guest RAM for a tenant, or refuse (its quota: 429; the service's: 503). */
  function reserve(t: string, bytes: number): void {
    const u = usageOf(t);
    if (tokens !== null && u.memBytes + bytes > limits.tenantMaxMemBytes) {
      throw new ApiProblem("quota-exceeded", `Tenant ${t} holds ${u.memBytes} bytes of guest memory; ${bytes} more would pass its ${limits.tenantMaxMemBytes}`, { quota: "memory" }, { "retry-after": "5" });
    }
    if (totalMemBytes + bytes > limits.maxTotalMemBytes) {
      throw new ApiProblem("memory-exhausted", `The service holds ${totalMemBytes} bytes of guest memory; ${bytes} more would pass its ${limits.maxTotalMemBytes}`, {}, { "retry-after": "5" });
    }
    u.memBytes += bytes;
    totalMemBytes += bytes;
  }
  function release(t: string, bytes: number): void {
    usageOf(t).memBytes -= bytes;
    totalMemBytes -= bytes;
  }
  const pool: WorkerPool = new WorkerPool({
    size: opts.workers ?? Math.max(1, navigator.hardwareConcurrency ?? cpus().length),
    limits,
    scripts,
    preloadJit: jit === "preload",
    onEvent: (e) => sessions.onWorkerEvent(e),
    onWorkerLost: (i) => sessions.onWorkerLost(i),
  });

  /** Submit a job, counting it against the concurrency limit. */
  async function submit(t: string, req: WorkerRequest, o: { worker?: number; watchdogMs: number; timeoutMs?: number }) {
    if (draining) throw new ApiProblem("shutting-down", "The service is shutting down", {}, { "retry-after": "5" });
    if (inFlight >= limits.maxConcurrentRuns) {
      throw new ApiProblem("too-many-runs", `${inFlight} runs are in progress (at most ${limits.maxConcurrentRuns}); retry later`, {}, { "retry-after": "1" });
    }
    const u = usageOf(t);
    if (tokens !== null && u.runs >= limits.tenantMaxConcurrentRuns) {
      throw new ApiProblem("quota-exceeded", `Tenant ${t} has ${u.runs} runs in progress (at most ${limits.tenantMaxConcurrentRuns}); retry later`, { quota: "runs" }, { "retry-after": "1" });
    }
    u.runs++;
    inFlight++;
    try {
      return await pool.submit(req, o);
    } catch (e) {
      if (e instanceof WorkerJobError) throw poolProblem(e);
      throw e;
    } finally {
      inFlight--;
      u.runs--;
    }
  }

  /** How long a job may take before the watchdog replaces its worker: far beyond its own limits. */
  const grace = opts.watchdogGraceMs ?? 1_000;
  const watchdog = (timeoutMs: number) => timeoutMs + grace;

  const app = new Hono();
  const routes: RouteDoc[] = [];
  const route = (doc: RouteDoc, handler: (c: Context) => Response | Promise<Response>) => {
    routes.push(doc);
    app.on(doc.method.toUpperCase(), doc.path, handler);
  };

  // Metrics and the access log: one line per answer (time, tenant, method, path, status, ms, bytes).
  const metrics = new Metrics();
  let eventStreams = 0;
  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    const path = c.req.path;
    const r = routes.find((x) => x.method.toUpperCase() === c.req.method && pathMatches(x.path, path));
    metrics.request(r ? r.path : "unmatched", c.res.status);
    if (opts.accessLog) {
      const p = path.length > 200 ? path.slice(0, 200) + "…" : path;
      const len = c.res.headers.get("content-length") ?? "-";
      opts.accessLog(`${new Date().toISOString()} ${tenantByRequest.get(c.req.raw) ?? (tokens ? "-" : LOCAL_TENANT)} ${c.req.method} ${JSON.stringify(p).slice(1, -1)} ${c.res.status} ${(performance.now() - t0).toFixed(1)}ms ${len}`);
    }
  });

  app.use("*", bodyLimit({
    maxSize: limits.maxBodyBytes,
    onError: () => {
      throw new ApiProblem("body-too-large", `The request body exceeds ${limits.maxBodyBytes} bytes`, { limit: limits.maxBodyBytes });
    },
  }));

  // Tenants: every route but the public ones needs a token when the service has tokens.
  const PUBLIC = new Set(["/healthz", "/docs", "/v1/openapi.json"]);
  app.use("*", async (c, next) => {
    if (tokens === null || PUBLIC.has(c.req.path)) return await next();
    const t = tenantOf(tokens, c.req.header("authorization"));
    if (t === null) {
      throw new ApiProblem("unauthorized", c.req.header("authorization") ? "The API token is not valid" : "This service needs an API token: Authorization: Bearer TOKEN", {}, { "www-authenticate": 'Bearer realm="vmxlab"' });
    }
    tenantByRequest.set(c.req.raw, t);
    await next();
  });

  app.onError((err, c) => {
    if (err instanceof ApiProblem) return err.toResponse(c.req.path);
    if (err instanceof WorkerJobError) return poolProblem(err).toResponse(c.req.path);
    if (err instanceof HTTPException) return new ApiProblem("internal", err.message, { status: err.status }).toResponse(c.req.path);
    console.error(`vmxlab api: ${c.req.method} ${c.req.path}:`, err);
    return new ApiProblem("internal", `Internal error: ${(err as Error)?.message ?? String(err)}`).toResponse(c.req.path);
  });

  app.notFound((c) => {
    const path = c.req.path;
    const allowed = routes.filter((r) => pathMatches(r.path, path)).map((r) => r.method.toUpperCase());
    if (allowed.length) {
      return new ApiProblem("method-not-allowed", `${c.req.method} is not allowed on ${path} (allowed: ${allowed.join(", ")})`, {}, { allow: allowed.join(", ") }).toResponse(path);
    }
    return new ApiProblem("not-found", `No route ${c.req.method} ${path}`).toResponse(path);
  });

  const problem = (description: string) => ({ description, schema: schemas.Problem, contentType: "application/problem+json" });
  const bodyErrors = {
    400: problem("Invalid or malformed body (validation, malformed-json)"),
    413: problem("Body too large (body-too-large)"),
    415: problem("Body is not JSON (unsupported-media-type)"),
  };

  // ---------------------------------------------------------------------------------------------
  // Service
  // ---------------------------------------------------------------------------------------------
  route({
    method: "get", path: "/healthz", operationId: "health", summary: "Liveness: answers while guests run; degraded while a worker is replaced", tags: ["service"],
    responses: { 200: { description: "The service is up (status degraded: fewer workers answer than it has)", schema: schemas.Health } },
  }, (c) => {
    const ready = pool.readyCount;
    return c.json({
      status: pool.degraded ? "degraded" as const : "ok" as const,
      uptimeMs: Math.round(performance.now() - startedAt), runsInFlight: inFlight, sessions: sessions.size,
      workers: { size: pool.size, ready, killed: pool.killed },
    });
  });

  route({
    method: "get", path: "/metrics", operationId: "metrics", summary: "Counters in the Prometheus text format", tags: ["service"],
    description: "Answers by route and status, runs by exit reason or problem type, queue and run time histograms, killed workers, sessions, runs in flight, guest memory, event streams. Needs a token when the service has tokens.",
    responses: { 200: { description: "Prometheus text format 0.0.4", raw: { type: "text/plain" } } },
  }, (c) => c.body(metrics.render({
    sessions: sessions.size, runsInFlight: inFlight, memBytes: totalMemBytes, workers: pool.size, workersReady: pool.readyCount,
    workersKilled: pool.killed, eventStreams,
  }), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }));

  route({
    method: "get", path: "/v1/info", operationId: "info", summary: "Version, engines, modes, limits and hook sets", tags: ["service"],
    responses: { 200: { description: "What this service offers", schema: schemas.Info } },
  }, (c) => c.json({
    name: "vmxlab" as const,
    version: API_VERSION,
    runtime: typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? `bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}` : typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}` : "unknown",
    engines: ENGINES,
    defaultEngine,
    modes: MODES,
    formats: ["raw", "elf", "multiboot", "rom", "bzimage", "auto"],
    workers: pool.size,
    limits: limits as unknown as Record<string, unknown>,
    // Where each hook set came from, by file name only: the service's paths are nobody's business.
    hookSets: hookSets.map((h) => ({ ...h, script: h.script.replace(/^.*[\\/]/, "") })),
    hookScript: { engine: "QuickJS (quickjs-emscripten, WebAssembly)", api: SCRIPT_API },
  }));

  route({
    method: "get", path: "/v1/openapi.json", operationId: "openapi", summary: "This document", tags: ["service"],
    responses: { 200: { description: "The OpenAPI 3.1 document", raw: { type: "application/json" } } },
  }, (c) => c.json(openapi));

  route({
    method: "get", path: "/docs", operationId: "docs", summary: "The API reference as a page (works offline)", tags: ["service"],
    responses: { 200: { description: "HTML rendered from the OpenAPI document", raw: { type: "text/html" } } },
  }, (c) => c.html(docsHtml));

  // ---------------------------------------------------------------------------------------------
  // One-shot runs
  // ---------------------------------------------------------------------------------------------
  route({
    method: "post", path: "/v1/runs", operationId: "run", summary: "Run a guest image once", tags: ["runs"],
    description: "Builds a VM from the image and options, runs it until it halts, shuts down, a hook stops it, or the budget or " +
      "wall time runs out, and returns the report. The guest's fate (hlt, shutdown, budget, timeout, …) is `exit.reason` " +
      "in a 200; a failing hook is a 422 hook-failed problem carrying the run so far.",
    body: { schema: schemas.RunRequest, required: true },
    responses: {
      200: { description: "The run's report", schema: schemas.RunReport },
      ...bodyErrors,
      422: problem("The image, mode, engine, hooks or script cannot be used, or a hook failed (image, unsupported, hook-conflict, script, hook-failed)"),
      429: problem("Too many runs in progress (too-many-runs)"),
      503: problem("The worker stopped (worker-lost)"),
    },
  }, async (c) => {
    const t0 = performance.now();
    const body = await jsonBody(c, schemas.RunRequest, true) as RunRequest;
    const machine = machineSpec(body);
    const run = runSpec(body, { budget: limits.defaultBudget, timeoutMs: limits.defaultTimeoutMs, dumps: [] });
    const t = tenant(c);
    reserve(t, machine.memBytes);
    let value: unknown, queueMs: number;
    try {
      ({ value, queueMs } = await submit(t, { op: "run", machine, run }, { watchdogMs: watchdog(run.timeoutMs), timeoutMs: run.timeoutMs }));
    } catch (e) {
      metrics.failed(e instanceof ApiProblem ? e.problem.type.replace(/^.*#problem-/, "") : "internal");
      throw e;
    } finally {
      release(t, machine.memBytes);
    }
    {
      // The report is JSON text the service does not parse: its exit (first) and wallMs, by pattern.
      const head = (value as RunReply).json;
      const reason = /^\{"exit":\{"reason":"([a-z_0-9]{1,40})"/.exec(head)?.[1] ?? "unknown";
      const wall = /"wallMs":([0-9.e+-]+)/.exec(head);
      metrics.ran(reason, queueMs, wall ? Number(wall[1]) : undefined);
    }
    const json = finishReportJson((value as RunReply).json, { queueMs: round(queueMs), totalMs: round(performance.now() - t0) });
    return c.body(json, 200, { "content-type": "application/json" });
  });

  // ---------------------------------------------------------------------------------------------
  // Sessions
  // ---------------------------------------------------------------------------------------------
  const idParams = schemas.SessionId;
  const notFound = { 404: problem("No such session (not-found)") };

  function session(c: Context): Session {
    const p = idParams.safeParse({ id: c.req.param("id") });
    if (!p.success) throw fromZodError(p.error, "path");
    const s = sessions.get(p.data.id);
    // Another tenant's session is as absent as one that never was.
    if (!s || s.tenant !== tenant(c)) throw fieldProblem("not-found", "path", "id", `No session ${p.data.id} (it may have expired or been deleted)`);
    return s;
  }

  /** A job on a session's worker; the session counts as in use until it answers. */
  async function onSession(s: Session, req: WorkerRequest, watchdogMs = 30_000, timeoutMs?: number) {
    s.active++;
    s.lastUsedAt = Date.now();
    try {
      return (await submit(s.tenant, req, { worker: s.worker, watchdogMs, timeoutMs })).value;
    } finally {
      s.active--;
      s.lastUsedAt = Date.now();
    }
  }

  route({
    method: "post", path: "/v1/vms", operationId: "createVm", summary: "Create a session: a VM that lives across requests", tags: ["sessions"],
    description: `The same options as a one-shot run; budget, timeoutMs and dumps become the defaults of its runs. A session nobody uses for ${limits.sessionIdleMs} ms is deleted.`,
    body: { schema: schemas.CreateVmRequest, required: true },
    responses: {
      201: { description: "The session", schema: schemas.Session },
      ...bodyErrors,
      422: problem("The image, mode, engine, hooks or script cannot be used"),
      429: problem("Too many live sessions or runs (too-many-sessions, too-many-runs)"),
      503: problem("The worker stopped (worker-lost)"),
    },
  }, async (c) => {
    const body = await jsonBody(c, schemas.CreateVmRequest, true) as RunRequest;
    const machine = machineSpec(body);
    const defaults = runSpec(body, { budget: limits.defaultBudget, timeoutMs: limits.defaultTimeoutMs, dumps: [] });
    if (sessions.size + creating >= limits.maxSessions) {
      throw new ApiProblem("too-many-sessions", `${sessions.size} sessions are live (at most ${limits.maxSessions}); delete one or retry later`, {}, { "retry-after": "5" });
    }
    const t = tenant(c);
    const u = usageOf(t);
    if (tokens !== null && u.sessions >= limits.tenantMaxSessions) {
      throw new ApiProblem("quota-exceeded", `Tenant ${t} holds ${u.sessions} sessions (at most ${limits.tenantMaxSessions}); delete one or retry later`, { quota: "sessions" }, { "retry-after": "5" });
    }
    reserve(t, machine.memBytes);
    u.sessions++;
    const id = sessions.newId();
    creating++;
    let value: unknown;
    let s: Session;
    try {
      await pool.start();
      // Sessions spread over the workers: the one holding the fewest (then with the least work).
      const held = new Array<number>(pool.size).fill(0);
      for (const x of sessions.list()) held[x.worker]++;
      const worker = pool.leastLoaded(held);
      s = new Session(id, worker, machine.mode, machine.memBytes, machine.hooks, machine.script !== undefined, {
        budget: defaults.budget, timeoutMs: defaults.timeoutMs, dumps: defaults.dumps,
      });
      s.engine = machine.engine;
      s.tenant = t;
      ({ value } = await submit(t, { op: "create", session: id, machine }, { worker, watchdogMs: 30_000 }));
    } catch (e) {
      // Not made: its quota goes back (a made one gives it back when it closes).
      u.sessions--;
      release(t, machine.memBytes);
      throw e;
    } finally {
      creating--;
    }
    sessions.add(s);
    c.header("location", `/v1/vms/${id}`);
    return c.json(s.describe(limits.sessionIdleMs, (value as { regs: RegsReport }).regs), 201);
  });

  route({
    method: "get", path: "/v1/vms", operationId: "listVms", summary: "List live sessions", tags: ["sessions"],
    responses: { 200: { description: "The sessions", schema: schemas.SessionList } },
  }, (c) => {
    const t = tenant(c);
    return c.json({ sessions: sessions.list().filter((s) => s.tenant === t).map((s) => s.describe(limits.sessionIdleMs)) });
  });

  route({
    method: "get", path: "/v1/vms/:id", operationId: "getVm", summary: "A session's state", tags: ["sessions"], params: idParams,
    responses: { 200: { description: "The session", schema: schemas.Session }, 400: problem("Malformed id"), ...notFound },
  }, (c) => c.json(session(c).describe(limits.sessionIdleMs)));

  route({
    method: "post", path: "/v1/vms/:id/run", operationId: "runVm", summary: "Run a session until an exit or the budget", tags: ["sessions"],
    description: "Runs from where the last run stopped. An empty body uses the session's defaults. Console bytes and the exit also go to the events stream.",
    params: idParams,
    body: { schema: schemas.SessionRunRequest, required: false },
    responses: {
      200: { description: "The run's report", schema: schemas.RunReport },
      ...bodyErrors, ...notFound,
      409: problem("The session is already running (session-busy)"),
      422: problem("A hook failed (hook-failed)"),
      429: problem("Too many runs in progress (too-many-runs)"),
      503: problem("The worker stopped (worker-lost)"),
    },
  }, async (c) => {
    const t0 = performance.now();
    const s = session(c);
    const body = await jsonBody(c, schemas.SessionRunRequest, false);
    const run = runSpec(body, s.defaults);
    if (s.running) throw new ApiProblem("session-busy", `Session ${s.id} is running; wait for its run to end`);
    s.running = true;
    let report: RunReport;
    try {
      report = await onSession(s, { op: "sessionRun", session: s.id, run }, watchdog(run.timeoutMs), run.timeoutMs) as RunReport;
    } catch (e) {
      metrics.failed(e instanceof ApiProblem ? e.problem.type.replace(/^.*#problem-/, "") : "internal");
      if (e instanceof ApiProblem && e.problem.run) sessionRan(s, e.problem.run as RunReport);
      throw e;
    } finally {
      s.running = false;
    }
    sessionRan(s, report);
    metrics.ran(report.exit.reason, report.timings.queueMs, report.wallMs);
    report.timings.totalMs = round(performance.now() - t0);
    return c.json(report);
  });

  function sessionRan(s: Session, r: RunReport): void {
    s.runs++;
    s.instructions += r.instructions;
    s.lastExit = r.exit;
    s.publish("exit", { exit: r.exit, instructions: r.instructions, wallMs: r.wallMs, regs: r.regs });
  }

  route({
    method: "get", path: "/v1/vms/:id/regs", operationId: "getRegs", summary: "Read registers", tags: ["sessions"], params: idParams,
    responses: { 200: { description: "The registers", schema: schemas.RegsResponse }, 400: problem("Malformed id"), ...notFound },
  }, async (c) => {
    const s = session(c);
    return c.json(await onSession(s, { op: "getRegs", session: s.id }) as { regs: RegsReport });
  });

  route({
    method: "put", path: "/v1/vms/:id/regs", operationId: "setRegs", summary: "Change registers (only those given)", tags: ["sessions"], params: idParams,
    body: { schema: schemas.Regs, required: true },
    responses: {
      200: { description: "The registers after the change", schema: schemas.RegsResponse }, ...bodyErrors, ...notFound,
      422: problem("The vCPU refused the state (vm-state)"),
    },
  }, async (c) => {
    const s = session(c);
    const regs = await jsonBody(c, schemas.Regs, true) as Record<string, number | undefined>;
    const list = Object.entries(regs).filter((e): e is [string, number] => e[1] !== undefined);
    return c.json(await onSession(s, { op: "setRegs", session: s.id, regs: list }) as { regs: RegsReport });
  });

  route({
    method: "get", path: "/v1/vms/:id/memory", operationId: "readMemory", summary: "Read guest-physical memory", tags: ["sessions"],
    description: "JSON with base64 data, or the raw bytes with `Accept: application/octet-stream`.",
    params: idParams, query: schemas.MemoryQuery,
    responses: {
      200: { description: "The bytes: JSON with base64 data, or raw with Accept: application/octet-stream", schema: schemas.MemoryRead, alsoOctetStream: true },
      400: problem("Invalid addr or len (validation)"), ...notFound,
    },
  }, async (c) => {
    const s = session(c);
    const q = query(c, schemas.MemoryQuery);
    const addr = toNumber(q.addr), len = Number(q.len);
    checkAccess(addr, len, s.memBytes);
    const bytes = await onSession(s, { op: "readMemory", session: s.id, addr, len }) as Uint8Array;
    if (/application\/octet-stream/.test(c.req.header("accept") ?? "")) {
      return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { "content-type": "application/octet-stream" });
    }
    return c.json({ addr, len, data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64") });
  });

  route({
    method: "put", path: "/v1/vms/:id/memory", operationId: "writeMemory", summary: "Write guest-physical memory", tags: ["sessions"],
    description: "A JSON body `{ data: base64 }`, or the raw bytes as application/octet-stream.",
    params: idParams, query: schemas.MemoryWriteQuery,
    body: { schema: schemas.MemoryWrite, required: true, alsoOctetStream: true },
    responses: { 200: { description: "What was written", schema: schemas.MemoryWritten }, ...bodyErrors, ...notFound },
  }, async (c) => {
    const s = session(c);
    const q = query(c, schemas.MemoryWriteQuery);
    const addr = toNumber(q.addr);
    let data: Uint8Array;
    if (/^application\/octet-stream/i.test(c.req.header("content-type") ?? "")) {
      data = new Uint8Array(await c.req.arrayBuffer());
    } else {
      const b = await jsonBody(c, schemas.MemoryWrite, true) as { data: string };
      data = new Uint8Array(Buffer.from(b.data, "base64"));
    }
    if (data.length === 0) throw fieldProblem("validation", "body", "data", "No bytes to write");
    checkAccess(addr, data.length, s.memBytes, "data");
    return c.json(await onSession(s, { op: "writeMemory", session: s.id, addr, data }, 30_000) as { addr: number; len: number });
  });

  route({
    method: "get", path: "/v1/vms/:id/disasm", operationId: "disasm", summary: "Disassemble guest memory (Capstone)", tags: ["sessions"],
    params: idParams, query: schemas.DisasmQuery,
    responses: { 200: { description: "The instructions", schema: schemas.Disasm }, 400: problem("Invalid addr, count or bits (validation)"), ...notFound },
  }, async (c) => {
    const s = session(c);
    const q = query(c, schemas.DisasmQuery);
    const count = q.count === undefined ? 10 : Number(q.count);
    if (count < 1 || count > limits.maxDisasmCount) throw fieldProblem("validation", "query", "count", `count must be 1…${limits.maxDisasmCount}, got ${count}`);
    const addr = q.addr === undefined ? undefined : toNumber(q.addr);
    if (addr !== undefined && addr >= s.memBytes) throw fieldProblem("validation", "query", "addr", `addr 0x${addr.toString(16)} is outside guest RAM (${s.memBytes} bytes)`);
    return c.json(await onSession(s, { op: "disasm", session: s.id, addr, count, bits: q.bits === undefined ? undefined : Number(q.bits) as 16 | 32 }));
  });

  route({
    method: "get", path: "/v1/vms/:id/events", operationId: "vmEvents", summary: "Server-sent events: console output and exits", tags: ["sessions"],
    description: "Events `console` ({ text, bytes }), `exit` ({ exit, instructions, wallMs, regs }) and `closed` ({ reason }: deleted, expired, " +
      "worker-lost, shutdown), each with an id; `Last-Event-ID` replays the kept ones (the last 256). The stream ends after `closed`.",
    params: idParams,
    responses: { 200: { description: "An event stream", raw: { type: "text/event-stream" } }, 400: problem("Malformed id"), ...notFound },
  }, (c) => {
    const s = session(c);
    const lastId = Number(c.req.header("last-event-id") ?? "0") || 0;
    if (s.subscriberCount >= limits.maxStreamsPerSession) {
      throw new ApiProblem("too-many-streams", `Session ${s.id} has ${s.subscriberCount} event streams open (at most ${limits.maxStreamsPerSession})`, {}, { "retry-after": "5" });
    }
    if (eventStreams >= limits.maxStreams) {
      throw new ApiProblem("too-many-streams", `${eventStreams} event streams are open (at most ${limits.maxStreams})`, {}, { "retry-after": "5" });
    }
    eventStreams++;
    return streamSSE(c, async (stream) => {
      const queue: StreamEvent[] = [];
      let wake: (() => void) | null = null;
      let done = false;
      const unsubscribe = s.subscribe(lastId, (e) => {
        queue.push(e);
        wake?.();
      });
      stream.onAbort(() => {
        done = true;
        wake?.();
      });
      try {
        // A comment first, so the headers go out now (Bun holds them until the first bytes).
        await stream.write(": connected\n\n");
        while (!done) {
          while (queue.length && !done) {
            const e = queue.shift()!;
            await stream.writeSSE({ id: String(e.id), event: e.event, data: JSON.stringify(e.data) });
            if (e.event === "closed") done = true;
          }
          if (done) break;
          let timer: ReturnType<typeof setTimeout> | undefined;
          const pinged = await new Promise<boolean>((resolve) => {
            wake = () => resolve(false);
            timer = setTimeout(() => resolve(true), 15_000);
          });
          clearTimeout(timer);
          wake = null;
          if (pinged && !done && queue.length === 0) await stream.write(": ping\n\n");
        }
      } finally {
        unsubscribe();
        eventStreams--;
      }
    });
  });

  route({
    method: "post", path: "/v1/vms/:id/console", operationId: "vmConsole", summary: "Type on the session's serial console", tags: ["sessions"],
    description: "Appends the bytes to the UART's receive FIFO; the guest reads them during its next run (the UART raises IRQ4). " +
      "What it prints comes on the events stream as `console` events.",
    params: idParams,
    body: { schema: schemas.ConsoleInput, required: true },
    responses: { 200: { description: "Queued", schema: schemas.ConsoleQueued }, ...bodyErrors, ...notFound, 422: problem("The machine has no serial port") },
  }, async (c) => {
    const s = session(c);
    const body = await jsonBody(c, schemas.ConsoleInput, true) as { input: string };
    return c.json(await onSession(s, { op: "console", session: s.id, input: new TextEncoder().encode(body.input) }, watchdog(s.defaults.timeoutMs)));
  });

  route({
    method: "delete", path: "/v1/vms/:id", operationId: "deleteVm", summary: "Delete a session", tags: ["sessions"], params: idParams,
    responses: { 204: { description: "Deleted" }, 400: problem("Malformed id"), ...notFound },
  }, async (c) => {
    const s = session(c);
    sessions.close(s.id, "deleted");
    await pool.submit({ op: "destroy", session: s.id }, { worker: s.worker, watchdogMs: watchdog(s.defaults.timeoutMs) }).catch(() => {});
    return c.body(null, 204);
  });

  // ---------------------------------------------------------------------------------------------
  // Request → VMM action
  // ---------------------------------------------------------------------------------------------
  function machineSpec(b: RunRequest): MachineSpec {
    const engine = b.engine ?? defaultEngine;
    const e = ENGINES.find((x) => x.name === engine)!;
    if (!e.available) {
      const why = engine === "kvm" ? `is not built yet (${e.note})` : `is not available: the JIT is ${e.note}`;
      throw fieldProblem("unsupported", "body", "engine", `Engine "${engine}" ${why}; use ${ENGINES.filter((x) => x.available).map((x) => `"${x.name}"`).join(" or ")}`);
    }
    const mode = b.mode ?? "real";
    if (!MODES.find((m) => m.name === mode)!.available) {
      throw fieldProblem("unsupported", "body", "mode", `Mode "${mode}" is not supported: vmxlab runs 16- and 32-bit guests (use real, protected or paged)`);
    }
    const memBytes = b.mem === undefined ? limits.defaultMemBytes : parseMem(b.mem);
    const hooks = b.hooks ?? [];
    hooks.forEach((h, i) => {
      if (!hookNames.has(h)) throw fieldProblem("validation", "body", `hooks.${i}`, `Unknown hook set "${h}" (known: ${[...hookNames].join(", ") || "none"})`);
      if (hooks.indexOf(h) !== i) throw fieldProblem("validation", "body", `hooks.${i}`, `Hook set "${h}" is named twice`);
    });
    const image = new Uint8Array(Buffer.from(b.image, "base64"));
    if (image.length === 0) throw fieldProblem("validation", "body", "image", "The image is empty");
    const bz = b.format === "bzimage" || ((b.format ?? "auto") === "auto" && isBzImage(image));
    if (!bz && (b.initrd !== undefined || b.cmdline !== undefined)) {
      throw fieldProblem("validation", "body", b.initrd !== undefined ? "initrd" : "cmdline", "initrd and cmdline go with a Linux bzImage (format bzimage)");
    }
    return {
      initrd: b.initrd === undefined ? undefined : new Uint8Array(Buffer.from(b.initrd, "base64")),
      cmdline: b.cmdline,
      image,
      format: b.format ?? "auto",
      mode: mode as MachineSpec["mode"],
      load: b.load === undefined ? undefined : toNumber(b.load),
      entry: b.entry === undefined ? undefined : toNumber(b.entry),
      memBytes,
      engine: engine as EngineName,
      regs: Object.entries(b.regs ?? {}).filter((r): r is [string, number] => r[1] !== undefined),
      hooks,
      script: b.script,
      trace: b.trace === true ? "exits" : b.trace === false || b.trace === undefined ? "off" : b.trace,
      // With tenants, the JIT's shared code cache would tell one tenant (by cachedRegions, or by how
      // fast its first run is) whether another ran the same code.
      codeCache: tokens === null,
    };
  }

  function runSpec(b: { budget?: number; timeoutMs?: number; serialInput?: string; dumps?: { addr: number | string; len: number }[] }, d: { budget: number; timeoutMs: number; dumps: RunSpec["dumps"] }): RunSpec {
    return {
      budget: b.budget ?? d.budget,
      timeoutMs: b.timeoutMs ?? d.timeoutMs,
      serialInput: b.serialInput,
      dumps: b.dumps ? b.dumps.map((x) => ({ addr: toNumber(x.addr), len: x.len })) : d.dumps,
    };
  }

  function parseMem(v: number | string): number {
    let n: number;
    if (typeof v === "number") n = v;
    else {
      const m = /^([0-9]+)([KMG]?)$/i.exec(v)!;
      n = Number(m[1]) * ({ "": 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2].toUpperCase()];
    }
    if (!Number.isSafeInteger(n) || n < 4096 || n % 4096 !== 0 || n > limits.maxMemBytes) {
      throw fieldProblem("validation", "body", "mem", `Guest memory must be a multiple of 4 KiB from 4 KiB to ${limits.maxMemBytes} bytes, got ${v}`);
    }
    return n;
  }

  function checkAccess(addr: number, len: number, memBytes: number, lenField = "len"): void {
    if (len < 1 || len > limits.maxMemoryAccessBytes) throw fieldProblem("validation", lenField === "len" ? "query" : "body", lenField, `Length must be 1…${limits.maxMemoryAccessBytes}, got ${len}`);
    if (addr >= memBytes) throw fieldProblem("validation", "query", "addr", `addr 0x${addr.toString(16)} is outside guest RAM (${memBytes} bytes)`);
    if (addr + len > memBytes) throw fieldProblem("validation", lenField === "len" ? "query" : "body", lenField, `0x${addr.toString(16)}+${len} runs past the end of guest RAM (${memBytes} bytes)`);
  }

  if (opts.prestart) await pool.start();

  const openapi = buildOpenApi(routes, schemas, {
    version: API_VERSION,
    description: "Untrusted x86 guest code over HTTP, on vmxlab's emulated VMX processor, with hard limits and hook scripts.",
  });
  const docsHtml = renderDocs(openapi);

  return {
    app, limits, schemas, routes, openapi, hookSets, pool, sessions,
    async start() {
      await pool.start();
    },
    async drain(ms: number) {
      draining = true;
      sessions.closeAll("shutdown");
      const end = performance.now() + ms;
      while (inFlight > 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
      return inFlight === 0;
    },
    async close() {
      sessions.closeAll("shutdown");
      pool.close();
      // Let streams see their "closed" event before the caller tears down.
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

/** A job's failure as a problem: the pool's own (503, retry) or the worker's. */
function poolProblem(e: WorkerJobError): ApiProblem {
  const err = e.error;
  if (err.kind === "worker-lost" || err.kind === "busy" || err.kind === "deadline-exceeded") {
    return new ApiProblem(err.kind, err.message, {}, { "retry-after": "1" });
  }
  return fromWorkerError(err as WorkerError);
}

/** Parse a JSON body against a schema; problem documents for every way it can be wrong. */
async function jsonBody<T extends z.ZodType>(c: Context, schema: T, required: boolean): Promise<z.infer<T>> {
  const text = await c.req.text();
  if (text.trim() === "" && !required) return parseWith(schema, {}, "body");
  const ct = c.req.header("content-type") ?? "";
  if (!/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(ct)) {
    throw new ApiProblem("unsupported-media-type", `Expected an application/json body, got ${ct ? JSON.stringify(ct) : "no content type"}`, {
      errors: [{ field: "content-type", in: "header", detail: "Expected application/json" }],
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiProblem("malformed-json", `The body is not valid JSON: ${(e as Error).message}`);
  }
  return parseWith(schema, value, "body");
}

function parseWith<T extends z.ZodType>(schema: T, value: unknown, where: "body" | "query"): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw fromZodError(r.error, where);
  return r.data;
}

function query<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  return parseWith(schema, c.req.query(), "query");
}

function pathMatches(pattern: string, path: string): boolean {
  const re = new RegExp("^" + pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z0-9_]+/g, "[^/]+") + "/?$");
  return re.test(path);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
