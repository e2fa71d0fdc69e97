/**
 * Serve the app over HTTP with `Deno.serve` or `Bun.serve`, whichever runtime this is, and the
 * command line behind `npm start`.
 */
import { parseArgs } from "node:util";
import { createService, type Service } from "./app.ts";
import { BUNDLED_SCRIPTS } from "./hooks.ts";
import { JIT_POLICIES, type JitPolicy, withLimits } from "./config.ts";
import { isLoopback, loadTokens } from "./tenants.ts";

/** A listening server. */
export interface Server {
  /** `http://host:port` */
  url: string;
  port: number;
  /**
   * Stop listening (the service itself is closed separately). With `force` (the default) open
   * connections are cut where the runtime can; without, they may finish (Deno always lets them).
   */
  stop(force?: boolean): Promise<void>;
}

interface DenoLike {
  serve(o: { hostname: string; port: number; onListen?: (a: { port: number }) => void }, h: (r: Request) => Response | Promise<Response>): {
    addr: { port: number };
    shutdown(): Promise<void>;
  };
}
interface BunLike {
  serve(o: { hostname: string; port: number; fetch: (r: Request) => Response | Promise<Response>; idleTimeout?: number }): {
    port: number;
    stop(closeActive?: boolean): Promise<void> | void;
  };
}

/**
 * Listen on `host:port` (port 0 picks a free one).
 * @example
 * ```ts
 * import { createService } from "./app.ts";
 * import { listen } from "./serve.ts";
 *
 * const service = await createService({ workers: 1 });
 * const server = await listen(service, { host: "127.0.0.1", port: 0 });
 * const res = await fetch(`${server.url}/healthz`);
 * await res.body?.cancel();
 * await server.stop();
 * await service.close();
 * ```
 */
export function listen(service: Service, opts: { host: string; port: number }): Promise<Server> {
  const g = globalThis as unknown as { Deno?: DenoLike; Bun?: BunLike };
  const fetch = (r: Request) => service.app.fetch(r);
  if (g.Bun) {
    // Event streams stay open while idle; Bun's default idle timeout (10 s) would cut them.
    const s = g.Bun.serve({ hostname: opts.host, port: opts.port, fetch, idleTimeout: 0 });
    return Promise.resolve({ url: `http://${opts.host}:${s.port}`, port: s.port, stop: async (force = true) => void await s.stop(force) });
  }
  if (g.Deno) {
    return new Promise((resolve) => {
      const s = g.Deno!.serve({
        hostname: opts.host, port: opts.port,
        onListen: ({ port }) => resolve({ url: `http://${opts.host}:${port}`, port, stop: () => s.shutdown() }),
      }, fetch);
    });
  }
  return Promise.reject(new Error("Serving needs Deno or Bun"));
}

export const USAGE = `Usage: serve [options]

Serve vmxlab's HTTP API (npm start).

Options:
  --host HOST            address to listen on (default 127.0.0.1, or $VMXLAB_HOST); an address
                         other than loopback needs --tokens
  --tokens FILE          API tokens, one "TENANT TOKEN" pair per line: every route but /healthz,
                         /docs and /v1/openapi.json then needs Authorization: Bearer TOKEN, and
                         each tenant sees only its own sessions (without: loopback only, one tenant)
  --port PORT            port (default 8787, or $VMXLAB_PORT; 0 picks a free one)
  --script PATH          load an operator hook script (repeatable); the bundled ones load too
  --no-bundled           do not load the bundled hook scripts
  --workers N            worker threads for guest runs (default: the number of cores)
  --jit lazy|preload|off the JIT in the workers: lazy (default) loads binaryen in a worker at its
                         first jit run (~1 s), or during an auto run once it outlasts a million
                         instructions; preload loads it as each worker starts; off refuses jit and auto
  --engine interp|jit|auto
                         the engine of a request that names none (default interp, or $VMXLAB_ENGINE)
  --max-body BYTES       largest request body            --max-mem BYTES      guest RAM per VM
  --max-budget N         instructions per run            --max-timeout MS     wall time per run
  --max-sessions N       live sessions                   --max-concurrent N   runs at once (429 beyond)
  --session-idle MS      idle session lifetime           --hook-call-ms MS    hook script time per call
  --hook-run-ms MS       hook script time per run        --hook-memory BYTES  hook script heap
  --max-total-mem BYTES  guest RAM of all sessions and runs together
  --tenant-sessions N    live sessions per tenant        --tenant-concurrent N runs per tenant at once
  --tenant-mem BYTES     guest RAM per tenant (sessions and runs)
  --no-access-log        do not print the access log (one line per answer: time, tenant, method,
                         path, status, milliseconds, bytes)
  --drain-ms MS          on SIGTERM/SIGINT: time runs in flight get to finish before the workers
                         are killed and the process exits (default 5000)
  --help                 show this help
`;

