/**
 * npm run oracle:qemu: the QEMU oracle for system behaviour (tests/oracle/qemu.ts). Random
 * programs exercising paging (windows 16 MiB apart on shared frames, A/D bits, INVLPG and CR3
 * flushes, 4 MiB pages, CR0.WP) and segmentation faults boot in QEMU TCG (qemu-system-i386) and in
 * vmxlab, and the dumps they write to port 0xE9 are compared. A difference is shrunk (pieces of
 * the body dropped while it persists, each trial run in both again) and printed.
 *
 *   npm run oracle:qemu -- [--seed S] [--count N] [--size K] [--engine interp,jit,auto]
 *                          [--record] [--offline] [--no-shrink] [--max-reports R]
 *
 * --record writes QEMU's dumps for the seeds to tests/oracle/qemu/expected.json (merged with what
 * is there), which CI compares against without QEMU; --offline compares against that file instead
 * of running QEMU. Known differences (tests/oracle/qemu/known.json: seed -> reason, where QEMU
 * departs from the SDM or vmxlab has a listed bug) are counted apart. Exit status 1 on any other
 * difference.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { compareDumps, describeLog, genSysProgram, runSysQemu, runSysVmx, type SysProgram } from "../tests/oracle/qemu.ts";
import { ENGINE_NAMES, type EngineName } from "../runtime/vmm/engines.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";

const usage = "Usage: npm run oracle:qemu -- [--seed S] [--count N] [--size K] [--engine interp,jit,auto] [--record] [--offline] [--no-shrink] [--max-reports R]";
let v;
try {
  v = parseArgs({
    args: process.argv.slice(2),
    options: {
      seed: { type: "string" }, count: { type: "string" }, size: { type: "string" }, engine: { type: "string" },
      record: { type: "boolean" }, offline: { type: "boolean" }, "no-shrink": { type: "boolean" }, "max-reports": { type: "string" },
    },
  }).values;
} catch (e) {
  console.error(`${e instanceof Error ? e.message : e}\n${usage}`);
  process.exit(2);
}
const seed = Number(v.seed ?? 1), count = Number(v.count ?? 100), size = Number(v.size ?? 40), maxReports = Number(v["max-reports"] ?? 5);
const engines = (v.engine ?? "interp,jit,auto").split(",") as EngineName[];
if (![seed, count, size, maxReports].every(Number.isInteger) || count < 1 || size < 1 || engines.some((e) => !ENGINE_NAMES.includes(e)) || (v.record && v.offline)) {
  console.error(usage);
  process.exit(2);
}
const EXPECTED = fileURLToPath(new URL("../tests/oracle/qemu/expected.json", import.meta.url));
const KNOWN = fileURLToPath(new URL("../tests/oracle/qemu/known.json", import.meta.url));
const readJson = (p: string): Record<string, string> => { try { return JSON.parse(readFileSync(p, "utf8")); } catch { return {}; } };
const expected = readJson(EXPECTED), known = readJson(KNOWN);
const b64 = (u: Uint8Array) => btoa(String.fromCharCode(...u));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
if (engines.some((e) => e !== "interp")) await loadJit();

/** QEMU's dump for a program: live, or from expected.json for --offline. */
function reference(p: SysProgram, live: boolean): Uint8Array | null {
  if (!live) return expected[p.seed] ? unb64(expected[p.seed]) : null;
  const q = runSysQemu(p);
  if (q.note) throw new Error(`QEMU failed on seed ${p.seed}: ${q.note}`);
  return q.dump;
}

let same = 0, differ = 0, knownN = 0, missing = 0, reports = 0;
const t0 = performance.now();
for (let s = seed; s < seed + count; s++) {
  const p = genSysProgram(s, size);
  const ref = reference(p, !v.offline);
  if (ref === null) { missing++; continue; }
  if (v.record) expected[s] = b64(ref);
  for (const e of engines) {
    const r = runSysVmx(p, e);
    const d = r.note ?? compareDumps(ref, r.dump);
    if (d === null) { same++; continue; }
    if (known[s]) { knownN++; continue; }
    differ++;
    if (reports++ >= maxReports) continue;
    console.log(`seed ${s} differs under ${e}: ${d}`);
    let small = p;
    if (!v["no-shrink"] && !v.offline) {
      let keep = Array.from({ length: p.pieceCount }, (_, k) => k);
      const differs = (k: number[]) => { const q = p.subset(k); const rr = runSysVmx(q, e); return (rr.note ?? compareDumps(reference(q, true)!, rr.dump)) !== null; };
      for (let chunk = Math.max(1, keep.length >> 1); chunk >= 1; chunk >>= 1) {
        for (let at = 0; at < keep.length;) {
          const trial = [...keep.slice(0, at), ...keep.slice(at + chunk)];
          if (differs(trial)) keep = trial; else at += chunk;
        }
      }
      small = p.subset(keep);
      const q = reference(small, true)!, rr = runSysVmx(small, e);
      console.log(`  shrunk to ${keep.length} of ${p.pieceCount} pieces (genSysProgram(${s}, ${size}).subset([${keep.join(", ")}])): ${rr.note ?? compareDumps(q, rr.dump)}`);
      console.log(small.ops.map((o) => "    " + o).join("\n"));
      const lq = describeLog(q), lv = describeLog(rr.dump);
      console.log("  log (QEMU | vmxlab):");
      for (let k = 0; k < Math.max(lq.length, lv.length); k++) console.log(`    ${String(lq[k] ?? "").padEnd(48)} | ${lv[k] ?? ""}`);
    }
  }
  if ((s - seed + 1) % 50 === 0) console.log(`${s - seed + 1} programs: ${same} same, ${differ} differ, ${knownN} known differences (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}
if (v.record) {
  const sorted = Object.fromEntries(Object.entries(expected).sort((a, b) => Number(a[0]) - Number(b[0])));
  writeFileSync(EXPECTED, JSON.stringify(sorted, null, 0).replace(/","/g, "\",\n\"") + "\n");
}
console.log(`${count} system programs from seed ${seed} under ${engines.join(", ")}${v.offline ? " (against the recorded QEMU dumps)" : " (QEMU live)"}: ` +
  `${same} same, ${differ} differ, ${knownN} known differences${missing ? `, ${missing} without a recorded dump` : ""} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
process.exit(differ ? 1 : 0);
