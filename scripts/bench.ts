/**
 * npm run bench: the speed benchmark. Guest MIPS of its workloads under each engine, the
 * geometric mean, the JIT's compile cost, and nanoseconds per OUT exit to a userspace hook; a
 * markdown table and an SVG chart under results/.
 *
 *   npm run bench [-- --reps N] [--only NAME,...] [--engines interp,jit,auto,jit-nocallout]
 *                 [--mode protected|paged|both] [--quick] [--out DIR]
 *   node_modules/.bin/deno run -A scripts/bench.ts …     node_modules/.bin/bun scripts/bench.ts …
 *
 * Workloads (tests/guests, each repeated by a pass count in EDI; output checked against
 * expected.json): sieve, crc32, fib, memcpy-movsd, memcpy-bytes, mandel, matmul, rm-sieve (real
 * mode), nbody-sse2 (doubles under SSE2, gcc-compiled; its expected output from the host), outloop (an OUT per four instructions to the in-kernel POST port: exit-bound, so shown
 * but kept out of the geometric mean of the compute workloads, as nbody-sse2 is). `--only` also takes `out-hook`,
 * the ns-per-OUT measurement (pm_outloop with the POST port moved to a userspace `onIo` hook),
 * which otherwise runs whenever `--only` is absent.
 *
 * Engines: interp; jit (compile each block the first time it runs); auto (interpret, compile hot
 * blocks); jit-nocallout (jit, ending a compiled block before any instruction outside the
 * translated subset instead of calling the interpreter's semantics). `--mode paged` runs the
 * protected-mode guests with CR0.PG on (identity-mapped 4 MiB pages, as `vmrun --mode paged`);
 * `--mode both` measures every engine both ways.
 *
 * MIPS = retired guest instructions ÷ wall time of `Machine.run()`, median of N runs (default 3)
 * after a warm-up run of each workload and engine at a tenth of its size. Every run is a fresh
 * Machine, so JIT figures include compiling: each JIT run is ~250M instructions, long enough that
 * compiling shows without dominating. The interpreter runs a tenth of the JIT's passes of the same
 * workload (MIPS is a rate; the interpreter has nothing to warm up beyond the JS engine's own JIT),
 * except where it is fast enough for the same count (rep movsd, the OUT loop).
 * `--quick` divides every pass count by 20 more (a smoke test; its figures mean little).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Machine } from "../runtime/vmm/machine.ts";
import { useEngine } from "../runtime/vmm/tiering.ts";

// ---- what runs ------------------------------------------------------------------------------

/** A workload: a guest from tests/guests and its pass counts (EDI) for JIT engines and for interp. */
export interface Workload {
  id: string;
  label: string;
  file: string;
  real?: boolean;
  /** Passes under jit/auto (~250M instructions) and under the interpreter (mostly a tenth). */
  passes: number;
  interpPasses: number;
  /** Extra registers (pm_outloop's OUTs per pass in ECX). */
  regs?: Record<string, number>;
  /** Exit-bound: shown, but not part of the compute geometric mean. */
  exitBound?: boolean;
  /**
   * A shape beyond the reference suite (issue 15: data on the code page): run only when named in
   * `--only` or with `--shapes`, shown below the geometric mean and not part of it.
   */
  shape?: boolean;
  /** Its expected output, a file beside the guest, when it is not in expected.json. */
  expectedFile?: string;
  /** Floating point: shown, but kept out of the geometric mean of the integer compute workloads. */
  float?: boolean;
}

