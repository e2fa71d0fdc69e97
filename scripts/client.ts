/**
 * A fetch-based client for vmxlab's HTTP API, and a walkthrough that uses it against a running
 * server (`npm start` in another terminal):
 *
 *   node_modules/.bin/deno run -A scripts/client.ts [--url http://127.0.0.1:8787]
 *   node_modules/.bin/bun scripts/client.ts
 *
 * The client is plain `fetch`, so it runs in Deno, Bun, Node and browsers.
 */
import type { EngineName, RunReport } from "../api/protocol.ts";

/** An error answer of the API: an RFC 9457 problem document. */
export class ProblemError extends Error {
  constructor(readonly status: number, readonly problem: { type: string; title: string; detail: string; errors?: { field: string; detail: string }[]; [k: string]: unknown }) {
    const fields = problem.errors?.map((e) => e.field).filter(Boolean).join(", ");
    super(`${status} ${problem.title}: ${problem.detail}${fields ? ` [${fields}]` : ""}`);
    this.name = "ProblemError";
  }
}

/** The options of a run or a session (see GET /v1/openapi.json, RunRequest). */
export interface RunOptions {
  format?: "raw" | "elf" | "multiboot" | "rom" | "auto";
  mode?: "real" | "protected" | "paged";
  load?: number | string;
  entry?: number | string;
  mem?: number | string;
  engine?: EngineName;
  regs?: Record<string, number>;
  budget?: number;
  timeoutMs?: number;
  serialInput?: string;
  hooks?: string[];
  script?: string;
  trace?: boolean | "exits" | "path";
  dumps?: { addr: number | string; len: number }[];
}

/** What a run returns: the service's own report type (a type-only import: nothing loads at run time). */
export type { RunReport } from "../api/protocol.ts";

/** One server-sent event of a session. */
export interface VmEvent {
  id: number;
  event: "console" | "exit" | "closed";
  data: Record<string, unknown>;
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export class VmxlabClient {
  constructor(readonly baseUrl = "http://127.0.0.1:8787") {}

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 204) return undefined as T;
    const json = await res.json();
    if (!res.ok) throw new ProblemError(res.status, json);
    return json as T;
  }

  health(): Promise<{ status: string }> {
    return this.request("GET", "/healthz");
  }
  info(): Promise<Record<string, unknown>> {
    return this.request("GET", "/v1/info");
  }
  /** A one-shot run of `image`. */
  run(image: Uint8Array, opts: RunOptions = {}): Promise<RunReport> {
    return this.request("POST", "/v1/runs", { image: toBase64(image), ...opts });
  }
  /** A session; run it with `runVm`. */
  createVm(image: Uint8Array, opts: RunOptions = {}): Promise<{ id: string }> {
    return this.request("POST", "/v1/vms", { image: toBase64(image), ...opts });
  }
  runVm(id: string, opts: Pick<RunOptions, "budget" | "timeoutMs" | "serialInput" | "dumps"> = {}): Promise<RunReport> {
    return this.request("POST", `/v1/vms/${id}/run`, opts);
  }
  regs(id: string): Promise<{ regs: Record<string, number> }> {
    return this.request("GET", `/v1/vms/${id}/regs`);
  }
  setRegs(id: string, regs: Record<string, number>): Promise<{ regs: Record<string, number> }> {
    return this.request("PUT", `/v1/vms/${id}/regs`, regs);
  }
  async readMemory(id: string, addr: number, len: number): Promise<Uint8Array> {
    const r = await this.request<{ data: string }>("GET", `/v1/vms/${id}/memory?addr=${addr}&len=${len}`);
    return Uint8Array.from(atob(r.data), (c) => c.charCodeAt(0));
  }
  writeMemory(id: string, addr: number, data: Uint8Array): Promise<{ addr: number; len: number }> {
    return this.request("PUT", `/v1/vms/${id}/memory?addr=${addr}`, { data: toBase64(data) });
  }
  disasm(id: string, opts: { addr?: number; count?: number } = {}): Promise<{ instructions: { address: number; bytes: string; text: string }[] }> {
    const q = new URLSearchParams();
    if (opts.addr !== undefined) q.set("addr", String(opts.addr));
    if (opts.count !== undefined) q.set("count", String(opts.count));
    return this.request("GET", `/v1/vms/${id}/disasm?${q}`);
  }
  deleteVm(id: string): Promise<void> {
    return this.request("DELETE", `/v1/vms/${id}`);
  }

  /** The session's events, until it is closed or `signal` aborts. */
  async *events(id: string, signal?: AbortSignal): AsyncGenerator<VmEvent> {
    const res = await fetch(`${this.baseUrl}/v1/vms/${id}/events`, { signal });
    if (!res.ok) throw new ProblemError(res.status, await res.json());
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f: Record<string, string> = {};
          for (const line of block.split("\n")) {
            const m = /^(\w+): ?(.*)$/.exec(line);
            if (m) f[m[1]] = m[2];
          }
          if (!f.event) continue; // a comment (ping)
          const e: VmEvent = { id: Number(f.id), event: f.event as VmEvent["event"], data: JSON.parse(f.data) };
          yield e;
          if (e.event === "closed") return;
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }
}

/** The walkthrough: a one-shot run, then a session watched through its events. */
export async function walkthrough(client: VmxlabClient, log: (line: string) => void = console.log): Promise<void> {
  await client.health();
  // mov dx,0x3f8; add al,bl; add al,'0'; out dx,al; mov al,'\n'; out dx,al; hlt
  const hello = new Uint8Array([0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4]);
  const r = await client.run(hello, { regs: { eax: 2, ebx: 2 } });
  log(`one-shot: console ${JSON.stringify(r.console)}, exit ${r.exit.reason}, ${r.instructions} instructions, ${r.timings.totalMs} ms`);

  try {
    await client.run(hello, { mode: "long" as "real" });
  } catch (e) {
    log(`a bad request: ${(e as Error).message}`);
  }

  const vm = await client.createVm(hello, { regs: { eax: 1, ebx: 1 } });
  const seen: string[] = [];
  const watching = (async () => {
    for await (const e of client.events(vm.id)) seen.push(e.event === "console" ? `console ${JSON.stringify(e.data.text)}` : e.event);
  })();
  const run = await client.runVm(vm.id);
  log(`session ${vm.id}: console ${JSON.stringify(run.console)}, exit ${run.exit.reason}`);
  const { regs } = await client.regs(vm.id);
  log(`  eip 0x${regs.eip.toString(16)}, eax 0x${regs.eax.toString(16)}`);
  const d = await client.disasm(vm.id, { addr: 0x1000, count: 3 });
  log(`  code at 0x1000: ${d.instructions.map((i) => i.text).join("; ")}`);
  await client.deleteVm(vm.id);
  await watching;
  log(`  events: ${seen.join(", ")}`);
}

if (import.meta.main) {
  const i = process.argv.indexOf("--url");
  const url = i >= 0 ? process.argv[i + 1] : "http://127.0.0.1:8787";
  try {
    await walkthrough(new VmxlabClient(url));
  } catch (e) {
    console.error(`client: ${(e as Error).message}${(e as Error).message.includes("fetch") || (e as { code?: string }).code === "ECONNREFUSED" ? " (is `npm start` running?)" : ""}`);
    process.exitCode = 1;
  }
}
