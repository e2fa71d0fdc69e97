/**
 * The per-instruction conformance sample (tests/conformance_sample_test.ts: SingleStepTests 80286
 * real-mode vectors, masks and skip rules in tests/sst.ts) with the JIT attached in `jit` mode, so
 * each vector's instruction is compiled (translated inline or called out) before it runs. The
 * first SST_JIT_COUNT tests of every file (default 10 under Deno, 3 under Bun; `all` for every test).
 */
import { test } from "node:test";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { assert, assertEquals } from "../tests/assert.ts";
import { fileLabel, loadMetadata, runFile, SKIP_STATUS, testFiles, vectorHarness } from "../tests/sst.ts";
import type { JitEngine } from "./mod.ts";
import { useEngine } from "../runtime/vmm/tiering.ts";

const DIR_PATH = fileURLToPath(new URL("../../shared/conformance/sst-80286/", import.meta.url));
// 10 a file under Deno (~3,200 vectors, each compiled; the whole corpus takes ~3.5 min and once found an ADC
// bug at vector 27 of a file: `SST_JIT_COUNT=all`), 3 under Bun.
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const COUNT = process.env.SST_JIT_COUNT === "all" ? Infinity : Number(process.env.SST_JIT_COUNT ?? (isBun ? 3 : 10));

if (!existsSync(DIR_PATH)) {
  test("80286 conformance vectors under the JIT", { skip: `folder ${DIR_PATH} not found` }, () => {});
} else {
  const h = vectorHarness();
  let jit: JitEngine | null = null;
  const files = testFiles(DIR_PATH);
  const meta = loadMetadata(files[0]);
  let ran = 0;
  for (const file of files) {
    const label = `80286 vectors ${fileLabel(file)} under the JIT`;
    const [op, reg] = fileLabel(file).split(".");
    const e = meta?.[op];
    const status = reg !== undefined && e?.reg ? e.reg[reg]?.status : e?.reg ? "per-test" : e?.status;
    const whole = status ? SKIP_STATUS[status] : undefined;
    if (whole) continue; // skipped with its reason by the interpreter's sample test
    ran++;
    test(`${label}: the first ${COUNT === Infinity ? "all" : COUNT} tests match silicon`, async () => {
      jit ??= await useEngine(h.vcpu, "jit", { validate: true });
      const r = runFile(h, meta, file, COUNT);
      assertEquals(r.failures, []);
    });
  }
  if (ran > 0) {
    test("the JIT compiled code for the conformance vectors", () => {
      assert(jit !== null && jit.stats.regions > 0 && jit.stats.instructions > 0, JSON.stringify(jit?.stats));
    });
  }
}
