/**
 * In-process A/B of the OUT exit path, or with `--mips` of the benchmark's workloads: this tree
 * against another revision, samples interleaved in one process. On a shared machine that is the comparison steady enough for changes of a few ns:
 * separate processes of the same code can differ by far more (V8 optimising in a different order,
 * neighbours on the host).
 *
 *   deno run -A scripts/bench_ab.ts --rev HEAD~1 [--engine jit|auto|interp] [--rounds N] [--outs N] [--swap]
 *   deno run -A scripts/bench_ab.ts --base DIR …   (DIR: another checkout, with node_modules)
 *   deno run -A scripts/bench_ab.ts --rev HEAD~1 --mips sieve,fib [--engine auto] [--rounds N]
 *
 * `--rev` extracts the revision with `git archive` into a temporary directory and links this tree's
 * node_modules into it. Each round runs
 * one sample of each tree (a fresh Machine, pm_outloop with `--outs` OUTs to a userspace hook),
 * in that order or, with `--swap`, the other; the figure is wall time less compile time ÷ OUTs.
 * Prints both medians and mins and the median of the per-round ratios new/base.
 *
 * `--mips W,…` (bench.ts workload ids, or `all` for the eight compute workloads) runs each
 * workload instead, a fresh Machine per sample with the code cache off, so that the figure is
 * bench.ts's: guest instructions ÷ wall time, compiling included; prints the median MIPS of each
 * tree, the median ratio per workload and the geometric mean of those ratios.
 */
import { execSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { image, type Workload, WORKLOADS } from "./bench.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
};
const here = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const engine = arg("--engine", "jit");
const rounds = Number(arg("--rounds", "15"));
const outs = Number(arg("--outs", "200000"));
const swap = process.argv.includes("--swap");
const mips = arg("--mips", "");
const rev = arg("--rev", "");
let base = arg("--base", "");
let temp = "";
if (rev !== "") {
  temp = mkdtempSync(join(tmpdir(), "vmxlab-bench-ab-"));
  execSync(`git archive ${JSON.stringify(rev)} | tar -x -C ${JSON.stringify(temp)}`, { cwd: here, stdio: "inherit", shell: "/bin/bash" });
  symlinkSync(join(here, "node_modules"), join(temp, "node_modules"));
  base = temp;
}
if (base === "" || !existsSync(join(base, "runtime/vmm/machine.ts"))) {
  console.error("usage: bench_ab.ts --rev REV | --base DIR [--engine jit|auto|interp] [--rounds N] [--outs N] [--swap] [--mips W,…|all]");
  process.exit(2);
}

const img = image("pm_outloop.bin");

/** Where a tree keeps `loadJit` (runtime/vmm/tiering.ts; jit/mod.ts in revisions before the move). */
function tieringOf(root: string): string {
  return existsSync(join(root, "runtime/vmm/tiering.ts")) ? "runtime/vmm/tiering.ts" : "jit/mod.ts";
}

/** One sample function per tree: a fresh Machine running `outs` OUTs to a hook; ns per OUT without compiling. */
async function sampler(root: string): Promise<() => number> {
  const url = (p: string) => pathToFileURL(join(root, p)).href;
  const { Machine } = await import(url("runtime/vmm/machine.ts"));
  if (engine !== "interp") await (await import(url(tieringOf(root)))).loadJit();
  return () => {
    const m = new Machine({ mode: "protected", devices: { post: false }, engine });
    m.load(img);
    let n = 0;
    m.onIo({ port: 0x80, direction: "out", handler: () => { n++; } });
    m.vcpu.setRegs({ rcx: outs, rdi: 1 });
    const t = performance.now();
    m.run();
    const ms = performance.now() - t - (m.jitStats?.compileMs ?? 0);
    if (n !== outs) throw new Error(`${root}: ${n} OUTs, expected ${outs}`);
    return (ms * 1e6) / outs;
  };
}

/** Per tree, a function running workload `w` once on a fresh Machine; returns its MIPS. */
async function mipsSampler(root: string): Promise<(w: Workload) => number> {
  const url = (p: string) => pathToFileURL(join(root, p)).href;
  const { Machine } = await import(url("runtime/vmm/machine.ts"));
  if (engine !== "interp") await (await import(url(tieringOf(root)))).loadJit();
  return (w) => {
    const m = new Machine({ mode: w.real ? "real" : "protected" });
    m.load(image(w.file));
    m.vcpu.setRegs({ ...m.vcpu.getRegs(), ...w.regs, rdi: engine === "interp" ? w.interpPasses : w.passes });
    if (engine !== "interp") m.setEngine(engine, { codeCache: false });
    const t = performance.now();
    const r = m.run();
    if (r.exit.reason !== "hlt") throw new Error(`${root}: ${w.id} ended with ${r.exit.reason}`);
    return r.instructions / (performance.now() - t) / 1000;
  };
}

async function compareMips(): Promise<void> {
  const ws = mips === "all" ? WORKLOADS.filter((w) => !w.exitBound && !w.shape && !w.float) : mips.split(",").map((id) => {
    const w = WORKLOADS.find((x) => x.id === id);
    if (!w) throw new Error(`Unknown workload ${id} (${WORKLOADS.map((x) => x.id).join(", ")})`);
    return w;
  });
  const a = await mipsSampler(base), b = await mipsSampler(here);
  const med = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1];
  console.log(`MIPS, engine ${engine}, ${rounds} rounds${swap ? " (this tree first)" : ""}, a fresh Machine per sample, compiling included:`);
  const ratios: number[] = [];
  for (const w of ws) {
    a(w), b(w); // warm-up
    const xs: number[] = [], ys: number[] = [];
    for (let i = 0; i < rounds; i++) {
      if (swap) { ys.push(b(w)); xs.push(a(w)); } else { xs.push(a(w)); ys.push(b(w)); }
    }
    const r = med(xs.map((x, i) => ys[i] / x));
    ratios.push(r);
    console.log(`  ${w.id}: base ${med(xs).toFixed(0)}, this tree ${med(ys).toFixed(0)}, this/base ${r.toFixed(3)}`);
  }
  console.log(`  geometric mean of this/base: ${Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length).toFixed(3)}`);
}

try {
  if (mips !== "") {
    await compareMips();
  } else {
    const a = await sampler(base), b = await sampler(here);
    const xs: number[] = [], ys: number[] = [];
    for (let i = 0; i < rounds + 2; i++) {
      let x: number, y: number;
      if (swap) { y = b(); x = a(); } else { x = a(); y = b(); }
      if (i >= 2) { xs.push(x); ys.push(y); }
    }
    const med = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1];
    const ratio = med(xs.map((x, i) => ys[i] / x));
    console.log(`OUT to a hook, engine ${engine}, ${outs} OUTs, ${rounds} rounds${swap ? " (this tree first)" : ""}, ns per OUT without compiling:`);
    console.log(`  base ${rev || base}: median ${med(xs).toFixed(1)}, min ${Math.min(...xs).toFixed(1)}`);
    console.log(`  this tree: median ${med(ys).toFixed(1)}, min ${Math.min(...ys).toFixed(1)}`);
    console.log(`  this/base, median of the rounds: ${ratio.toFixed(3)}`);
  }
} finally {
  if (temp !== "") rmSync(temp, { recursive: true, force: true });
}
