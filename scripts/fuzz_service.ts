/**
 * npm run fuzz:service: the HTTP service's fuzzers at full size (api/fuzz.ts): hostile guests
 * (random and mutated images, string IO and page tables pointing outside RAM, self-modifying code,
 * exception storms, every engine), hostile request scripts (getters, Proxies, deep structures, huge
 * values, spinning host calls) and requests generated from the OpenAPI document. It checks: no 500,
 * no answer later than its limit plus the 250 ms grace (plus --slack-ms), every answer matching its
 * documented schema, use-after-delete a 404, no core busy afterwards, and RSS growth.
 *
 *   npm run fuzz:service -- [--count N] [--guests N] [--scripts N] [--api N] [--seed S] [--workers W] [--slack-ms MS]
 *
 * --count N runs N guests, N/10 scripts and N/10 API requests (default 1000). Exit status 1 when
 * a check failed.
 */
import process from "node:process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createService } from "../api/app.ts";
import { withLimits } from "../api/config.ts";
import { emptyStats, type FuzzStats, fuzzApi, fuzzGuests, fuzzScripts, mergeStats, Rng, warmUp } from "../api/fuzz.ts";

const { values: v } = parseArgs({
  args: process.argv.slice(2),
  options: {
    count: { type: "string" }, guests: { type: "string" }, scripts: { type: "string" }, api: { type: "string" },
    seed: { type: "string" }, workers: { type: "string" }, "slack-ms": { type: "string" },
  },
});
const count = Number(v.count ?? 1000);
const guests = Number(v.guests ?? count), scripts = Number(v.scripts ?? Math.ceil(count / 10)), api = Number(v.api ?? Math.ceil(count / 10));
const seed = Number(v.seed ?? 1), workers = Number(v.workers ?? 2), slackMs = Number(v["slack-ms"] ?? 0);
if (![count, guests, scripts, api, seed, workers, slackMs].every((x) => Number.isInteger(x) && x >= 0) || workers < 1) {
  console.error("Usage: npm run fuzz:service -- [--count N] [--guests N] [--scripts N] [--api N] [--seed S] [--workers W] [--slack-ms MS]");
  process.exit(2);
}

/** RSS of this process and its children (Linux /proc), in bytes. */
function rss(pids: number[]): number {
  let n = 0;
  for (const pid of [process.pid, ...pids]) {
    try {
      n += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
    } catch { /* not Linux, or gone */ }
  }
  return n;
}

const service = await createService({
  workers, prestart: true, limits: withLimits({ maxBudget: 100_000_000_000 }), watchdogGraceMs: 2_000,
});
await warmUp(service);
const rng = new Rng(seed);
const total = emptyStats();
const t0 = performance.now();
const rss0 = rss(service.pool.pids);
const parts: [string, number, (n: number) => Promise<FuzzStats>][] = [
  ["hostile guests", guests, (n) => fuzzGuests(service, n, rng, slackMs)],
  ["hostile scripts", scripts, (n) => fuzzScripts(service, n, rng, slackMs)],
  ["schema-driven API requests", api, (n) => fuzzApi(service, n, rng, slackMs)],
];
for (const [name, n, f] of parts) {
  if (n === 0) continue;
  const t = performance.now();
  const st = await f(n);
  mergeStats(total, st);
  console.log(`${name}: ${st.requests} requests in ${((performance.now() - t) / 1000).toFixed(1)} s; statuses ${JSON.stringify(st.byStatus)}; ` +
    `5xx ${st.serverErrors.length}, late ${st.late.length}, overran (503 deadline-exceeded, in time) ${st.overran}, schema mismatches ${st.mismatches.length}, use-after-delete not 404 ${st.afterDelete.length}; ` +
    `worst answer ${st.worstOverMs === -Infinity ? "-" : Math.round(st.worstOverMs)} ms past its limit`);
}
const rss1 = rss(service.pool.pids);
// A thread or process left spinning shows as CPU time while nothing is asked of the service.
const cpu0 = process.cpuUsage();
const ticks0 = service.pool.pids.map(cpuTicks);
await new Promise((r) => setTimeout(r, 1000));
const cpu = process.cpuUsage(cpu0);
const childMs = service.pool.pids.map((pid, i) => (cpuTicks(pid) - ticks0[i]) * 10).reduce((a, b) => a + b, 0);
const idleMs = (cpu.user + cpu.system) / 1000 + childMs;
await service.close();

function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

const per10k = total.requests ? (rss1 - rss0) / total.requests * 10_000 / 2 ** 20 : 0;
console.log(`total: ${total.requests} requests in ${((performance.now() - t0) / 1000).toFixed(1)} s (seed ${seed}); 5xx ${total.serverErrors.length}; ` +
  `late (past limit + 250 ms${slackMs ? ` + ${slackMs} ms slack` : ""}) ${total.late.length}; schema mismatches ${total.mismatches.length}; ` +
  `use-after-delete not 404 ${total.afterDelete.length}; CPU in an idle second afterwards ${idleMs.toFixed(0)} ms; ` +
  `RSS ${(rss0 / 2 ** 20).toFixed(0)} -> ${(rss1 / 2 ** 20).toFixed(0)} MB (${per10k.toFixed(1)} MB per 10^4 requests)`);
for (const e of total.serverErrors.slice(0, 5)) console.log(`  5xx ${e.status}: ${e.detail}\n    request: ${e.request}`);
for (const e of total.late.slice(0, 5)) console.log(`  late: ${e.ms} ms for a ${e.limitMs} ms limit: ${e.request}`);
for (const e of total.overranSamples.slice(0, 5)) console.log(`  overran: ${e}`);
for (const e of total.mismatches.slice(0, 5)) console.log(`  schema: ${e.status} on ${e.route}: ${e.issue}`);
for (const e of total.afterDelete.slice(0, 5)) console.log(`  after delete: ${e.status} on ${e.route}`);
const failed = total.serverErrors.length + total.late.length + total.mismatches.length + total.afterDelete.length > 0 || idleMs > 300;
process.exit(failed ? 1 : 0);
