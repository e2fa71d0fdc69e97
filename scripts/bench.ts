/**
 * npm run bench: guest MIPS of the interpreter on the benchmark guests (tests/guests/pm_*.bin),
 * and nanoseconds per OUT handled by a userspace hook through the whole exit path.
 *
 *   npm run bench [-- --reps N] [--mode protected|paged|both]
 *
 * MIPS = retired guest instructions ÷ wall time of the run (median of N runs after one warm-up).
 * `--mode paged` runs the guests with CR0.PG on (identity-mapped 4 MiB pages, as `vmrun --mode
 * paged`); `--mode both` runs each workload in both modes, alternating, and adds a column with the
 * loss paging costs.
 */
import { readFileSync } from "node:fs";
import { Machine } from "../runtime/vmm/machine.ts";

const reps = Number(process.argv[process.argv.indexOf("--reps") + 1]) || 5;
const modeArg = process.argv.includes("--mode") ? process.argv[process.argv.indexOf("--mode") + 1] : "protected";
if (!["protected", "paged", "both"].includes(modeArg)) {
  console.error(`Unknown --mode ${modeArg}: use protected, paged or both`);
  process.exit(2);
}
type Mode = "protected" | "paged";
const modes: Mode[] = modeArg === "both" ? ["protected", "paged"] : [modeArg as Mode];
const dir = new URL("../tests/guests/", import.meta.url);
const load = (f: string) => new Uint8Array(readFileSync(new URL(f, dir)));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Sample { mips: number; insns: number; ms: number }
interface Row { name: string; by: Record<string, Sample> }

function mips(name: string, file: string, passes: number): Row {
  const img = load(file);
  const samples: Record<string, Sample[]> = {};
  for (let k = 0; k <= reps; k++) {
    for (const mode of modes) {
      const m = new Machine({ mode });
      m.load(img);
      m.vcpu.setRegs({ rdi: passes });
      const t = performance.now();
      const r = m.run();
      const ms = performance.now() - t;
      if (r.exit.reason !== "hlt") throw new Error(`${file} ended with ${r.exit.reason} (${mode})`);
      if (k > 0) (samples[mode] ??= []).push({ mips: r.instructions / ms / 1000, insns: r.instructions, ms });
    }
  }
  const by: Record<string, Sample> = {};
  for (const mode of modes) {
    const mid = median(samples[mode].map((s) => s.mips));
    by[mode] = samples[mode].find((x) => x.mips === mid)!;
  }
  return { name, by };
}

function outExitNs(): { ns: number; outs: number } {
  // pm_outloop does ECX OUTs to port 0x80 per pass; move the POST port to a userspace hook.
  const img = load("pm_outloop.bin");
  const samples: number[] = [];
  let outs = 0;
  for (let k = 0; k <= reps; k++) {
    const m = new Machine({ mode: modes[0], devices: { post: false } });
    m.load(img);
    let n = 0;
    m.onIo({ port: 0x80, direction: "out", handler: () => { n++; } });
    m.vcpu.setRegs({ rcx: 200000, rdi: 1 });
    const t = performance.now();
    m.run();
    const ms = performance.now() - t;
    outs = n;
    if (k > 0) samples.push((ms * 1e6) / n);
  }
  return { ns: median(samples), outs };
}

const rows = [
  mips("sieve (65536, 5 passes)", "pm_sieve.bin", 5),
  mips("crc32 bitwise (4 KiB, 20 passes)", "pm_crc32.bin", 20),
  mips("fib(24) recursive (3 passes)", "pm_fib.bin", 3),
  mips("memcpy 64 KiB rep movsd + byte loop (5 passes)", "pm_memcpy.bin", 5),
];
const geo = (mode: string) => Math.exp(rows.reduce((a, r) => a + Math.log(r.by[mode].mips), 0) / rows.length);
const out = outExitNs();
const rt = typeof (globalThis as { Deno?: { version: { deno: string } } }).Deno !== "undefined"
  ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
  : `bun ${(process.versions as Record<string, string>).bun}`;
console.log(`vmxlab interpreter benchmark (${rt}, ${modes.join(" and ")} mode, median of ${reps} runs after a warm-up)`);
if (modes.length === 1) {
  const md = modes[0];
  console.log("| workload | guest instructions | ms | MIPS |");
  console.log("|---|---:|---:|---:|");
  for (const r of rows) console.log(`| ${r.name} | ${r.by[md].insns} | ${r.by[md].ms.toFixed(1)} | ${r.by[md].mips.toFixed(1)} |`);
  console.log(`| geometric mean | | | ${geo(md).toFixed(1)} |`);
} else {
  const loss = (a: number, b: number) => `${((1 - b / a) * 100).toFixed(0)}%`;
  console.log("| workload | guest instructions | MIPS unpaged | MIPS paged | paging loss |");
  console.log("|---|---:|---:|---:|---:|");
  for (const r of rows) {
    const u = r.by.protected.mips, p = r.by.paged.mips;
    console.log(`| ${r.name} | ${r.by.protected.insns} | ${u.toFixed(1)} | ${p.toFixed(1)} | ${loss(u, p)} |`);
  }
  console.log(`| geometric mean | | ${geo("protected").toFixed(1)} | ${geo("paged").toFixed(1)} | ${loss(geo("protected"), geo("paged"))} |`);
}
console.log(`OUT to a userspace hook, whole exit path: ${out.ns.toFixed(0)} ns per OUT (${out.outs} OUTs)`);
