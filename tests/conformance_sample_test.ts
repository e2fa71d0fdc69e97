/**
 * Per-instruction conformance against silicon, the CI sample: the SingleStepTests 80286 real-mode
 * vectors in `shared/conformance/sst-80286/` (read its README.md), the first N tests of every file
 * (SST_COUNT, default 10; `SST_COUNT=all` runs every test). The runner, the masks and the skip
 * rules are in tests/sst.ts; `npm run conformance -- PATH...` runs whole files and folders.
 */
import { test } from "node:test";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { assertEquals } from "./assert.ts";
import { fileLabel, loadMetadata, runFile, SKIP_STATUS, testFiles, vectorHarness } from "./sst.ts";

const DIR_PATH = fileURLToPath(new URL("../../shared/conformance/sst-80286/", import.meta.url));
const COUNT = process.env.SST_COUNT === "all" ? Infinity : Number(process.env.SST_COUNT ?? 10);

if (!existsSync(DIR_PATH)) {
  test("80286 conformance vectors", { skip: `folder ${DIR_PATH} not found` }, () => {});
} else {
  const h = vectorHarness();
  const files = testFiles(DIR_PATH);
  const meta = loadMetadata(files[0]);
  for (const file of files) {
    const label = `80286 vectors ${fileLabel(file)}`;
    // Whole files whose status says "not 386 behaviour" are skipped by name, with the reason.
    // 8F, C6 and C7 are not split by ModRM.reg: their status is per test (tests/sst.ts skipReason).
    const [op, reg] = fileLabel(file).split(".");
    const e = meta?.[op];
    const status = reg !== undefined && e?.reg ? e.reg[reg]?.status : e?.reg ? "per-test" : e?.status;
    const whole = status ? SKIP_STATUS[status] : undefined;
    if (whole) {
      test(`${label}: skipped, ${whole}`, { skip: whole }, () => {});
      continue;
    }
    test(`${label}: the first ${COUNT === Infinity ? "all" : COUNT} tests match silicon`, () => {
      const r = runFile(h, meta, file, COUNT);
      assertEquals(r.failures, []);
    });
  }
}
