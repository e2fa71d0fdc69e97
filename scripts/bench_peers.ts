/**
 * vmxlab against QEMU's TCG on the same guests, in one interleaved run (issue 15): for each
 * workload and each repetition, QEMU (`qemu-system-i386 -accel tcg`, if installed) runs the guest
 * at two pass counts and vmxlab runs it under each engine in a fresh Machine; MIPS come from
 * vmxlab's exact instruction count. Prints a markdown table (with the command, the date and the
 * load average) and writes it under results/.
 *
 *   deno run -A scripts/bench_peers.ts [--reps N] [--only W,…] [--engines interp,jit,auto] [--qemu PATH] [--out DIR]
 *
 * QEMU boots each guest through its multiboot loader: the flat binary (org 0x100000) gets a
 * multiboot header with the a.out kludge placed after its last byte, and an entry stub that sets
 * the pass count (EDI, and ECX for the OUT loop) and jumps to 0x100000; the guest prints on the
 * debug console at port 0xE9 (`-debugcon`), as under vmxlab. A QEMU figure is
 * (instructions(N) − instructions(1)) ÷ (time to the guest's last output byte at N passes − at 1
 * pass), so QEMU's start-up and the first pass's translation cancel out; vmxlab's figure is its
 * bench.ts figure (instructions ÷ wall time of `Machine.run()`, compiling included). The
 * real-mode sieve is left out (the multiboot loader enters protected mode). v86 is not measured
 * (it needs BIOS images the project does not have).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { Machine } from "../runtime/vmm/machine.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";
import { image, type Workload, WORKLOADS } from "./bench.ts";

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const reps = Number(opt("--reps") ?? 3);
const engines = (opt("--engines") ?? "interp,jit,auto").split(",") as ("interp" | "jit" | "auto")[];
const qemuPath = opt("--qemu") ?? "/usr/bin/qemu-system-i386";
const outDir = opt("--out") ?? new URL("../results/", import.meta.url).pathname;
const only = opt("--only")?.split(",");
const workloads = WORKLOADS.filter((w) => !w.real && !w.exitBound && (only ? only.includes(w.id) : true));
const haveQemu = existsSync(qemuPath);
const expected: Record<string, { stdout: string }> = JSON.parse(readFileSync(new URL("../tests/guests/expected.json", import.meta.url), "utf8"));

/** The guest with a multiboot header (a.out kludge) after its bytes and an entry stub setting EDI/ECX. */
function multibootImage(raw: Uint8Array, edi: number, ecx: number): Uint8Array {
  const LOAD = 0x100000;
  const hdrOff = (raw.length + 15) & ~15;
  const stubOff = hdrOff + 32;
  const total = stubOff + 16;
  if (hdrOff + 32 > 8192) throw new Error("guest too large for a multiboot header in its first 8 KiB");
  const img = new Uint8Array(total);
  img.set(raw);
  const dv = new DataView(img.buffer);
  const magic = 0x1badb002, flags = 0x00010000;
  [magic, flags, (-(magic + flags)) >>> 0, LOAD + hdrOff, LOAD, LOAD + total, LOAD + total, LOAD + stubOff].forEach((v, k) => dv.setUint32(hdrOff + 4 * k, v >>> 0, true));
  // mov edi, imm32; mov ecx, imm32; jmp LOAD
  img[stubOff] = 0xbf;
  dv.setUint32(stubOff + 1, edi >>> 0, true);
  img[stubOff + 5] = 0xb9;
  dv.setUint32(stubOff + 6, ecx >>> 0, true);
  img[stubOff + 10] = 0xe9;
  dv.setInt32(stubOff + 11, LOAD - (LOAD + stubOff + 15), true);
  return img;
}

/** Wall ms from spawning QEMU to the guest's last expected output byte. */
function qemuRun(w: Workload, passes: number): Promise<number> {
  const raw = image(w.file);
  const file = `/tmp/vmxlab-peer-${process.pid}-${w.id}-${passes}.bin`;
  writeFileSync(file, multibootImage(raw, passes, w.regs?.rcx ?? 0));
  const want = expected[w.file].stdout;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const q = spawn(qemuPath, ["-accel", "tcg", "-m", "64", "-display", "none", "-nodefaults", "-no-reboot", "-debugcon", "stdio", "-kernel", file], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", done = false;
    const timer = setTimeout(() => { q.kill("SIGKILL"); if (!done) reject(new Error(`qemu timed out on ${w.id}: ${JSON.stringify(out)}`)); }, 300_000);
    q.stdout.on("data", (d: Uint8Array) => {
      out += new TextDecoder().decode(d);
      if (!done && out.length >= want.length) {
        done = true;
        const ms = performance.now() - t0;
        clearTimeout(timer);
        q.kill("SIGKILL");
        if (out !== want) reject(new Error(`qemu printed ${JSON.stringify(out)} for ${w.id}, expected ${JSON.stringify(want)}`));
        else resolve(ms);
      }
    });
    q.on("exit", () => { if (!done) { clearTimeout(timer); reject(new Error(`qemu exited early on ${w.id}: ${JSON.stringify(out)}`)); } });
  });
}

