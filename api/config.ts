/**
 * The service's limits and options. Every limit has a safe default, can be changed at start-up
 * (`npm start -- --max-budget 50000000 …`) and is reported by `GET /v1/info`.
 */

/** Hard limits on what one request, run or session may use. */
export interface Limits {
  /** Largest request body in bytes (413 beyond); a base64 image is 4/3 of its size. */
  maxBodyBytes: number;
  /** Largest guest RAM per VM in bytes. */
  maxMemBytes: number;
  /** Guest RAM when a request does not say. */
  defaultMemBytes: number;
  /** Largest instruction budget per run (the VMX preemption timer). */
  maxBudget: number;
  /** Instruction budget when a request does not say. */
  defaultBudget: number;
  /** Longest wall time per run in milliseconds. */
  maxTimeoutMs: number;
  /** Wall time per run when a request does not say. */
  defaultTimeoutMs: number;
  /** Live sessions at once (429 beyond). */
  maxSessions: number;
  /** Runs and session calls admitted at once, running or queued for a worker (429 beyond). */
  maxConcurrentRuns: number;
  /** A session nobody has used for this long is deleted. */
  sessionIdleMs: number;
  /** Console bytes kept per run; a guest that prints more is stopped. */
  maxConsoleBytes: number;
  /** Trace events kept per run; later ones are counted, not kept. */
  maxTraceEvents: number;
  /** Largest `len` of a memory read or write through a session. */
  maxMemoryAccessBytes: number;
  /** Most instructions per disassembly request. */
  maxDisasmCount: number;
  /** Largest run report in bytes of JSON: past it trace events, logs and console are cut (`truncated`). */
  maxAnswerBytes: number;
  /** Distinct ports a report lists (`ports`); more are counted, not listed (`truncated`). */
  maxReportPorts: number;
  /** Open event streams per session, and in all (429 beyond). */
  maxStreamsPerSession: number;
  maxStreams: number;
  /** Guest RAM of all live sessions and runs in flight together (503 beyond). */
  maxTotalMemBytes: number;
  /** Live sessions one tenant may hold (429 beyond). */
  tenantMaxSessions: number;
  /** Runs and session calls one tenant may have in flight (429 beyond). */
  tenantMaxConcurrentRuns: number;
  /** Guest RAM of one tenant's live sessions and runs in flight (429 beyond). */
  tenantMaxMemBytes: number;
  /** Request hook scripts (JavaScript run in QuickJS). */
  hookScript: {
    /** Largest script source in bytes. */
    maxSourceBytes: number;
    /** Time one hook call may take. */
    callMs: number;
    /** Time all hook calls of one run (and the script's setup) may take together. */
    runMs: number;
    /** QuickJS heap cap. */
    memoryBytes: number;
    /** Log lines kept per run (`console.log` in a script, `log()` in an operator hook set). */
    maxLogLines: number;
  };
}

const MiB = 1 << 20;

/** The defaults: small enough that a 2-core machine with a few GiB stays healthy under abuse. */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxBodyBytes: 8 * MiB,
  maxMemBytes: 256 * MiB,
  defaultMemBytes: 16 * MiB,
  maxBudget: 500_000_000,
  defaultBudget: 50_000_000,
  maxTimeoutMs: 30_000,
  defaultTimeoutMs: 5_000,
  maxSessions: 32,
  maxConcurrentRuns: 64,
  sessionIdleMs: 5 * 60_000,
  maxConsoleBytes: 1 * MiB,
  maxTraceEvents: 10_000,
  maxMemoryAccessBytes: 1 * MiB,
  maxDisasmCount: 1000,
  maxAnswerBytes: 4 * MiB,
  maxReportPorts: 256,
  maxStreamsPerSession: 4,
  maxStreams: 256,
  maxTotalMemBytes: 2048 * MiB,
  tenantMaxSessions: 16,
  tenantMaxConcurrentRuns: 32,
  tenantMaxMemBytes: 1024 * MiB,
  hookScript: Object.freeze({
    maxSourceBytes: 64 * 1024,
    callMs: 100,
    runMs: 2_000,
    memoryBytes: 16 * MiB,
    maxLogLines: 1000,
  }),
}) as Limits;

