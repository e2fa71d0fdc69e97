/**
 * npm run bench:http:hostile — the service under hostile load (issue 16): C concurrent one-shot
 * runs (default 100), a third spinning guests to their time limit, a third spinning hook scripts, a
 * third ordinary hellos, for S seconds, while /healthz is polled every 20 ms. Prints /healthz
 * p50/p99/max, the answers by status, and how many answers came later than their timeoutMs plus
 * the 250 ms grace. The server is scripts/serve.ts in a child process on a free loopback port.
 *
 *   npm run bench:http:hostile -- [--concurrency 100] [--seconds 10] [--workers 2] [--server deno|bun]
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import process from "node:process";
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";

const { values: v } = parseArgs({
  args: process.argv.slice(2),
  options: { concurrency: { type: "string" }, seconds: { type: "string" }, workers: { type: "string" }, server: { type: "string" } },
});
const concurrency = Number(v.concurrency ?? 100), seconds = Number(v.seconds ?? 10), workers = v.workers ?? "2";
const repo = new URL("..", import.meta.url).pathname;
const runtime = v.server ?? (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno");
const bin = `${repo}node_modules/.bin/${runtime}`;
const args = [...(runtime === "bun" ? [] : ["run", "-A"]), `${repo}scripts/serve.ts`, "--port", "0", "--workers", workers, "--max-concurrent", String(concurrency * 2), "--no-access-log", "--max-budget", "100000000000"];
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

const b64 = (b: number[] | Uint8Array) => Buffer.from(b instanceof Uint8Array ? b : Uint8Array.from(b)).toString("base64");
const hello = readFileSync(`${repo}tests/guests/hello16.bin`).toString("base64");
const hypercall = readFileSync(`${repo}tests/guests/pm_hypercall.bin`).toString("base64");
const kinds = [
  { name: "spinning guest", body: { image: b64([0xeb, 0xfe]), budget: 100_000_000_000, timeoutMs: 500 } },
  { name: "spinning hook", body: { image: hypercall, mode: "protected", timeoutMs: 500, script: "vm.onHypercall(1, () => { for (;;) vm.read(0, 4096); });" } },
  { name: "hello", body: { image: hello, regs: { eax: 2, ebx: 2 }, timeoutMs: 500 } },
];
const statuses: Record<string, number> = {};
let late = 0, answers = 0;
const end = performance.now() + seconds * 1000;
const load0 = loadavg();
const clients = Array.from({ length: concurrency }, async (_, i) => {
  const k = kinds[i % kinds.length];
  while (performance.now() < end) {
    const t0 = performance.now();
    const r = await fetch(`${url}/v1/runs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(k.body) });
    const text = await r.text();
    const ms = performance.now() - t0;
    answers++;
    const type = r.status >= 400 ? ` ${(JSON.parse(text).type ?? "").replace(/^.*#problem-/, "")}` : "";
    statuses[`${k.name} ${r.status}${type}`] = (statuses[`${k.name} ${r.status}${type}`] ?? 0) + 1;
    if (ms > k.body.timeoutMs + 250) late++;
    // A refused run waits as its Retry-After asks (at least 100 ms), as a client should.
    if (r.status === 429 || r.status === 503) await new Promise((res) => setTimeout(res, 100));
  }
});
const health: number[] = [];
const poll = (async () => {
  while (performance.now() < end) {
    const t0 = performance.now();
    const r = await fetch(`${url}/healthz`);
    await r.text();
    health.push(performance.now() - t0);
    await new Promise((res) => setTimeout(res, 20));
  }
})();
await Promise.all([...clients, poll]);
health.sort((a, b) => a - b);
const pct = (p: number) => health[Math.min(health.length - 1, Math.floor(health.length * p))].toFixed(1);
console.log(`server: ${runtime}, ${workers} workers; ${concurrency} clients for ${seconds} s; load average ${load0.map((x) => x.toFixed(2)).join(" ")} -> ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(`/healthz: ${health.length} polls, p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${health[health.length - 1].toFixed(1)} ms`);
console.log(`runs: ${answers} answers, ${late} later than timeoutMs + 250 ms`);
for (const [k, n] of Object.entries(statuses).sort()) console.log(`  ${k}: ${n}`);
child.kill("SIGTERM");
await new Promise((r) => child.on("exit", r));
process.exit(0);