// Pass counts: ~250M instructions per JIT run, a tenth of that for the interpreter. REP MOVSD retires
// a dword per "instruction" several times faster than the other loops, in the interpreter too (a
// bulk copy), so it runs ~650M (~0.15 s) under every engine, for the compile cost to stay small.
export const WORKLOADS: Workload[] = [
  { id: "sieve", label: "sieve (65536)", file: "pm_sieve.bin", passes: 300, interpPasses: 30 },
  { id: "crc32", label: "CRC-32 bitwise (4 KiB)", file: "pm_crc32.bin", passes: 1500, interpPasses: 150 },
  { id: "fib", label: "fib(24) recursive", file: "pm_fib.bin", passes: 210, interpPasses: 21 },
  { id: "memcpy-movsd", label: "memcpy 64 KiB, rep movsd", file: "pm_memcpy_movsd.bin", passes: 40000, interpPasses: 40000 },
  { id: "memcpy-bytes", label: "memcpy 64 KiB, byte loop", file: "pm_memcpy_bytes.bin", passes: 640, interpPasses: 64 },
  { id: "mandel", label: "Mandelbrot 80x60, 4.12 fixed point", file: "pm_mandel.bin", passes: 80, interpPasses: 8 },
  { id: "matmul", label: "matmul int32 64x64", file: "pm_matmul.bin", passes: 130, interpPasses: 13 },
  { id: "rm-sieve", label: "real-mode sieve (10000)", file: "rm_sieve.bin", real: true, passes: 1950, interpPasses: 195 },
  // Doubles under SSE2 (gcc -mfpmath=sse, tests/guests/sse2): ~1.09M instructions a pass. Every SSE
  // instruction is a call into the interpreter's definition under the JIT, so it runs ~60 passes,
  // not ~230, to keep a run in seconds.
  { id: "nbody-sse2", label: "n-body + Mandelbrot, doubles, SSE2 (gcc)", file: "sse2/bench_sse2.elf", passes: 60, interpPasses: 6, expectedFile: "sse2/bench_sse2.expected", float: true },
  // 100,000 OUTs of 4 instructions per pass; every OUT exits, so the JIT runs at the exit path's pace.
  { id: "outloop", label: "OUT loop (in-kernel port 0x80)", file: "pm_outloop.bin", passes: 15, interpPasses: 15, regs: { rcx: 100_000 }, exitBound: true },
  // Data sharing a page with code (stores next to the code, touching none of its bytes): each
  // beside the same guest with its variables on another page.
  { id: "mandel-cp", label: "Mandelbrot, variables on the code page", file: "pm_mandel_cp.bin", passes: 80, interpPasses: 8, shape: true },
  { id: "matmul-lv", label: "matmul, j in memory", file: "pm_matmul_lv.bin", passes: 130, interpPasses: 13, shape: true },
  { id: "matmul-cp", label: "matmul, j in memory on the code page", file: "pm_matmul_cp.bin", passes: 130, interpPasses: 13, shape: true },
];
export const OUT_HOOK = "out-hook";
export type EngineId = "interp" | "jit" | "auto" | "jit-nocallout";
export const ENGINE_IDS: EngineId[] = ["interp", "jit", "auto", "jit-nocallout"];
type Mode = "protected" | "paged";

/** One column of the table: an engine in a paging mode. */
export interface Variant { engine: EngineId; mode: Mode; key: string }

export interface Sample { mips: number; ms: number; insns: number; compileMs: number; blocks: number; regions: number; cached: number }
export interface Row {
  w: Workload;
  passes: Record<string, number>;
  /** The median sample of each variant, and the spread of its reps: (max − min) ÷ median MIPS. */
  by: Record<string, Sample>;
  spread?: Record<string, number>;
  /** The jit variant's run with the code cache warm (a run of the same image before it), when measured. */
  cached?: Sample;
}
export interface Report {
  runtime: string;
  date: string;
  command: string;
  reps: number;
  quick: boolean;
  host: string;
  /** Load average (1 min) at the end of the run. */
  loadAfter?: number;
  variants: Variant[];
  rows: Row[];
  /** ns per OUT to a userspace hook, by variant key (absent when not measured). */
  outNs?: Record<string, number>;
  /** The same without the JIT's compile time. */
  outNsExec?: Record<string, number>;
  /** ns per OUT in one long-lived Machine (compiled once, the hook and the runtime's feedback kept). */
  outNsSteady?: Record<string, number>;
  /** ns per OUT in a fresh Machine per sample with the JIT's code cache on and warm (JIT variants). */
  outNsCached?: Record<string, number>;
  outs?: number;
}

// ---- measuring ------------------------------------------------------------------------------

const GUESTS = new URL("../tests/guests/", import.meta.url);
const expected: Record<string, { stdout: string }> = JSON.parse(readFileSync(new URL("expected.json", GUESTS), "utf8"));
const images = new Map<string, Uint8Array>();
/** A guest image from tests/guests, read once. */
export const image = (f: string) => images.get(f) ?? images.set(f, new Uint8Array(readFileSync(new URL(f, GUESTS)))).get(f)!;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const geomean = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

/**
 * The code cache is off unless asked for: every run compiles its code, as the figures say (the
 * warm cache is measured apart, `cachedRun`).
 */
function attach(m: Machine, engine: EngineId, codeCache = false) {
  return useEngine(m, engine === "jit-nocallout" ? "jit" : engine, { callout: engine !== "jit-nocallout", codeCache });
}