/** vmxlab: instructions and wall ms of one fresh-Machine run. */
function vmxlabRun(w: Workload, engine: "interp" | "jit" | "auto", passes: number): { insns: number; ms: number } {
  const m = new Machine({ mode: "protected", engine, jit: { codeCache: false } });
  m.load(image(w.file), { format: "raw" });
  m.vcpu.setRegs({ ...w.regs, rdi: passes });
  const t0 = performance.now();
  const r = m.run({ budget: 1e13 });
  const ms = performance.now() - t0;
  if (m.console !== expected[w.file].stdout) throw new Error(`${w.id} under ${engine} printed ${JSON.stringify(m.console)}`);
  return { insns: r.instructions, ms };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
if (engines.some((e) => e !== "interp")) await loadJit();
const cpu = cpus();
const loadBefore = loadavg()[0];
const started = new Date().toISOString();
const command = `${"Deno" in globalThis ? "deno run -A" : "bun"} scripts/bench_peers.ts${argv.length ? " " + argv.join(" ") : ""}`;
interface Line { w: Workload; qemu?: number; by: Record<string, number> }
const lines: Line[] = [];
for (const w of workloads) {
  // Instructions are linear in the pass count: two exact counts give them for any count.
  const i1 = vmxlabRun(w, "jit", 1).insns, i2 = vmxlabRun(w, "jit", 2).insns;
  const insnsAt = (n: number) => i1 + (i2 - i1) * (n - 1);
  const samples: Record<string, number[]> = { qemu: [] };
  for (const e of engines) samples[e] = [];
  for (let r = 0; r < reps; r++) {
    if (haveQemu) {
      const tN = await qemuRun(w, w.passes), t1 = await qemuRun(w, 1);
      samples.qemu.push((insnsAt(w.passes) - insnsAt(1)) / (tN - t1) / 1000);
    }
    for (const e of engines) {
      const passes = e === "interp" ? w.interpPasses : w.passes;
      const s = vmxlabRun(w, e, passes);
      samples[e].push(s.insns / s.ms / 1000);
    }
  }
  const line: Line = { w, qemu: haveQemu ? median(samples.qemu) : undefined, by: {} };
  for (const e of engines) line.by[e] = median(samples[e]);
  lines.push(line);
  console.error(`${w.id}: ${haveQemu ? `qemu ${line.qemu!.toFixed(0)}, ` : ""}${engines.map((e) => `${e} ${line.by[e].toFixed(0)}`).join(", ")} MIPS`);
}

const geo = (xs: number[]) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
const f0 = (x: number) => x >= 100 ? x.toFixed(0) : x.toFixed(1);
const L: string[] = [];
L.push(`# vmxlab against QEMU TCG, ${started.slice(0, 10)}`, "");
L.push(`\`${command}\`, started ${started}, on ${cpu.length} × ${cpu[0]?.model?.trim() ?? "unknown CPU"}; load average (1 min) ${loadBefore.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end. Medians of ${reps}, interleaved (each repetition runs QEMU, then each engine, workload by workload).`);
L.push(`QEMU: ${haveQemu ? `${qemuPath} -accel tcg (multiboot, debugcon), MIPS from two pass counts (start-up cancels out)` : "not installed: not measured"}. vmxlab: a fresh Machine per run, JIT figures include compiling, the code cache off; the interpreter runs a tenth of the passes.`, "");
const bestOf = (l: Line) => Math.max(...engines.filter((e) => e !== "interp").map((e) => l.by[e]));
const jitEngines = engines.filter((e) => e !== "interp");
L.push(`| workload | ${haveQemu ? "QEMU TCG MIPS | " : ""}${engines.map((e) => `vmxlab ${e} MIPS`).join(" | ")} |${haveQemu && jitEngines.length ? " best vmxlab / QEMU |" : ""}`);
L.push(`|---|${haveQemu ? "---:|" : ""}${engines.map(() => "---:").join("|")}|${haveQemu && jitEngines.length ? "---:|" : ""}`);
for (const l of lines) {
  L.push(`| ${l.w.label} | ${haveQemu ? `${f0(l.qemu!)} | ` : ""}${engines.map((e) => f0(l.by[e])).join(" | ")} |${haveQemu && jitEngines.length ? ` ${(bestOf(l) / l.qemu!).toFixed(2)} |` : ""}`);
}
const main = lines.filter((l) => !l.w.shape);
if (main.length > 1) {
  const g = (f: (l: Line) => number) => geo(main.map(f));
  L.push(`| **geometric mean** (${main.length} workloads${lines.length > main.length ? ", shapes left out" : ""}) | ${haveQemu ? `**${f0(g((l) => l.qemu!))}** | ` : ""}${engines.map((e) => `**${f0(g((l) => l.by[e]))}**`).join(" | ")} |${haveQemu && jitEngines.length ? ` **${(g(bestOf) / g((l) => l.qemu!)).toFixed(2)}** |` : ""}`);
}
const md = L.join("\n") + "\n";
console.log(md);
mkdirSync(outDir, { recursive: true });
const file = `${outDir}/peers-${"Deno" in globalThis ? "deno" : "bun"}-${started.slice(0, 10)}.md`;
writeFileSync(file, md);
console.error(`wrote ${file}`);
