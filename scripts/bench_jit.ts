/**
 * npm run bench:jit: guest MIPS of the interpreter and the JIT (jit: compile on first sight; auto:
 * compile hot blocks; jit without callouts: end a compiled block before any instruction outside the
 * translated subset) on the benchmark guests, with the geometric mean and the JIT's compile cost
 * (ms per block, blocks per wasm module), and the nanoseconds an OUT to a userspace hook costs under
 * each engine (pm_outloop, the whole exit path).
 *
 *   npm run bench:jit [-- --reps N]
 *
 * Each sample is a fresh Machine, so JIT figures include compiling (the "compile" column is that
 * part); medians of N runs after one warm-up run.
 */
import { readFileSync } from "node:fs";
import { Machine } from "../runtime/vmm/machine.ts";
import { useEngine, type JitEngine } from "../jit/mod.ts";

const reps = Number(process.argv[process.argv.indexOf("--reps") + 1]) || 5;
const dir = new URL("../tests/guests/", import.meta.url);
const load = (f: string) => new Uint8Array(readFileSync(new URL(f, dir)));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

type Eng = "interp" | "jit" | "auto" | "jit-nocallout";
const ENGS: Eng[] = ["interp", "jit", "auto", "jit-nocallout"];
const work = [
  { name: "sieve (65536, 20 passes)", file: "pm_sieve.bin", mode: "protected" as const, passes: 20 },
  { name: "crc32 bitwise (4 KiB, 50 passes)", file: "pm_crc32.bin", mode: "protected" as const, passes: 50 },
  { name: "fib(24) recursive (6 passes)", file: "pm_fib.bin", mode: "protected" as const, passes: 6 },
  { name: "memcpy rep movsd + byte loop (10 passes)", file: "pm_memcpy.bin", mode: "protected" as const, passes: 10 },
  { name: "sieve, paged (20 passes)", file: "pm_sieve.bin", mode: "paged" as const, passes: 20 },
];
interface Sample { mips: number; compileMs: number; blocks: number; regions: number; insns: number }
const rows: { name: string; by: Record<string, Sample> }[] = [];
for (const w of work) {
  const img = load(w.file);
  const samples: Record<string, Sample[]> = {};
  for (let k = 0; k <= reps; k++) {
    for (const eng of ENGS) {
      const m = new Machine({ mode: w.mode });
      m.load(img);
      m.vcpu.setRegs({ rdi: w.passes });
      const j: JitEngine | null = await useEngine(m, eng === "jit-nocallout" ? "jit" : eng, { callout: eng !== "jit-nocallout" });
      const t = performance.now();
      const r = m.run();
      const ms = performance.now() - t;
      if (r.exit.reason !== "hlt") throw new Error(`${w.file} ended with ${r.exit.reason} under ${eng}`);
      const s = j?.stats;
      if (k > 0) (samples[eng] ??= []).push({ mips: r.instructions / ms / 1000, compileMs: s?.compileMs ?? 0, blocks: s?.blocks ?? 0, regions: s?.regions ?? 0, insns: r.instructions });
    }
  }
  const by: Record<string, Sample> = {};
  for (const eng of ENGS) {
    const mid = median(samples[eng].map((s) => s.mips));
    by[eng] = samples[eng].find((x) => x.mips === mid)!;
  }
  rows.push({ name: w.name, by });
}
const geo = (eng: string) => Math.exp(rows.reduce((a, r) => a + Math.log(r.by[eng].mips), 0) / rows.length);
const rt = typeof (globalThis as { Deno?: { version: { deno: string } } }).Deno !== "undefined"
  ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
  : `bun ${(process.versions as Record<string, string>).bun}`;
console.log(`vmxlab JIT benchmark (${rt}, median of ${reps} runs after a warm-up; JIT runs include compiling)`);
console.log(`| workload | instructions | ${ENGS.map((e) => `MIPS ${e}`).join(" | ")} | jit compile ms | jit blocks | blocks/module | ms/block |`);
console.log(`|---|---:|${ENGS.map(() => "---:").join("|")}|---:|---:|---:|---:|`);
for (const r of rows) {
  const j = r.by.jit;
  console.log(`| ${r.name} | ${r.by.interp.insns} | ${ENGS.map((e) => r.by[e].mips.toFixed(1)).join(" | ")} | ${j.compileMs.toFixed(1)} | ${j.blocks} | ${(j.blocks / Math.max(1, j.regions)).toFixed(1)} | ${(j.compileMs / Math.max(1, j.blocks)).toFixed(2)} |`);
}
console.log(`| geometric mean | | ${ENGS.map((e) => geo(e).toFixed(1)).join(" | ")} | | | | |`);
console.log(`jit/interp: ${(geo("jit") / geo("interp")).toFixed(2)}x, auto/interp: ${(geo("auto") / geo("interp")).toFixed(2)}x`);
const execGeo = Math.exp(rows.reduce((a, r) => {
  const j = r.by.jit;
  return a + Math.log(j.insns / Math.max(1e-3, j.insns / j.mips / 1000 - j.compileMs) / 1000);
}, 0) / rows.length);
console.log(`jit without its compile time (instructions / (run ms - compile ms)): ${execGeo.toFixed(1)} MIPS geometric mean`);

// OUT to a userspace hook: pm_outloop does ECX OUTs to port 0x80 per pass, with the POST port moved to a hook.
const outImg = load("pm_outloop.bin");
const outNs: string[] = [];
for (const eng of ["interp", "jit", "auto"] as const) {
  const xs: number[] = [];
  for (let k = 0; k <= reps; k++) {
    const m = new Machine({ mode: "protected", devices: { post: false } });
    m.load(outImg);
    let n = 0;
    m.onIo({ port: 0x80, direction: "out", handler: () => { n++; } });
    m.vcpu.setRegs({ rcx: 200_000, rdi: 1 });
    await useEngine(m, eng);
    const t = performance.now();
    m.run();
    if (k > 0) xs.push((performance.now() - t) * 1e6 / n);
  }
  outNs.push(`${eng} ${median(xs).toFixed(0)}`);
}
console.log(`OUT to a userspace hook, whole exit path, ns per OUT: ${outNs.join(", ")}`);
