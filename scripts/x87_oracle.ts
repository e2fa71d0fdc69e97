/**
 * The x87 host-CPU oracle as a command: run fresh vectors from the committed oracle binary
 * (tests/x87/x87_oracle, a 32-bit Linux program built by tests/x87/build.sh) on this machine's
 * processor, replay them under vmxlab and report what differs. Differences the SDM explains are
 * counted by class (tests/x87/oracle.ts `explain`); any other is printed and makes the exit status 1.
 *
 *   deno run -A scripts/x87_oracle.ts --seed 7 --per 200      # 135 forms x 200 inputs
 *   deno run -A scripts/x87_oracle.ts --vectors tests/x87/vectors.txt
 *
 * Needs an x86 Linux host that runs 32-bit programs (no compiler), unless --vectors is given.
 */
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { compare, explain, key, oracleHarness, parseVectors, runVector } from "../tests/x87/oracle.ts";

const { values } = parseArgs({
  options: {
    seed: { type: "string", default: "1" },
    per: { type: "string", default: "40" },
    vectors: { type: "string" },
    show: { type: "string", default: "20" },
  },
});
const bin = new URL("../tests/x87/x87_oracle", import.meta.url).pathname;
const text = values.vectors
  ? readFileSync(values.vectors, "utf8")
  : execFileSync(bin, [values.seed!, values.per!], { maxBuffer: 1 << 30, encoding: "utf8" });
const vectors = parseVectors(text);
const h = oracleHarness();
const known = new Map<string, number>();
const bad: string[] = [];
const t0 = performance.now();
for (const v of vectors) {
  const o = runVector(h, v);
  const what = compare(v, o);
  if (what.length === 0) continue;
  const why = explain(v, o, what);
  if (why) known.set(why, (known.get(why) ?? 0) + 1);
  else bad.push(`${key(v)} cw ${v.cw.toString(16)} eflags ${v.eflagsIn.toString(16)} a ${v.a.map((x) => x.toString(16).padStart(2, "0")).join("")} b ${v.b.map((x) => x.toString(16).padStart(2, "0")).join("")} mem ${v.memIn.map((x) => x.toString(16).padStart(2, "0")).join("")}: ${what.join("; ")}`);
}
const explained = [...known.values()].reduce((s, n) => s + n, 0);
console.log(`${vectors.length} vectors in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${vectors.length - explained - bad.length} identical, ${explained} explained ${JSON.stringify(Object.fromEntries(known))}, ${bad.length} unexplained`);
for (const b of bad.slice(0, Number(values.show))) console.log("  " + b);
process.exit(bad.length ? 1 : 0);