/** Limits with some fields replaced (nested `hookScript` fields merge). */
export function withLimits(over: Partial<Omit<Limits, "hookScript">> & { hookScript?: Partial<Limits["hookScript"]> } = {}): Limits {
  const l: Limits = { ...DEFAULT_LIMITS, ...over, hookScript: { ...DEFAULT_LIMITS.hookScript, ...over.hookScript } };
  for (const [k, v] of Object.entries(l)) {
    if (k !== "hookScript" && (!Number.isSafeInteger(v) || (v as number) <= 0)) throw new RangeError(`Invalid limit ${k}: ${v} (expected a positive integer)`);
  }
  for (const [k, v] of Object.entries(l.hookScript)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`Invalid limit hookScript.${k}: ${v} (expected a positive integer)`);
  }
  if (l.defaultBudget > l.maxBudget) throw new RangeError(`Invalid limits: defaultBudget ${l.defaultBudget} exceeds maxBudget ${l.maxBudget}`);
  if (l.defaultTimeoutMs > l.maxTimeoutMs) throw new RangeError(`Invalid limits: defaultTimeoutMs ${l.defaultTimeoutMs} exceeds maxTimeoutMs ${l.maxTimeoutMs}`);
  if (l.defaultMemBytes > l.maxMemBytes) throw new RangeError(`Invalid limits: defaultMemBytes ${l.defaultMemBytes} exceeds maxMemBytes ${l.maxMemBytes}`);
  return l;
}

/** How the service is put together. */
export interface ServiceOptions {
  limits?: Limits;
  /** Worker threads for guest runs (default: the number of cores). */
  workers?: number;
  /** Operator hook scripts: paths or file URLs of modules that export `hookSets` (see `hooks.ts`). */
  scripts?: (string | URL)[];
  /** Start the workers now instead of at the first run (a server wants this; tests do not). */
  prestart?: boolean;
  /**
   * How far past its wall-time limit (which hook scripts count against) a job may run before the
   * watchdog kills its worker (default 1 s; the caller has had its 503 at 250 ms). A stuck operator
   * hook gets there, and work nothing in the worker can preempt (a JIT compile that runs long).
   */
  watchdogGraceMs?: number;
  /**
   * The JIT in the workers (engines jit and auto): "lazy" (default) loads binaryen in a worker at
   * its first jit run, or in the background during an auto run that goes on (~0.7–1.2 s, once per
   * worker; ~80–100 MB more per worker); "preload"
   * loads it as each worker starts; "off" refuses jit and auto (422).
   */
  jit?: JitPolicy;
  /**
   * API tokens: tenants by the SHA-256 of their tokens (`tenants.ts`). With them every route but
   * /healthz, /docs and /v1/openapi.json needs `Authorization: Bearer TOKEN`, sessions belong to
   * their tenant, and the JIT's shared code cache is off (it would tell one tenant what another
   * ran). Without them every request is tenant "local" (and `npm start` listens on loopback only).
   */
  tokens?: Map<string, string>;
  /** Where the one-line access log goes (`npm start` prints it; default none). */
  accessLog?: (line: string) => void;
  /** The engine of a request that names none (default interp, or VMXLAB_ENGINE when set). */
  defaultEngine?: "interp" | "jit" | "auto";
}

export type JitPolicy = "lazy" | "preload" | "off";
export const JIT_POLICIES: readonly JitPolicy[] = ["lazy", "preload", "off"];

/**
 * How long past its timeoutMs a run may take to answer (issue 16: reading results, the report,
 * the pipe). Past it the caller gets a 503 deadline-exceeded whatever the worker is doing.
 */
export const ANSWER_GRACE_MS = 250;

/** The service's version, as `/v1/info` reports it. */
export const API_VERSION = "0.1.0";