async function runOnce(w: Workload, v: Variant, passes: number, codeCache = false): Promise<Sample> {
  const m = new Machine({ mode: w.real ? "real" : v.mode });
  m.load(image(w.file));
  m.vcpu.setRegs({ ...w.regs, rdi: passes });
  const j = await attach(m, v.engine, codeCache);
  const t = performance.now();
  const r = m.run();
  const ms = performance.now() - t;
  if (r.exit.reason !== "hlt") throw new Error(`${w.file} ended with ${r.exit.reason} under ${v.key}`);
  const want = w.expectedFile ? readFileSync(new URL(w.expectedFile, GUESTS), "utf8") : expected[w.file].stdout;
  if (m.console !== want) {
    throw new Error(`${w.file} printed ${JSON.stringify(m.console)} under ${v.key}, expected ${JSON.stringify(want)}`);
  }
  const s = j?.stats;
  return { mips: r.instructions / ms / 1000, ms, insns: r.instructions, compileMs: s?.compileMs ?? 0, blocks: s?.blocks ?? 0, regions: s?.regions ?? 0, cached: s?.cached ?? 0 };
}

async function measure(w: Workload, variants: Variant[], reps: number, scale: number): Promise<Row> {
  const passes: Record<string, number> = {};
  for (const v of variants) passes[v.key] = Math.max(1, Math.round((v.engine === "interp" ? w.interpPasses : w.passes) / scale));
  const samples: Record<string, Sample[]> = {};
  // k = 0 is the warm-up, at a tenth of the size; engines take turns so load spikes hit all alike.
  for (let k = 0; k <= reps; k++) {
    for (const v of variants) {
      const s = await runOnce(w, v, k === 0 ? Math.max(1, Math.round(passes[v.key] / 10)) : passes[v.key]);
      if (k > 0) (samples[v.key] ??= []).push(s);
    }
  }
  const by: Record<string, Sample> = {}, spread: Record<string, number> = {};
  for (const v of variants) {
    const xs = samples[v.key].map((s) => s.mips);
    const mid = median(xs);
    by[v.key] = samples[v.key].find((s) => s.mips === mid)!;
    spread[v.key] = (Math.max(...xs) - Math.min(...xs)) / mid;
  }
  return { w, passes, by, spread };
}

/** One run of `w` under `v` with the code cache on, after a short run of the same image filled it. */
async function cachedRun(w: Workload, v: Variant, passes: number): Promise<Sample> {
  await runOnce(w, v, Math.max(1, Math.round(passes / 10)), true);
  return await runOnce(w, v, passes, true);
}

/**
 * ns per OUT to a userspace hook: pm_outloop with the POST port removed and an `onIo` hook on 0x80.
 * @returns medians: `ns` over the whole run of a fresh Machine with the code cache off (200,000
 *   OUTs also pay for compiling the loop and the code around it, and run in the wasm engine's
 *   baseline tier until its optimising tier takes over), `exec` the same less the JIT's compile
 *   time, `steady` in one long-lived Machine whose guest is restarted for each sample (its compiled
 *   code, its hook and the runtime's feedback about them stay, as in a VM that runs on), and under
 *   a JIT `cached`: a fresh Machine per sample with the code cache on, as by default
 */
interface OutHookNs {
  ns: number;
  exec: number;
  steady: number;
  cached?: number;
}
async function outHookNs(v: Variant, reps: number, outs: number): Promise<OutHookNs> {
  const xs: number[] = [], es: number[] = [], ss: number[] = [], cs: number[] = [];
  const fresh = async (codeCache = false) => {
    const m = new Machine({ mode: v.mode, devices: { post: false } });
    m.load(image("pm_outloop.bin"));
    const start = m.vcpu.getRegs();
    const hook = { n: 0 };
    m.onIo({ port: 0x80, direction: "out", name: "bench", handler: () => { hook.n++; } });
    await attach(m, v.engine, codeCache);
    return { m, start, hook };
  };
  const sample = (s: Awaited<ReturnType<typeof fresh>>) => {
    s.hook.n = 0;
    s.m.vcpu.setRegs({ ...s.start, rcx: outs, rdi: 1 });
    const c0 = s.m.jitStats?.compileMs ?? 0;
    const t = performance.now();
    const r = s.m.run();
    const ms = performance.now() - t;
    if (r.exit.reason !== "hlt" || s.hook.n !== outs) throw new Error(`pm_outloop: ${r.exit.reason} after ${s.hook.n} of ${outs} OUTs under ${v.key}`);
    return { ns: (ms * 1e6) / outs, exec: ((ms - ((s.m.jitStats?.compileMs ?? 0) - c0)) * 1e6) / outs };
  };
  for (let k = 0; k <= reps; k++) {
    const o = sample(await fresh());
    if (k > 0) {
      xs.push(o.ns);
      es.push(o.exec);
    }
  }
  const long = await fresh();
  for (let k = 0; k <= reps + 1; k++) {
    const o = sample(long);
    if (k > 1) ss.push(o.exec);
  }
  if (v.engine === "interp") return { ns: median(xs), exec: median(es), steady: median(ss) };
  // A fresh Machine as users get one: the code cache on, warm from the first of these samples.
  for (let k = 0; k <= reps; k++) {
    const o = sample(await fresh(true));
    if (k > 0) cs.push(o.ns);
  }
  return { ns: median(xs), exec: median(es), steady: median(ss), cached: median(cs) };
}

