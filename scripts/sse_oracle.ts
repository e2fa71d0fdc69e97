/**
 * npm run oracle:sse -- [--count N] [--sequences N] [--exceptions N] [--seed S] [--engine interp|jit] [--verbose]
 *
 * The host processor as the oracle for MMX/SSE/SSE2/SSE3: builds tests/sse_oracle/oracle.c with
 * `gcc -m32` (Debian: gcc-multilib), runs it for N vectors per instruction form (default 100) and
 * N random sequences over XMM0-7 (default 20,000) and N vectors per floating-point form with
 * exceptions unmasked (default 50: #XM taken or not, MXCSR at the fault) with seed S, runs the
 * same bytes under vmxlab
 * and compares every register, MXCSR, the arithmetic flags and EAX bit for bit. Prints the
 * counts and the first differences (all with --verbose). Exit status 1 when anything differs,
 * 2 on a usage error or when gcc is missing. The committed sample (vectors.txt, sequences.txt) is
 * what `npm test` checks.
 */
import process from "node:process";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CpuHarness } from "../tests/cpu_harness.ts";
import { loadSequences, loadVectors, type Mismatch, runExceptionVectors, runSequences, runVectors } from "../tests/sse_oracle/vectors.ts";

const args = process.argv.slice(2);
let count = 100, seqs = 20000, xms = 50, seed = "0x" + (Date.now() >>> 0).toString(16), engine = "interp", verbose = false;
for (let k = 0; k < args.length; k++) {
  const a = args[k];
  if (a === "--count") count = Number(args[++k]);
  else if (a === "--sequences") seqs = Number(args[++k]);
  else if (a === "--exceptions") xms = Number(args[++k]);
  else if (a === "--seed") seed = args[++k];
  else if (a === "--engine") engine = args[++k];
  else if (a === "--verbose" || a === "-v") verbose = true;
  else {
    console.error("usage: npm run oracle:sse -- [--count N] [--sequences N] [--exceptions N] [--seed S] [--engine interp|jit] [--verbose]");
    process.exit(a === "--help" || a === "-h" ? 0 : 2);
  }
}
if (!(count >= 0) || !(seqs >= 0) || !(xms >= 0) || (engine !== "interp" && engine !== "jit")) {
  console.error("--count, --sequences and --exceptions take a number, --engine interp or jit");
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), "sse-oracle-"));
const src = fileURLToPath(new URL("../tests/sse_oracle/oracle.c", import.meta.url));
const exe = join(dir, "oracle");
try {
  try {
    execFileSync("gcc", ["-m32", "-O1", "-std=gnu11", "-fno-pie", "-no-pie", "-o", exe, src], { stdio: "pipe" });
  } catch (e) {
    console.error(`Cannot build the oracle with gcc -m32 (Debian: apt-get install gcc-multilib): ${(e as Error).message.split("\n")[0]}`);
    process.exit(2);
  }
  const out = (mode: string[], n: number) => execFileSync(exe, [String(n), seed, ...mode], { maxBuffer: 1 << 30 }).toString();
  writeFileSync(join(dir, "v.txt"), count > 0 ? out([], count) : "");
  writeFileSync(join(dir, "s.txt"), seqs > 0 ? out(["seq"], seqs) : "");
  writeFileSync(join(dir, "x.txt"), xms > 0 ? out(["xm"], xms) : "");
  const h = new CpuHarness("protected");
  if (engine === "jit") {
    const { useEngine } = await import("../runtime/vmm/tiering.ts");
    await useEngine(h.vcpu, "jit", { validate: true });
  }
  const mism: Mismatch[] = [];
  const vs = count > 0 ? loadVectors(new URL("file://" + join(dir, "v.txt"))) : [];
  const ss = seqs > 0 ? loadSequences(new URL("file://" + join(dir, "s.txt"))) : [];
  const t0 = performance.now();
  for (let k = 0; k < vs.length; k += 4000) mism.push(...runVectors(h, vs.slice(k, k + 4000)));
  const vBad = new Set(mism.map((m) => m.line)).size;
  const before = mism.length;
  for (let k = 0; k < ss.length; k += 3000) mism.push(...runSequences(h, ss.slice(k, k + 3000)));
  const sBad = new Set(mism.slice(before).map((m) => m.line)).size;
  const xs = xms > 0 ? loadVectors(new URL("file://" + join(dir, "x.txt"))) : [];
  const before2 = mism.length;
  for (let k = 0; k < xs.length; k += 4000) mism.push(...runExceptionVectors(h, xs.slice(k, k + 4000)));
  const xBad = new Set(mism.slice(before2).map((m) => m.line)).size;
  const cpu = execFileSync("sh", ["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).toString().trim();
  console.log(`host: ${cpu}; seed ${seed}; engine ${engine}; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`vectors: ${vs.length - vBad} passed, ${vBad} failed`);
  console.log(`sequences: ${ss.length - sBad} passed, ${sBad} failed`);
  console.log(`with exceptions unmasked: ${xs.length - xBad} passed, ${xBad} failed`);
  for (const m of verbose ? mism : mism.slice(0, 20)) console.log(JSON.stringify(m));
  process.exitCode = mism.length ? 1 : 0;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
