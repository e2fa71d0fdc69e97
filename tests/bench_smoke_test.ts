/**
 * `npm run bench` runs: scripts/bench.ts on one small workload under two engines writes its
 * markdown table and its SVG chart. No timing is asserted (the figures of a --quick run mean little).
 */
import { test } from "node:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./assert.ts";
import { spawnSync } from "node:child_process";
import { REPO, runScript } from "./run_cli.ts";

/** Every element closes (or is self-closing) in order: enough of XML to catch a broken writer. */
function assertBalancedTags(xml: string): void {
  const open: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([A-Za-z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing) continue;
    if (!closing) open.push(name);
    else assertEquals(open.pop(), name, `</${name}> closes the wrong element`);
  }
  assertEquals(open, [], "elements left open");
}

test("scripts/bench.ts --quick writes a markdown table and an SVG chart of the workloads it ran", () => {
  const out = mkdtempSync(join(tmpdir(), "vmxlab-bench-"));
  try {
    const r = runScript("scripts/bench.ts", ["--quick", "--reps", "1", "--only", "sieve", "--engines", "interp,jit", "--out", out]);
    assertEquals(r.status, 0, r.stderr);
    const files = readdirSync(out).sort();
    assertEquals(files.length, 2, files.join(", "));
    assertMatch(files[0], /^bench-(deno|bun)-\d{4}-\d{2}-\d{2}\.md$/);
    assertEquals(files[1], files[0].replace(/\.md$/, ".svg"));

    const md = readFileSync(join(out, files[0]), "utf8");
    assertStringIncludes(md, "| MIPS interp | MIPS jit | jit/interp |");
    assertMatch(md, /^\| sieve \(65536\) \| \d+ \/ \d+ \| [\d.]+M \| [\d.]+ \| [\d.]+ \| [\d.]+× \|$/m);
    assertMatch(md, /^\| \*\*geometric mean\*\*/m);
    assertMatch(md, /^\| sieve \(65536\) \| \d+ \| \d+ \|/m, "the compile-cost row");
    assert(!md.includes("crc32"), "only the selected workload ran");
    assertStringIncludes(r.stdout, md.trim(), "stdout carries the same table");
    assertStringIncludes(r.stdout, files[1]);

    const svg = readFileSync(join(out, files[1]), "utf8");
    assertMatch(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assertMatch(svg, /<\/svg>\s*$/);
    assertBalancedTags(svg);
    assertEquals((svg.match(/<rect [^>]*><title>/g) ?? []).length, 2, "one bar per engine");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("scripts/bench.ts --only out-hook measures each engine in a child process and states the goal", () => {
  const out = mkdtempSync(join(tmpdir(), "vmxlab-bench-"));
  try {
    const r = runScript("scripts/bench.ts", ["--quick", "--reps", "1", "--only", "out-hook", "--engines", "interp,jit", "--out", out]);
    assertEquals(r.status, 0, r.stderr);
    assertMatch(r.stdout, /per OUT in a long-lived Machine: interp \*\*\d+ ns\*\*, jit \*\*\d+ ns\*\*; in a fresh Machine per sample: interp \d+ ns, jit \d+ ns \(\d+ without compile time\)/);
    assertMatch(r.stdout, /- an OUT from jit code to a userspace hook ≤ 100 ns: \d+ ns in a long-lived Machine \((met|not met)\)/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("scripts/bench.ts refuses an unknown workload or engine with status 2", () => {
  const a = runScript("scripts/bench.ts", ["--only", "nosuch"]);
  assertEquals(a.status, 2);
  assertStringIncludes(a.stderr, "Unknown workload nosuch");
  const b = runScript("scripts/bench.ts", ["--engines", "interp,kvm"]);
  assertEquals(b.status, 2);
  assertStringIncludes(b.stderr, "Unknown engine kvm");
});

/** bench_ab's `--rev` extracts a revision with `git archive`: this must be a git checkout. */
const gitSkip = spawnSync("git", ["rev-parse", "--verify", "HEAD"], { cwd: REPO }).status === 0 ? false : "not a git checkout (bench_ab --rev runs git archive)";

test("scripts/bench_ab.ts compares the OUT path of another revision with this tree in one process", { skip: gitSkip }, () => {
  const r = runScript("scripts/bench_ab.ts", ["--rev", "HEAD", "--engine", "interp", "--rounds", "1", "--outs", "2000"]);
  assertEquals(r.status, 0, r.stderr);
  assertMatch(r.stdout, /base HEAD: median \d+\.\d, min \d+\.\d/);
  assertMatch(r.stdout, /this tree: median \d+\.\d, min \d+\.\d/);
  assertMatch(r.stdout, /this\/base, median of the rounds: \d+\.\d{3}/);
  const bad = runScript("scripts/bench_ab.ts", []);
  assertEquals(bad.status, 2);
  assertStringIncludes(bad.stderr, "usage: bench_ab.ts");
});

test("scripts/bench_ab.ts --mips compares workloads' MIPS of another revision with this tree", { skip: gitSkip }, () => {
  const r = runScript("scripts/bench_ab.ts", ["--rev", "HEAD", "--engine", "interp", "--rounds", "1", "--mips", "sieve"]);
  assertEquals(r.status, 0, r.stderr);
  assertMatch(r.stdout, /^ {2}sieve: base \d+, this tree \d+, this\/base \d+\.\d{3}$/m);
  assertMatch(r.stdout, /geometric mean of this\/base: \d+\.\d{3}/);
  const bad = runScript("scripts/bench_ab.ts", ["--rev", "HEAD", "--mips", "nosuch"]);
  assert(bad.status !== 0);
  assertStringIncludes(bad.stderr, "Unknown workload nosuch");
});