/**
 * `outHookNs` for one variant in a child process of the same runtime: the exit path's code is then
 * optimised for that engine alone, as in a VM process, rather than after the other engines' runs
 * in the same process (after which the JIT's figure was sometimes far higher in our runs).
 */
function outHookInChild(v: Variant, argv: string[]): OutHookNs {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const keep = argv.filter((a, i) => a === "--quick" || ["--reps", "--mode"].includes(a) || ["--reps", "--mode"].includes(argv[i - 1]));
  const script = fileURLToPath(import.meta.url);
  const args = [...(isDeno ? ["run", "-A", "--no-check"] : []), script, ...keep, "--engines", v.engine, "--out-hook-child", v.key];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 20 });
  const last = (r.stdout ?? "").trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !last.startsWith("{")) throw new Error(`out-hook child for ${v.key} failed (status ${r.status}): ${r.stderr}`);
  return JSON.parse(last);
}

// ---- reporting ------------------------------------------------------------------------------

const f1 = (x: number) => x >= 100 ? x.toFixed(0) : x.toFixed(1);
const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}×`;
const apart = (w: Workload) => w.exitBound === true || w.float === true || w.shape === true;
const computeRows = (r: Report) => r.rows.filter((x) => !apart(x.w));

/** The report as markdown (what the script prints and writes to results/). */
export function renderMarkdown(r: Report): string {
  const vs = r.variants;
  const interp = vs.find((v) => v.engine === "interp" && v.mode === vs[0].mode);
  const jitVs = vs.filter((v) => v.engine !== "interp");
  const mainJit = jitVs.find((v) => v.engine === "jit") ?? jitVs[0];
  const L: string[] = [];
  L.push(`# vmxlab benchmark: ${r.runtime}, ${r.date}`, "");
  L.push(`\`${r.command}\` on ${r.host}. MIPS = guest instructions retired ÷ wall time of the run, median of ${r.reps} run(s) after a warm-up; every run is a fresh Machine, so JIT figures include compiling.`);
  if (interp) L.push(`The interpreter runs fewer passes of most workloads than the JIT engines (a tenth; MIPS is a rate): the passes column gives both, the instructions column is the JIT runs'.`);
  if (r.quick) L.push(`**--quick**: pass counts divided by 20; a smoke test, the figures mean little.`);
  L.push("");

  const geoOf = (rows: Row[], key: string) => geomean(rows.map((x) => x.by[key].mips));
  const ratioCols = interp ? jitVs.map((v) => ({ v, head: `${v.key}/${interp.key}` })) : [];
  L.push(`| workload | passes ${interp ? "interp / JIT" : ""} | instructions | ${vs.map((v) => `MIPS ${v.key}`).join(" | ")} |${ratioCols.map((c) => ` ${c.head} |`).join("")}`);
  L.push(`|---|---:|---:|${vs.map(() => "---:").join("|")}|${ratioCols.map(() => "---:|").join("")}`);
  const line = (x: Row) => {
    const big = jitVs[0] ?? vs[0];
    const passes = interp && jitVs.length ? `${x.passes[interp.key]} / ${x.passes[big.key]}` : `${x.passes[vs[0].key]}`;
    const mips = vs.map((v) => f1(x.by[v.key].mips)).join(" | ");
    const ratios = ratioCols.map((c) => ` ${ratio(x.by[c.v.key].mips, x.by[interp!.key].mips)} |`).join("");
    return `| ${x.w.label} | ${passes} | ${(x.by[big.key].insns / 1e6).toFixed(1)}M | ${mips} |${ratios}`;
  };
  const compute = computeRows(r), bound = r.rows.filter((x) => apart(x.w));
  for (const x of compute) L.push(line(x));
  if (compute.length) {
    const geo = (key: string) => geoOf(compute, key);
    L.push(`| **geometric mean** (${compute.length} compute workload${compute.length > 1 ? "s" : ""}) | | | ${vs.map((v) => `**${f1(geo(v.key))}**`).join(" | ")} |${ratioCols.map((c) => ` **${ratio(geo(c.v.key), geo(interp!.key))}** |`).join("")}`);
  }
  for (const x of bound) L.push(line(x));
  if (bound.length && compute.length) {
    // (the rows below the integer geometric mean: outloop, bound by its exits, and floating point)
    L.push(`| geometric mean, all ${r.rows.length} | | | ${vs.map((v) => f1(geoOf(r.rows, v.key))).join(" | ")} |${ratioCols.map((c) => ` ${ratio(geoOf(r.rows, c.v.key), geoOf(r.rows, interp!.key))} |`).join("")}`);
  }
  const spreads = r.rows.flatMap((x) => vs.map((v) => ({ x, v, s: x.spread?.[v.key] ?? 0 })));
  if (r.reps > 1 && spreads.length) {
    const worst = spreads.reduce((a, b) => b.s > a.s ? b : a);
    L.push("", `Spread of the ${r.reps} runs behind each median, (max − min) ÷ median: ${(median(spreads.map((e) => e.s)) * 100).toFixed(0)}% typically, at most ${(worst.s * 100).toFixed(0)}% (${worst.x.w.id}, ${worst.v.key})${r.loadAfter !== undefined ? `; load average ${r.loadAfter.toFixed(1)} at the end` : ""}.`);
  }
  L.push("");

  if (jitVs.length) {
    L.push(`JIT compile cost (the median run of each): blocks compiled, wasm modules (regions), ms of translating and compiling, and that time's share of the run.`, "");
    L.push(`| workload | ${jitVs.map((v) => `${v.key}: blocks | modules | blocks/module | compile ms | ms/block | share`).join(" | ")} |`);
    L.push(`|---|${jitVs.map(() => "---:|---:|---:|---:|---:|---:").join("|")}|`);
    for (const x of r.rows) {
      L.push(`| ${x.w.label} | ${jitVs.map((v) => {
        const s = x.by[v.key];
        return `${s.blocks} | ${s.regions} | ${(s.blocks / Math.max(1, s.regions)).toFixed(1)} | ${s.compileMs.toFixed(1)} | ${(s.compileMs / Math.max(1, s.blocks)).toFixed(2)} | ${((s.compileMs / s.ms) * 100).toFixed(0)}%`;
      }).join(" | ")} |`);
    }
    const all = (v: Variant) => r.rows.reduce((a, x) => ({ b: a.b + x.by[v.key].blocks, m: a.m + x.by[v.key].regions, ms: a.ms + x.by[v.key].compileMs }), { b: 0, m: 0, ms: 0 });
    L.push(`| **all** | ${jitVs.map((v) => {
      const a = all(v);
      return `${a.b} | ${a.m} | **${(a.b / Math.max(1, a.m)).toFixed(1)}** | ${a.ms.toFixed(1)} | **${(a.ms / Math.max(1, a.b)).toFixed(2)}** | `;
    }).join(" | ")} |`);
    L.push("");
    if (compute.length) {
      const exec = (v: Variant) => geomean(compute.map((x) => x.by[v.key].insns / Math.max(1e-3, x.by[v.key].ms - x.by[v.key].compileMs) / 1000));
      L.push(`Without compile time (instructions ÷ (run ms − compile ms)), geometric mean: ${jitVs.map((v) => `${v.key} ${f1(exec(v))} MIPS`).join(", ")}.`, "");
      const cached = compute.filter((x) => x.cached !== undefined);
      const jv = jitVs.find((v) => v.engine === "jit");
      if (jv !== undefined && cached.length === compute.length) {
        const ms = (pick: (x: Row) => Sample) => cached.reduce((a, x) => a + pick(x).compileMs, 0);
        L.push(`With the code cache warm (one run of the same image before, as a worker's later runs of an image; a fresh Machine), ${jv.key}: compile time over the ${cached.length} workloads ${ms((x) => x.cached!).toFixed(1)} ms instead of ${ms((x) => x.by[jv.key]).toFixed(1)}, ${cached.reduce((a, x) => a + x.cached!.cached, 0)} of ${cached.reduce((a, x) => a + x.cached!.regions, 0)} regions instantiated from the cache; geometric mean ${f1(geomean(cached.map((x) => x.cached!.mips)))} MIPS.`, "");
      }
    }
  }

  if (r.outNs) {
    L.push(`OUT to a userspace hook (pm_outloop, ${r.outs} OUTs, the POST port moved to an \`onIo\` hook; the whole exit path, four guest instructions per OUT), per OUT in a long-lived Machine: ${vs.filter((v) => r.outNsSteady?.[v.key] !== undefined).map((v) => `${v.key} **${r.outNsSteady![v.key].toFixed(0)} ns**`).join(", ")}; in a fresh Machine per sample: ${vs.filter((v) => r.outNs![v.key] !== undefined).map((v) => `${v.key} ${r.outNs![v.key].toFixed(0)} ns${v.engine !== "interp" && r.outNsExec?.[v.key] !== undefined ? ` (${r.outNsExec[v.key].toFixed(0)} without compile time)` : ""}`).join(", ")}${jitVs.some((v) => r.outNsCached?.[v.key] !== undefined) ? `, the JIT's code cache off; with the code cache on and warm, as by default: ${jitVs.filter((v) => r.outNsCached?.[v.key] !== undefined).map((v) => `${v.key} ${r.outNsCached![v.key].toFixed(0)} ns`).join(", ")}` : ""}.`, "");
  }

  // The JIT's speed targets (README "Speed"), against this run.
  const goals: string[] = [];
  const met = (ok: boolean) => ok ? "met" : "not met";
  if (compute.length && mainJit) {
    const gj = geoOf(compute, mainJit.key);
    if (interp) {
      const k = gj / geoOf(compute, interp.key);
      goals.push(`- ${mainJit.key} ≥ 10× the interpreter's geometric mean: ${k.toFixed(1)}× (${met(k >= 10)})`);
    }
    goals.push(`- ${mainJit.key} ≥ 1,000 MIPS geometric mean: ${f1(gj)} (${met(gj >= 1000)}; for scale, measured elsewhere on loops of this kind: QEMU TCG ≈ 530, v86 ≈ 450, native ≈ 9,300)`);
  }
  if (r.outNs && mainJit && r.outNs[mainJit.key] !== undefined) {
    const ns = r.outNs[mainJit.key], exec = r.outNsExec?.[mainJit.key] ?? ns, steady = r.outNsSteady?.[mainJit.key] ?? exec;
    goals.push(`- an OUT from ${mainJit.key} code to a userspace hook ≤ 100 ns: ${steady.toFixed(0)} ns in a long-lived Machine (${met(steady <= 100)}); a fresh Machine per sample: ${r.outNsCached?.[mainJit.key] !== undefined ? `${r.outNsCached[mainJit.key].toFixed(0)} ns with the code cache warm, ` : ""}${ns.toFixed(0)} ns compiling its code (${exec.toFixed(0)} less the compile time)`);
  }
  if (goals.length) L.push("The JIT's speed targets in this run:", "", ...goals, "");
  return L.join("\n");
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const COLORS = ["#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#bcbcbc", "#6baed6", "#fdae6b", "#98df8a"];

/** A grouped bar chart of MIPS per workload and engine, log scale, as SVG text. */
export function renderSvg(r: Report): string {
  const vs = r.variants;
  const groups: { label: string; vals: number[] }[] = r.rows.map((x) => ({ label: x.w.id, vals: vs.map((v) => x.by[v.key].mips) }));
  const compute = computeRows(r);
  if (compute.length > 1) groups.push({ label: "geomean", vals: vs.map((v) => geomean(compute.map((x) => x.by[v.key].mips))) });
  const all = groups.flatMap((g) => g.vals).filter((x) => x > 0);
  // headroom above the tallest bar for its label
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all, 1000))), hi = Math.max(...all, 1000) * 2.2;
  const bar = 16, left = 64, right = 60, plotH = 320, bottom = 84;
  const groupW = Math.max(vs.length * bar + 22, (720 - left - right) / Math.max(1, groups.length));
  const width = Math.round(left + groups.length * groupW + right);
  // legend entries, wrapped into rows that fit
  const legend: { x: number; row: number }[] = [];
  let lx = left, row = 0;
  const goalLabel = "goal: JIT geometric mean ≥ 1,000 MIPS";
  for (const label of [...vs.map((v) => v.key), goalLabel]) {
    const w = 28 + 6.5 * label.length;
    if (lx + w > width - right && lx > left) { lx = left; row++; }
    legend.push({ x: lx, row });
    lx += w;
  }
  const top = 48 + 16 * row, height = top + plotH + bottom;
  const y = (v: number) => top + plotH * (1 - (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)));
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  o.push(`<title>${esc(`vmxlab benchmark, ${r.runtime}, ${r.date}: MIPS per workload and engine`)}</title>`);
  o.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  o.push(`<text x="${left}" y="18" font-size="14" font-weight="bold">${esc(`vmxlab guest MIPS (log scale): ${r.runtime}, ${r.date}${r.quick ? ", --quick" : ""}`)}</text>`);
  // legend
  vs.forEach((v, i) => {
    const { x, row } = legend[i];
    o.push(`<rect x="${x}" y="${28 + 16 * row}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 16}" y="${38 + 16 * row}">${esc(v.key)}</text>`);
  });
  // grid: decades, with 2 and 5 between
  for (let d = lo; d <= hi; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi) break;
      const yy = y(v).toFixed(1);
      o.push(`<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="${m === 1 ? "#bbb" : "#eee"}"/>`);
      if (m === 1 || vs.length * groups.length < 60) o.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="${m === 1 ? "#000" : "#888"}">${v.toLocaleString("en-US")}</text>`);
    }
  }
  o.push(`<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">MIPS</text>`);
  // the issue's goal for the JIT, a dashed line with its legend entry
  const gy = y(1000).toFixed(1), g = legend[vs.length];
  o.push(`<line x1="${left}" x2="${width - right}" y1="${gy}" y2="${gy}" stroke="#d62728" stroke-dasharray="6 4"/>`);
  o.push(`<line x1="${g.x}" x2="${g.x + 12}" y1="${34 + 16 * g.row}" y2="${34 + 16 * g.row}" stroke="#d62728" stroke-width="2" stroke-dasharray="4 2"/><text x="${g.x + 16}" y="${38 + 16 * g.row}">${esc(goalLabel)}</text>`);
  groups.forEach((g, gi) => {
    const gx = left + gi * groupW + (groupW - vs.length * bar) / 2;
    g.vals.forEach((v, i) => {
      const x = gx + i * bar, yy = y(Math.max(v, lo));
      o.push(`<rect x="${x}" y="${yy.toFixed(1)}" width="${bar - 2}" height="${(top + plotH - yy).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${esc(`${g.label}, ${vs[i].key}: ${f1(v)} MIPS`)}</title></rect>`);
      o.push(`<text transform="translate(${x + bar / 2 + 3} ${(yy - 3).toFixed(1)}) rotate(-90)" font-size="9">${f1(v)}</text>`);
    });
    const cx = gx + (vs.length * bar) / 2;
    o.push(`<text transform="translate(${cx} ${top + plotH + 12}) rotate(30)" font-size="11"${g.label === "geomean" ? ' font-weight="bold"' : ""}>${esc(g.label)}</text>`);
  });
  o.push(`<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="#000"/>`);
  const notes = [
    compute.length > 1 ? `geomean: the ${compute.length} compute workloads${r.rows.some((x) => apart(x.w)) ? ` (${r.rows.filter((x) => apart(x.w)).map((x) => x.w.id).join(", ")} left out: exit-bound or floating point)` : ""}` : "",
    r.variants.some((v) => v.engine === "interp") ? "interp runs fewer passes (MIPS is a rate); JIT runs include compiling" : "JIT runs include compiling",
  ].filter(Boolean).join("; ");
  o.push(`<text x="${left}" y="${height - 8}" font-size="10" fill="#555">${esc(notes)}</text>`);
  o.push(`</svg>`);
  return o.join("\n") + "\n";
}

