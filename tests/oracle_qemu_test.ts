/**
 * The QEMU oracle in CI, without QEMU: system programs (paging, A/D bits, TLB flushes, 4 MiB
 * pages, CR0.WP, segment loads and faults; tests/oracle/qemu.ts) run under every engine and their
 * dumps are compared with what QEMU TCG wrote for the same programs, recorded in
 * tests/oracle/qemu/expected.json by `npm run oracle:qemu -- --record`. Seeds listed in
 * tests/oracle/qemu/known.json (none today) say why they differ.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assert, assertEquals } from "./assert.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";
import { compareDumps, describeLog, genSysProgram, runSysVmx } from "./oracle/qemu.ts";

const expected: Record<string, string> = JSON.parse(readFileSync(new URL("./oracle/qemu/expected.json", import.meta.url), "utf8"));
const known: Record<string, string> = JSON.parse(readFileSync(new URL("./oracle/qemu/known.json", import.meta.url), "utf8"));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const seeds = Object.keys(expected).map(Number).filter((s) => !(s in known));

test("QEMU oracle: the recorded dumps cover at least 300 programs, each a whole dump", () => {
  assert(seeds.length >= 300, `${seeds.length} seeds`);
  for (const s of seeds.slice(0, 20)) assert(!describeLog(unb64(expected[s]))[0].startsWith("dump"), `seed ${s}`);
});

// Every recorded program under interp and auto; the first 30 under jit (which compiles each
// program's code afresh: ~0.3 s a program on a loaded machine).
for (const [engine, count] of [["interp", Infinity], ["jit", 30], ["auto", Infinity]] as const) {
  test(`QEMU oracle: ${engine} writes the dump QEMU TCG wrote for ${count === Infinity ? "each recorded system program" : `the first ${count} recorded system programs`}`, async () => {
    if (engine !== "interp") await loadJit();
    const bad: string[] = [];
    for (const s of seeds.slice(0, count)) {
      const r = runSysVmx(genSysProgram(s, 40), engine);
      const d = r.note ?? compareDumps(unb64(expected[s]), r.dump);
      if (d !== null) bad.push(`seed ${s}: ${d}`);
    }
    assertEquals(bad, []);
  });
}

test("QEMU oracle: a dump that differs is reported with the word that differs", () => {
  const s = seeds[0];
  const d = unb64(expected[s]).slice();
  d[8] ^= 1;
  assert((compareDumps(unb64(expected[s]), d) ?? "").startsWith("log[0]"), compareDumps(unb64(expected[s]), d) ?? "null");
});
