/** Print vmxlab's FNSAVE image for every transcendental vector, as JSON for mpmath_check.py. */
import { readFileSync } from "node:fs";
import { oracleHarness, parseVectors, runVector } from "./oracle.ts";

const vs = parseVectors(readFileSync(new URL("vectors.txt", import.meta.url).pathname, "utf8"));
const h = oracleHarness();
const out: Record<number, string> = {};
for (const v of vs) {
  if (v.insn[0] !== 0xd9 || ![0xf0, 0xf1, 0xf2, 0xf3, 0xf9, 0xfb, 0xfe, 0xff].includes(v.insn[1])) continue;
  out[v.line] = runVector(h, v).save.map((x) => x.toString(16).padStart(2, "0")).join("");
}
console.log(JSON.stringify(out));