// ---- the command line -----------------------------------------------------------------------

function usage(msg: string): never {
  console.error(`${msg}\nUsage: bench.ts [--reps N] [--only ${[...WORKLOADS.map((w) => w.id), OUT_HOOK].join(",")}] [--engines ${ENGINE_IDS.join(",")}] [--mode protected|paged|both] [--quick] [--out DIR]`);
  process.exit(2);
}

async function main(argv: string[]) {
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    if (i + 1 >= argv.length) usage(`Missing value for ${name}`);
    return argv[i + 1];
  };
  const known = new Set(["--reps", "--only", "--engines", "--mode", "--out", "--quick", "--shapes", "--out-hook-child"]);
  for (const a of argv) if (a.startsWith("--") && !known.has(a)) usage(`Unknown option ${a}`);
  const reps = Number(opt("--reps") ?? 3);
  if (!Number.isInteger(reps) || reps < 1) usage(`Invalid --reps ${opt("--reps")}: expected a positive integer`);
  const quick = argv.includes("--quick");
  const shapes = argv.includes("--shapes");
  const only = opt("--only")?.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of only ?? []) if (n !== OUT_HOOK && !WORKLOADS.some((w) => w.id === n)) usage(`Unknown workload ${n}`);
  const engines = (opt("--engines") ?? "interp,jit,auto").split(",").map((s) => s.trim()).filter(Boolean) as EngineId[];
  for (const e of engines) if (!ENGINE_IDS.includes(e)) usage(`Unknown engine ${e}`);
  const modeArg = opt("--mode") ?? "protected";
  if (!["protected", "paged", "both"].includes(modeArg)) usage(`Unknown --mode ${modeArg}: use protected, paged or both`);
  const modes: Mode[] = modeArg === "both" ? ["protected", "paged"] : [modeArg as Mode];
  const variants: Variant[] = modes.flatMap((mode) => engines.map((engine) => ({ engine, mode, key: modes.length > 1 || mode === "paged" ? `${engine}${mode === "paged" ? " paged" : ""}` : engine })));
  const outDir = resolve(opt("--out") ?? fileURLToPath(new URL("../results/", import.meta.url)));
  const child = opt("--out-hook-child");
  if (child !== undefined) {
    // One variant's OUT measurement, in a process of its own (see outHookInChild).
    const v = variants.find((x) => x.key === child) ?? usage(`Unknown variant ${child}`);
    console.log(JSON.stringify(await outHookNs(v, reps, quick ? 20_000 : 200_000)));
    return;
  }

  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const runtime = isDeno
    ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
    : `bun ${(process.versions as Record<string, string>).bun}`;
  const date = new Date().toISOString().slice(0, 10);
  const cpu = cpus();
  const host = `${cpu.length} × ${cpu[0]?.model?.trim() ?? "unknown CPU"} (load average ${loadavg().map((x) => x.toFixed(1)).join(", ")} at the start)`;
  const command = `${isDeno ? "deno run -A" : "bun"} scripts/bench.ts${argv.length ? " " + argv.join(" ") : ""}`;

  const scale = quick ? 20 : 1;
  const rows: Row[] = [];
  const t0 = performance.now();
  for (const w of WORKLOADS) {
    if (only ? !only.includes(w.id) : w.shape && !shapes) continue;
    const row = await measure(w, variants, reps, scale);
    const jitV = variants.find((v) => v.engine === "jit");
    if (jitV !== undefined) row.cached = await cachedRun(w, jitV, row.passes[jitV.key]);
    rows.push(row);
    console.error(`${w.id}: ${variants.map((v) => `${v.key} ${f1(row.by[v.key].mips)}`).join(", ")} MIPS (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const report: Report = { runtime, date, command, reps, quick, host, variants, rows };
  if (!only || only.includes(OUT_HOOK)) {
    const outs = quick ? 20_000 : 200_000;
    report.outs = outs;
    report.outNs = {};
    report.outNsExec = {};
    report.outNsSteady = {};
    for (const v of variants) {
      const o = outHookInChild(v, argv);
      report.outNs[v.key] = o.ns;
      report.outNsExec[v.key] = o.exec;
      report.outNsSteady[v.key] = o.steady;
      if (o.cached !== undefined) (report.outNsCached ??= {})[v.key] = o.cached;
    }
    console.error(`out-hook: ${variants.map((v) => `${v.key} ${report.outNs![v.key].toFixed(0)} ns`).join(", ")}`);
  }

  report.loadAfter = loadavg()[0];
  const md = renderMarkdown(report);
  console.log(md);
  mkdirSync(outDir, { recursive: true });
  const base = `${outDir}/bench-${isDeno ? "deno" : "bun"}-${date}`;
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.svg`, renderSvg(report));
  const show = (p: string) => relative(process.cwd(), p) || p;
  console.log(`wrote ${show(`${base}.md`)} and ${show(`${base}.svg`)}`);
}

if (import.meta.main) await main(process.argv.slice(2));
