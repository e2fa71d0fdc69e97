/**
 * npm run conformance -- PATH...: run SingleStepTests vectors (real mode, one instruction each) through
 * the processor by the KVM API guests use. PATH is a test file (`.json` or `.json.gz`) or a folder
 * of them; the FLAGS masks come from the metadata.json beside the files. The runner and its skip
 * rules are tests/sst.ts.
 *
 *   npm run conformance -- ../shared/conformance/sst-80286/
 *   npm run conformance -- [--count N] [--verbose] PATH...
 *
 * Prints one line per file, `<opcode>: passed N, failed N, skipped N (reason)`, then `N passed, N failed`.
 * Exit status: 0 when nothing failed, 1 on a failure, 2 on a usage error.
 */
import process from "node:process";
import { formatFileLine, runPath, vectorHarness } from "../tests/sst.ts";

const args = process.argv.slice(2);
const paths: string[] = [];
let count = Infinity;
let verbose = false;
for (let k = 0; k < args.length; k++) {
  const a = args[k];
  if (a === "--count") count = Number(args[++k]);
  else if (a === "--verbose" || a === "-v") verbose = true;
  else if (a === "--help" || a === "-h") {
    console.log("usage: npm run conformance -- [--count N] [--verbose] PATH...");
    process.exit(0);
  } else paths.push(a);
}
if (paths.length === 0 || !(count > 0)) {
  console.error("usage: npm run conformance -- [--count N] [--verbose] PATH... (a SingleStepTests file or folder)");
  process.exit(2);
}

const h = vectorHarness();
let passed = 0, failed = 0, skipped = 0;
const as386: Record<string, number> = {};
const t0 = performance.now();
for (const p of paths) {
  try {
    runPath(p, {
      count,
      harness: h,
      onFile: (r) => {
        passed += r.passed;
        failed += r.failed;
        skipped += r.skipped;
        for (const [why, n] of Object.entries(r.as386)) as386[why] = (as386[why] ?? 0) + n;
        console.log(formatFileLine(r));
        const shown = verbose ? r.failures : r.failures.slice(0, 3);
        for (const f of shown) console.log(`  ${f}`);
        if (shown.length < r.failures.length) console.log(`  … ${r.failures.length - shown.length} more (--verbose)`);
      },
    });
  } catch (e) {
    if (e instanceof RangeError || (e as { code?: string }).code === "ENOENT") {
      console.error(`${(e as Error).message}`);
      process.exit(2);
    }
    throw e;
  }
}
for (const [why, n] of Object.entries(as386)) console.error(`${n} passed against the 386 behaviour: ${why}`);
console.error(`${skipped} skipped, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