/** Run the server from a command line; resolves when it is stopped (SIGINT/SIGTERM). */
export async function main(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv, strict: true, allowPositionals: false, options: {
        host: { type: "string" }, port: { type: "string" }, script: { type: "string", multiple: true },
        "no-bundled": { type: "boolean" }, workers: { type: "string" }, help: { type: "boolean" },
        "max-body": { type: "string" }, "max-mem": { type: "string" }, "max-budget": { type: "string" },
        "max-timeout": { type: "string" }, "max-sessions": { type: "string" }, "max-concurrent": { type: "string" },
        "session-idle": { type: "string" }, "hook-call-ms": { type: "string" }, "hook-run-ms": { type: "string" },
        "hook-memory": { type: "string" }, jit: { type: "string" }, engine: { type: "string" }, "drain-ms": { type: "string" },
        tokens: { type: "string" }, "no-access-log": { type: "boolean" }, "max-total-mem": { type: "string" }, "tenant-sessions": { type: "string" },
        "tenant-concurrent": { type: "string" }, "tenant-mem": { type: "string" },
      },
    }).values;
  } catch (e) {
    console.error(`serve: ${(e as Error).message.split("\n")[0]}`);
    return 2;
  }
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const int = (name: string, s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s)) throw new RangeError(`Invalid --${name}: ${s} (expected a whole number)`);
    return Number(s);
  };
  let service: Service, server: Server, host: string, port: number, drainMs: number;
  let tokens: Map<string, string> | undefined;
  try {
    host = v.host ?? process.env.VMXLAB_HOST ?? "127.0.0.1";
    port = int("port", v.port ?? process.env.VMXLAB_PORT) ?? 8787;
    drainMs = int("drain-ms", v["drain-ms"]) ?? 5000;
    const over = {
      maxBodyBytes: int("max-body", v["max-body"]), maxMemBytes: int("max-mem", v["max-mem"]),
      maxBudget: int("max-budget", v["max-budget"]), maxTimeoutMs: int("max-timeout", v["max-timeout"]),
      maxSessions: int("max-sessions", v["max-sessions"]), maxConcurrentRuns: int("max-concurrent", v["max-concurrent"]),
      sessionIdleMs: int("session-idle", v["session-idle"]),
      maxTotalMemBytes: int("max-total-mem", v["max-total-mem"]), tenantMaxSessions: int("tenant-sessions", v["tenant-sessions"]),
      tenantMaxConcurrentRuns: int("tenant-concurrent", v["tenant-concurrent"]), tenantMaxMemBytes: int("tenant-mem", v["tenant-mem"]),
    };
    const hook = { callMs: int("hook-call-ms", v["hook-call-ms"]), runMs: int("hook-run-ms", v["hook-run-ms"]), memoryBytes: int("hook-memory", v["hook-memory"]) };
    const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>;
    const limits = withLimits({ ...defined(over), hookScript: defined(hook) } as Parameters<typeof withLimits>[0]);
    // Lowered maxima pull the defaults down with them.
    limits.defaultBudget = Math.min(limits.defaultBudget, limits.maxBudget);
    limits.defaultTimeoutMs = Math.min(limits.defaultTimeoutMs, limits.maxTimeoutMs);
    limits.defaultMemBytes = Math.min(limits.defaultMemBytes, limits.maxMemBytes);
    const scripts = [...(v["no-bundled"] ? [] : BUNDLED_SCRIPTS), ...(v.script ?? [])];
    if (v.jit !== undefined && !(JIT_POLICIES as readonly string[]).includes(v.jit)) throw new RangeError(`Invalid --jit: ${v.jit} (expected ${JIT_POLICIES.join(", ")})`);
    if (v.engine !== undefined && !["interp", "jit", "auto"].includes(v.engine)) throw new RangeError(`Invalid --engine: ${v.engine} (expected interp, jit or auto)`);
    tokens = v.tokens === undefined ? undefined : loadTokens(v.tokens);
    if (tokens === undefined && !isLoopback(host)) {
      throw new Error(`Listening on ${host} needs --tokens FILE: without tokens anyone who reaches the port could run guests and read every session`);
    }
    service = await createService({
      limits, scripts, workers: int("workers", v.workers), prestart: true, tokens,
      accessLog: v["no-access-log"] ? undefined : (line) => console.log(line),
      jit: v.jit as JitPolicy | undefined, defaultEngine: v.engine as "interp" | "jit" | "auto" | undefined,
    });
    await service.start();
    server = await listen(service, { host, port });
  } catch (e) {
    console.error(`serve: ${(e as Error).message}`);
    return 2;
  }
  const names = service.hookSets.map((h) => h.name).join(", ") || "none";
  console.log(`vmxlab API on ${server.url} (${service.pool.size} workers; hook sets: ${names}; docs: ${server.url}/docs)`);
  console.log(tokens === undefined
    ? "no --tokens: listening on loopback only, with no authentication (every client is tenant \"local\")"
    : `tokens for ${new Set(tokens.values()).size} tenants: every route but /healthz, /docs and /v1/openapi.json needs Authorization: Bearer TOKEN`);
  console.log(`try: curl -s ${server.url}/v1/runs -H 'content-type: application/json' -d '{"image":"'$(base64 -w0 tests/guests/hello16.bin)'","regs":{"eax":2,"ebx":2}}'`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  // Drain: stop listening, end the event streams, give runs in flight drainMs, then kill the
  // workers (what is still running answers 503) and give the listener a second to flush.
  const t0 = performance.now();
  const stopped = server.stop(false);
  const drained = await service.drain(drainMs);
  await service.close();
  await Promise.race([stopped, new Promise((r) => setTimeout(r, 1000))]);
  void server.stop(true).catch(() => {});
  console.log(`vmxlab API stopped in ${Math.round(performance.now() - t0)} ms (${drained ? "every run answered" : "runs still in flight were ended"})`);
  return 0;
}
