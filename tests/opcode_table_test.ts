/**
 * The opcode table is complete as data: every entry names a semantic function the interpreter has,
 * and every semantic function has a tier decision (runtime/cpu/tiers.ts) that the JIT reads, so an
 * instruction added to the table with its semantics runs under both tiers with no second definition.
 */
import { test } from "node:test";
import { assertEquals } from "./assert.ts";
import { type OpEntry, oneByte, twoByte } from "../runtime/cpu/decoder.ts";
import { semantics } from "../runtime/cpu/ops.ts";
import { SEM_TIER } from "../runtime/cpu/tiers.ts";
import { isExitCall, isNative } from "../jit/translate.ts";
import { Insn, OpKind } from "../runtime/cpu/insn.ts";

function entries(): OpEntry[] {
  const out: OpEntry[] = [];
  const walk = (e: OpEntry | undefined) => {
    if (e === undefined) return;
    out.push(e);
    e.group?.forEach(walk);
    if (e.mod3) Object.values(e.mod3).forEach(walk);
  };
  [...oneByte, ...twoByte].forEach(walk);
  return out;
}

test("every opcode-table entry names a semantic function", () => {
  const missing = entries().filter((e) => !e.group && typeof (semantics as Record<string, unknown>)[e.sem] !== "function");
  assertEquals(missing.map((e) => `${e.name} -> ${e.sem}`), []);
});

test("every semantic function has a tier decision, and only the three tiers exist", () => {
  const names = Object.keys(semantics);
  assertEquals(names.filter((n) => !(n in SEM_TIER)), [], "semantic functions without a tier");
  assertEquals(Object.keys(SEM_TIER).filter((n) => !names.includes(n)), [], "tiers for functions that do not exist");
  assertEquals(Object.values(SEM_TIER).filter((t) => t !== "native" && t !== "exit" && t !== "callout"), []);
});

test("the JIT reads its tiers from the table: a native function is translated, an exit one is an exit call", () => {
  for (const [name, tier] of Object.entries(SEM_TIER)) {
    // The plainest form: register operands, no REP, the near-return opcode.
    const i = new Insn();
    i.exec = (semantics as Record<string, Insn["exec"]>)[name];
    i.dk = OpKind.REG;
    i.rep = 0;
    i.sub = 0;
    i.opcode = 0xc3;
    assertEquals(isNative(i), tier === "native", `${name}: ${tier}`);
    assertEquals(isExitCall(i), tier === "exit", `${name}: ${tier}`);
  }
});
