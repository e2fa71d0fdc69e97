/**
 * bench:linux — boot the test Linux guest (tests/guests/linux) to its shell prompt under each engine
 * and under QEMU TCG, in the same run, and report instructions, wall time and MIPS.
 *
 *   npm run bench:linux [-- --engines interp,auto,jit --reps 1 --no-qemu --out DIR]
 *
 * Each vmxlab engine runs in its own process (`vmrun --kernel ... --prompt ... --serial-input ""`,
 * which ends at the first prompt), so that a crash of one engine is that engine's result, and the
 * wall time is measured the way QEMU's is: from spawning the process to the prompt appearing on its
 * stdout. The in-process time from the machine's start to the prompt, and the instructions retired
 * by then (vmrun --json), give the MIPS. QEMU (`qemu-system-i386 -cpu pentium3,family=15,model=3,
 * stepping=4 -nographic -no-reboot`; QEMU 7.2 has no pentium4 model) boots the same kernel and
 * initramfs through SeaBIOS; its kernel finds an x87 and uses it, where vmxlab's emulates it.
 * Results go to results/linux-<runtime>-<date>.md and .json.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import process from "node:process";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const KERNEL = "tests/guests/linux/bzImage";
const INITRD = "tests/guests/linux/initramfs.cpio.gz";
const CMDLINE = "console=ttyS0 quiet";
const PROMPT = "vmxlab# ";
const TIMEOUT_MS = 600_000;

interface Row {
  name: string;
  ok: boolean;
  /** Instructions to the prompt (vmxlab only). */
  instructions: number | null;
  /** From spawning the process to the prompt on its stdout. */
  wallMs: number | null;
  /** From the machine's start to the prompt (vmrun's own measure). */
  runMs: number | null;
  mips: number | null;
  note: string;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Spawn `cmd`, resolve when `PROMPT` shows on stdout (or the process ends), then end the process. */
function untilPrompt(cmd: string, args: string[], waitExit: boolean): Promise<{ promptMs: number | null; stdout: string; stderr: string; code: number | null }> {
  return new Promise((done) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: REPO, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "", stderr = "", promptMs: number | null = null;
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    child.stdout.on("data", (d: Uint8Array) => {
      stdout += new TextDecoder().decode(d);
      if (promptMs === null && stdout.includes(PROMPT)) {
        promptMs = performance.now() - t0;
        if (!waitExit) child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (d: Uint8Array) => { stderr += new TextDecoder().decode(d); });
    child.on("close", (code: number | null) => {
      clearTimeout(timer);
      done({ promptMs, stdout, stderr, code });
    });
  });
}

async function vmxlab(engine: string): Promise<Row> {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const runtime = process.execPath;
  const args = [...(isDeno ? ["run", "-A", "--no-check"] : []), "scripts/vmrun.ts", "--engine", engine, "--kernel", KERNEL,
    "--initrd", INITRD, "--append", CMDLINE, "--prompt", PROMPT, "--serial-input", "", "--json"];
  const r = await untilPrompt(runtime, args, true);
  const last = r.stdout.trimEnd().split("\n").pop() ?? "";
  let rep: { prompt?: { instructions: number | null; wallMs: number | null } } | null = null;
  try { rep = JSON.parse(last); } catch { /* a crash: no report */ }
  const p = rep?.prompt;
  if (r.promptMs === null || !p || p.instructions === null || p.wallMs === null) {
    const why = (r.stderr.match(/(Aborted\([^)]*\)|error: [^\n]*)/)?.[1] ?? `exit status ${r.code}`).slice(0, 160);
    return { name: engine, ok: false, instructions: null, wallMs: null, runMs: null, mips: null, note: `no prompt: ${why}` };
  }
  return {
    name: engine, ok: true, instructions: p.instructions, wallMs: r.promptMs, runMs: p.wallMs,
    mips: p.instructions / (p.wallMs * 1000), note: "",
  };
}

