/**
 * SIGTERM drains and exits in bounded time (issue 16): with a guest spinning to a 30 s limit and an
 * event stream open, `npm start`'s process ends its streams, waits --drain-ms for runs in flight,
 * kills its worker processes and exits, leaving no process behind.
 */
import { test } from "node:test";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { assert, assertEquals } from "../tests/assert.ts";
import { REPO } from "../tests/run_cli.ts";
import { b64, GUESTS } from "./_testing.ts";

/** The pids of `pid`'s child processes (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** The process exists and is not a zombie (an exited process nobody has reaped yet uses no CPU). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return process.platform !== "linux";
  }
}

test("SIGTERM ends event streams, stops a spinning run and exits within the drain time", { skip: process.platform !== "linux" && "reads /proc" }, async () => {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const args = [...(isDeno ? ["run", "-A", "--no-check"] : []), "scripts/serve.ts", "--port", "0", "--workers", "2", "--drain-ms", "300", "--max-budget", "100000000000"];
  const server = spawn(process.execPath, args, { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  const exited = new Promise<number | string | null>((resolve) => server.on("exit", (code, signal) => resolve(code ?? signal)));
  const url = await new Promise<string>((resolve, reject) => {
    server.stdout!.on("data", (d) => {
      out += d;
      const m = /on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.on("exit", () => reject(new Error(`server exited: ${out}`)));
  });
  const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const vm = await (await post("/v1/vms", { image: b64(GUESTS.incHalt) })).json();
  const stream = await fetch(`${url}/v1/vms/${vm.id}/events`);
  const streamText = stream.text();
  const spinning = post("/v1/runs", { image: b64(GUESTS.spin), budget: 100_000_000_000, timeoutMs: 30_000 }).then((r) => r.status, () => "closed");
  await new Promise((r) => setTimeout(r, 200));
  const workers = childrenOf(server.pid!);
  assert(workers.length >= 2, `worker processes: ${workers}`);
  const t0 = performance.now();
  server.kill("SIGTERM");
  const code = await exited;
  const ms = performance.now() - t0;
  assert(/stopped in \d+ ms/.test(out), `no clean stop (exit: ${code}): ${out}`);
  // 300 ms of drain, a second at most for the listener, and the runtime's own exit.
  assert(ms < 3000, `exited ${ms.toFixed(0)} ms after SIGTERM`);
  assert(/event: closed[\s\S]*shutdown/.test(await streamText), "the event stream ended with closed: shutdown");
  const status = await spinning;
  assert(status === 503 || status === "closed", `the spinning run ended with ${status}`);
  for (let i = 0; i < 50 && workers.some(alive); i++) await new Promise((r) => setTimeout(r, 20));
  assertEquals(workers.filter(alive), [], "worker processes left behind");
  assert(/stopped in \d+ ms/.test(out), out);
});
