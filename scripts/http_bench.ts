/**
 * HTTP benchmark (npm run bench:http): runs per second and p50/p99 latency of a one-shot hello run
 * (POST /v1/runs with tests/guests/hello16.bin) at concurrency 1 and 32, on loopback.
 *
 *   npm run bench:http -- [--server deno|bun] [--seconds 5] [--concurrency 1,32]
 *   npm run bench:http -- --url http://127.0.0.1:8787     (a server already running)
 *
 * Without --url it starts scripts/serve.ts in a child process on a free port and stops it after.
 * Only loopback addresses are accepted as targets. Each level also prints the medians of the
 * server's own timings (setup, run, worker, queue, total) and the load average before and after,
 * since the client shares the machine's cores with the server.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";

const { values: v } = parseArgs({
  args: process.argv.slice(2),
  options: {
    url: { type: "string" }, server: { type: "string" }, seconds: { type: "string" }, concurrency: { type: "string" },
    workers: { type: "string" },
  },
});
const seconds = Number(v.seconds ?? 5);
const levels = (v.concurrency ?? "1,32").split(",").map(Number);
const repo = new URL("..", import.meta.url).pathname;
const body = JSON.stringify({ image: readFileSync(`${repo}tests/guests/hello16.bin`).toString("base64"), regs: { eax: 2, ebx: 2 } });

async function startServer(runtime: string): Promise<{ url: string; child: ChildProcess }> {
  const bin = `${repo}node_modules/.bin/${runtime}`;
  const args = runtime === "bun" ? [`${repo}scripts/serve.ts`] : ["run", "-A", `${repo}scripts/serve.ts`];
  args.push("--port", "0", ...(v.workers ? ["--workers", v.workers] : []), "--max-concurrent", "256");
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { url, child };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function level(url: string, concurrency: number, ms: number) {
  const lat: number[] = [];
  const stages: Record<string, number[]> = { setupMs: [], runMs: [], workerMs: [], queueMs: [], totalMs: [] };
  let errors = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const s = performance.now();
      const r = await fetch(`${url}/v1/runs`, { method: "POST", headers: { "content-type": "application/json" }, body });
      const j = await r.json();
      if (r.status !== 200 || j.console !== "4\n") errors++;
      else for (const k in stages) stages[k].push(j.timings[k]);
      lat.push(performance.now() - s);
    }
  }));
  const wall = performance.now() - t0;
  lat.sort((a, b) => a - b);
  const medians = Object.entries(stages).map(([k, v]) => `${k.replace(/Ms$/, "")} ${percentile(v.sort((a, b) => a - b), 0.5)?.toFixed(3)}`).join(", ");
  return { concurrency, runs: lat.length, errors, runsPerSec: Math.round(lat.length / (wall / 1000)), p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), medians };
}

let url = v.url;
let child: ChildProcess | undefined;
if (url) {
  const host = new URL(url).hostname;
  if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host)) throw new Error(`Refusing to benchmark ${host}: only loopback addresses`);
} else {
  ({ url, child } = await startServer(v.server ?? "deno"));
}
try {
  await level(url, 4, 1000); // warm up the JITs of the server and its workers
  const info = await (await fetch(`${url}/v1/info`)).json();
  const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");
  console.log(`server: ${info.runtime}, ${info.workers} workers; ${seconds} s per level; POST /v1/runs hello16.bin; load average ${load()}`);
  for (const c of levels) {
    const r = await level(url, c, seconds * 1000);
    console.log(`concurrency ${String(c).padStart(2)}: ${String(r.runsPerSec).padStart(5)} runs/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  (${r.runs} runs, ${r.errors} errors)`);
    console.log(`               server medians (ms): ${r.medians}; load average ${load()}`);
  }
} finally {
  child?.kill("SIGINT");
}