async function qemu(): Promise<Row> {
  const args = ["-cpu", "pentium3,family=15,model=3,stepping=4", "-m", "128", "-kernel", KERNEL, "-initrd", INITRD,
    "-append", CMDLINE, "-nographic", "-no-reboot", "-accel", "tcg"];
  let r;
  try {
    r = await untilPrompt("qemu-system-i386", args, false);
  } catch (e) {
    return { name: "qemu-tcg", ok: false, instructions: null, wallMs: null, runMs: null, mips: null, note: String(e) };
  }
  if (r.promptMs === null) {
    return { name: "qemu-tcg", ok: false, instructions: null, wallMs: null, runMs: null, mips: null, note: `no prompt (${r.stderr.trim().split("\n")[0] ?? r.code})` };
  }
  return { name: "qemu-tcg", ok: true, instructions: null, wallMs: r.promptMs, runMs: null, mips: null, note: "SeaBIOS, real-mode setup and an x87 included" };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const engines = (arg("--engines") ?? "interp,auto,jit").split(",");
  const reps = Number(arg("--reps") ?? 1);
  const rows: Row[] = [];
  const load0 = loadavg()[0];
  for (const name of [...engines, ...(process.argv.includes("--no-qemu") ? [] : ["qemu-tcg"])]) {
    const runs: Row[] = [];
    for (let k = 0; k < reps; k++) {
      const row = name === "qemu-tcg" ? await qemu() : await vmxlab(name);
      runs.push(row);
      console.error(`${name} #${k + 1}: ${row.ok ? `${row.instructions ?? "-"} instructions, ${row.wallMs!.toFixed(0)} ms to the prompt` : row.note}`);
      if (!row.ok) break;
    }
    const ok = runs.filter((r) => r.ok);
    if (ok.length === 0) { rows.push(runs[0]); continue; }
    const wall = median(ok.map((r) => r.wallMs!));
    const best = ok.find((r) => r.wallMs === wall)!;
    rows.push({ ...best, note: best.note + (ok.length > 1 ? ` (median of ${ok.length})` : "") });
  }
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const runtime = isDeno ? `Deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}` : `Bun ${process.versions.bun}`;
  const date = new Date().toISOString();
  const fmt = (n: number | null, d = 0) => n === null ? "—" : n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  const lines = [
    `# Linux boot to the shell prompt (${runtime}, ${date.slice(0, 16).replace("T", " ")} UTC)`,
    "",
    `Kernel \`${KERNEL}\` and \`${INITRD}\`, command line \`${CMDLINE}\`, 128 MiB; host ${cpus()[0]?.model ?? "?"} ×${cpus().length}, ` +
      `load average ${load0.toFixed(1)} at the start and ${loadavg()[0].toFixed(1)} at the end (other work on the host slows the rows, not necessarily alike).`,
    "Wall: from spawning the process to the prompt on its stdout. Run: vmrun's own time from the machine's start.",
    "",
    "| engine | instructions to the prompt | wall (ms) | run (ms) | MIPS | note |",
    "|---|---:|---:|---:|---:|---|",
    ...rows.map((r) => `| ${r.name} | ${fmt(r.instructions)} | ${fmt(r.wallMs)} | ${fmt(r.runMs)} | ${fmt(r.mips, 1)} | ${r.note} |`),
    "",
  ];
  const md = lines.join("\n");
  console.log(md);
  const outDir = resolve(arg("--out") ?? `${REPO}/results`);
  mkdirSync(outDir, { recursive: true });
  const base = `${outDir}/linux-${isDeno ? "deno" : "bun"}-${date.slice(0, 10)}`;
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.json`, JSON.stringify({ date, runtime, kernel: KERNEL, initrd: INITRD, cmdline: CMDLINE, rows }, null, 2) + "\n");
  console.error(`wrote ${base}.md and .json`);
}

if (import.meta.main) await main();
