/**
 * npm run bench: guest MIPS of the interpreter on the benchmark guests (tests/guests/pm_*.bin),
 * and nanoseconds per OUT handled by a userspace hook through the whole exit path.
 *
 *   npm run bench [-- --reps N]
 *
 * MIPS = retired guest instructions ÷ wall time of the run (median of N runs after one warm-up).
 */
import { readFileSync } from "node:fs";
import { Machine } from "../runtime/vmm/machine.ts";

const reps = Number(process.argv[process.argv.indexOf("--reps") + 1]) || 5;
const dir = new URL("../tests/guests/", import.meta.url);
const load = (f: string) => new Uint8Array(readFileSync(new URL(f, dir)));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row { name: string; mips: number; insns: number; ms: number }

function mips(name: string, file: string, passes: number): Row {
  const img = load(file);
  const samples: { mips: number; insns: number; ms: number }[] = [];
  for (let k = 0; k <= reps; k++) {
    const m = new Machine({ mode: "protected" });
    m.load(img);
    m.vcpu.setRegs({ rdi: passes });
    const t = performance.now();
    const r = m.run();
    const ms = performance.now() - t;
    if (r.exit.reason !== "hlt") throw new Error(`${file} ended with ${r.exit.reason}`);
    if (k > 0) samples.push({ mips: r.instructions / ms / 1000, insns: r.instructions, ms });
  }
  const mid = median(samples.map((s) => s.mips));
  const s = samples.find((x) => x.mips === mid)!;
  return { name, mips: mid, insns: s.insns, ms: s.ms };
}

function outExitNs(): { ns: number; outs: number } {
  // pm_outloop does ECX OUTs to port 0x80 per pass; move the POST port to a userspace hook.
  const img = load("pm_outloop.bin");
  const samples: number[] = [];
  let outs = 0;
  for (let k = 0; k <= reps; k++) {
    const m = new Machine({ mode: "protected", devices: { post: false } });
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
const geo = Math.exp(rows.reduce((a, r) => a + Math.log(r.mips), 0) / rows.length);
const out = outExitNs();
const rt = typeof (globalThis as { Deno?: { version: { deno: string } } }).Deno !== "undefined"
  ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
  : `bun ${(process.versions as Record<string, string>).bun}`;
console.log(`vmxlab interpreter benchmark (${rt}, median of ${reps} runs after a warm-up)`);
console.log("| workload | guest instructions | ms | MIPS |");
console.log("|---|---:|---:|---:|");
for (const r of rows) console.log(`| ${r.name} | ${r.insns} | ${r.ms.toFixed(1)} | ${r.mips.toFixed(1)} |`);
console.log(`| geometric mean | | | ${geo.toFixed(1)} |`);
console.log(`OUT to a userspace hook, whole exit path: ${out.ns.toFixed(0)} ns per OUT (${out.outs} OUTs)`);
