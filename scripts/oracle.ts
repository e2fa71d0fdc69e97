/**
 * npm run oracle: the host-CPU oracle. Random programs of one instruction class run natively on
 * this machine's processor (tests/oracle/harness.elf, a static 32-bit Linux binary built from
 * tests/oracle/harness.c) and under vmxlab, compared bit for bit (registers, EFLAGS with the SDM's
 * undefined flags masked, the x87/SSE state as an FXSAVE image, the data page, the fault raised).
 * A difference is shrunk to the fewest pieces that still show it and printed as bytes and
 * disassembly. Instructions vmxlab does not implement yet (#UD or #NM where the host ran them) are
 * counted as unimplemented, by mnemonic, not as differences.
 *
 *   npm run oracle -- [--seed S] [--count N] [--class int|x87|sse] [--engine interp,jit,auto]
 *                     [--size K] [--no-shrink] [--max-reports R] [--json]
 *
 * Needs an x86 Linux host (the harness runs natively). Exit status 0 when nothing differs (also
 * when some instructions are unimplemented), 1 on a difference, 2 on a usage error.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { runOracle } from "../tests/oracle/oracle.ts";
import { harnessUnavailable } from "../tests/oracle/case.ts";
import { CLASSES, type OracleClass } from "../tests/oracle/gen.ts";
import { ENGINE_NAMES, type EngineName } from "../runtime/vmm/engines.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";

const usage = "Usage: npm run oracle -- [--seed S] [--count N] [--class int|x87|sse] [--engine interp,jit,auto] [--size K] [--no-shrink] [--max-reports R] [--json]";
let v;
try {
  v = parseArgs({
    args: process.argv.slice(2),
    options: {
      seed: { type: "string" }, count: { type: "string" }, class: { type: "string" }, engine: { type: "string" },
      size: { type: "string" }, "no-shrink": { type: "boolean" }, "max-reports": { type: "string" }, json: { type: "boolean" },
    },
  }).values;
} catch (e) {
  console.error(`${e instanceof Error ? e.message : e}\n${usage}`);
  process.exit(2);
}
const seed = Number(v.seed ?? 1), count = Number(v.count ?? 1000), size = Number(v.size ?? 12);
const maxReports = Number(v["max-reports"] ?? 10);
const cls = (v.class ?? "int") as OracleClass;
const engines = (v.engine ?? "interp,jit,auto").split(",") as EngineName[];
if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 1 || !Number.isInteger(size) || size < 1 ||
  !CLASSES.includes(cls) || engines.some((e) => !ENGINE_NAMES.includes(e)) || !Number.isInteger(maxReports)) {
  console.error(usage);
  process.exit(2);
}
const unavailable = harnessUnavailable();
if (unavailable !== null) {
  console.error(`Cannot run the host-CPU oracle: ${unavailable}`);
  process.exit(2);
}
if (engines.some((e) => e !== "interp")) await loadJit();
const t0 = performance.now();
const sum = runOracle({
  cls, seed, count, engines, size, shrink: !v["no-shrink"], maxReports,
  log: v.json ? undefined : (line) => console.log(line),
});
const secs = ((performance.now() - t0) / 1000).toFixed(1);
if (v.json) {
  console.log(JSON.stringify({ cls, seed, count, engines, ...sum, seconds: Number(secs) }, null, 2));
} else {
  const un = Object.entries(sum.unimplementedBy).sort((a, b) => b[1] - a[1]).map(([m, n]) => `${m} ${n}`).join(", ");
  console.log(`${cls}: ${sum.cases} programs from seed ${seed} under ${engines.join(", ")} (${sum.runs} runs, ${secs} s): ` +
    `${sum.same} same, ${sum.differ} differ, ${sum.unimplemented} stopped at an unimplemented instruction${un ? ` (first unimplemented: ${un})` : ""}`);
}
process.exit(sum.differ ? 1 : 0);
