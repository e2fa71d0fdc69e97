/** `npm run conformance` (scripts/conformance.ts): its output lines, exit status, and files from any folder. */
import { test } from "node:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { assertEquals, assertMatch } from "./assert.ts";
import { REPO, runScript } from "./run_cli.ts";

const SUITE = `${REPO}../shared/conformance/sst-80286/`;
const skip = existsSync(SUITE) ? false : `folder ${SUITE} not found`;

/** The first `n` vectors of a suite file as a plain JSON array, one per line. */
function firstVectors(file: string, n: number): string[] {
  const text = gunzipSync(readFileSync(`${SUITE}${file}`)).toString("utf8");
  return text.split("\n").filter((l) => l.trim().startsWith("{")).slice(0, n).map((l) => l.trim().replace(/,$/, ""));
}

test("conformance prints a line per file and a total, and exits 0 when every vector passes", { skip }, () => {
  const r = runScript("scripts/conformance.ts", ["--count", "20", `${SUITE}F8.json.gz`, `${SUITE}D6.json.gz`]);
  assertEquals(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assertEquals(lines, [
    "F8: passed 20, failed 0, skipped 0",
    "D6: passed 0, failed 0, skipped 20 (undocumented opcode)",
    "20 passed, 0 failed",
  ]);
});

test("conformance reads uncompressed files from any folder and exits 1 on a failing vector", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "sst-"));
  try {
    const good = firstVectors("F9.json.gz", 3);
    // STC with a wrong expected CF: the vector must fail.
    const bad = JSON.parse(good[0]);
    bad.final.regs.flags = (bad.final.regs.flags ?? bad.initial.regs.flags) & ~1;
    writeFileSync(join(dir, "F9.json"), `[\n${[...good.slice(1), JSON.stringify(bad)].join(",\n")}\n]\n`);
    const r = runScript("scripts/conformance.ts", [dir]);
    assertEquals(r.status, 1, r.stderr);
    assertMatch(r.stdout, /^F9: passed 2, failed 1, skipped 0$/m);
    assertMatch(r.stdout, /flags 0x\w+, want 0x\w+/);
    assertMatch(r.stdout, /^2 passed, 1 failed$/m);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("conformance without a path is a usage error", () => {
  const r = runScript("scripts/conformance.ts", []);
  assertEquals(r.status, 2);
});
