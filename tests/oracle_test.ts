/**
 * The host-CPU oracle in CI: a few hundred random integer programs run natively on the host
 * processor (the committed tests/oracle/harness.elf) and under every engine, compared bit for bit
 * with the SDM's undefined flags masked. The host is the reference: nothing here comes from
 * another run of vmxlab. `npm run oracle -- --count N` runs more.
 */
import { test } from "node:test";
import { assert, assertEquals } from "./assert.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";
import { CODE_ADDR, DATA_ADDR, DATA_SIZE, defaultFx, harnessUnavailable, type OracleCase, runNative, VmxRunner } from "./oracle/case.ts";
import { buildProgram, caseOf, CLASSES, genProgram } from "./oracle/gen.ts";
import { compare, disassemble, runOracle } from "./oracle/oracle.ts";

const skip = harnessUnavailable() ?? false;
const SEED = 20261207;

function bareCase(code: number[], gpr = [1, 2, 3, 4, DATA_ADDR + 0xc00, 6, 7, 8]): OracleCase {
  return { gpr, eflags: 0x202, fx: defaultFx(), data: new Uint8Array(DATA_SIZE), code: new Uint8Array(code) };
}

test("oracle: 300 random integer programs agree with the host processor under interp, jit and auto", { skip }, async () => {
  await loadJit();
  const sum = runOracle({ cls: "int", seed: SEED, count: 300, engines: ["interp", "jit", "auto"], shrink: true, maxReports: 3 });
  assertEquals(sum.cases, 300);
  assertEquals(sum.runs, 900);
  assertEquals(sum.findings.map((f) => f.report), []);
  assertEquals(sum.differ, 0);
  assertEquals(sum.unimplemented, 0);
});

test("oracle: the host's state is what the code computes (add, push, mul, pushfd)", { skip }, () => {
  // add eax,ecx; push eax; mul ebx; pushfd: 1+2=3; 3*4=12; EFLAGS pushed below the 3: CF=OF=0
  // (MUL's defined flags), IF=1, bit 1 set; SF ZF AF PF are MUL's undefined ones (vendor's choice)
  const [h] = runNative([bareCase([0x01, 0xc8, 0x50, 0xf7, 0xe3, 0x9c])]);
  assertEquals(h.fault, null);
  assertEquals(h.eip, CODE_ADDR + 6);
  assertEquals(h.gpr.slice(0, 5), [12, 2, 0, 4, DATA_ADDR + 0xc00 - 8]);
  const pushed = new DataView(h.data.buffer, h.data.byteOffset).getUint32(0xbf8, true);
  assertEquals(pushed & ~0xd4, 0x202);
  assertEquals([...h.data.subarray(0xbfc, 0xc00)], [3, 0, 0, 0]);
});

test("oracle: a difference in a register, a flag or memory is reported, an undefined flag is not", { skip }, () => {
  const c = bareCase([0xf7, 0xe3, 0xa3, 0x10, 0x00, 0x20, 0x00]); // mul ebx; mov [DATA+0x10], eax
  const [h] = runNative([c]);
  const v = new VmxRunner("interp").run(c);
  const undef = 0x4 | 0x10 | 0x40 | 0x80; // MUL: SF ZF AF PF undefined
  assertEquals(compare(c, undef, h, v), { kind: "same" });
  const reg = compare(c, undef, h, { ...v, gpr: v.gpr.map((x, k) => k === 6 ? x ^ 1 : x) });
  assert(reg.kind === "differ" && reg.what[0].startsWith("esi:"), JSON.stringify(reg));
  const flag = compare(c, undef, h, { ...v, eflags: v.eflags ^ 1 });
  assert(flag.kind === "differ" && flag.what[0].startsWith("eflags:"), JSON.stringify(flag));
  assertEquals(compare(c, undef, h, { ...v, eflags: v.eflags ^ 0x40 }), { kind: "same" });
  const data = v.data.slice();
  data[0x11] ^= 0x80;
  const mem = compare(c, undef, h, { ...v, data });
  assert(mem.kind === "differ" && mem.what[0].startsWith("memory 0x00200011"), JSON.stringify(mem));
});

test("oracle: an intended #DE faults at the DIV on both, with the registers as they were", { skip }, () => {
  const c = bareCase([0x31, 0xc9, 0xf7, 0xf1]); // xor ecx,ecx; div ecx
  const [h] = runNative([c]);
  assertEquals([h.fault, h.eip, h.gpr[1]], [0, CODE_ADDR + 2, 0]);
  for (const e of ["interp"] as const) assertEquals(compare(c, 0x8d5, h, new VmxRunner(e).run(c)), { kind: "same" });
});

test("oracle: an instruction vmxlab does not have (AVX, not in its CPUID) is reported as unimplemented, not as a crash", { skip }, () => {
  const c = bareCase([0x90, 0xc5, 0xf8, 0x57, 0xc0]); // nop; vxorps xmm0,xmm0,xmm0
  const [h] = runNative([c]);
  const v = compare(c, 0, h, new VmxRunner("interp").run(c));
  if (h.fault === 6) { // a host without AVX raises #UD as vmxlab does: the same result, nothing unimplemented
    assertEquals(v, { kind: "same" });
    return;
  }
  assertEquals(h.fault, null);
  assertEquals(v.kind, "unimplemented");
  assert(v.kind === "unimplemented" && v.eip === CODE_ADDR + 1 && v.insn.includes("vxorps"), JSON.stringify(v));
});

test("oracle generator: every program of every class decodes (iced-x86) into whole instructions, pieces at instruction starts", () => {
  for (const cls of CLASSES) {
    for (let s = 1; s <= 300; s++) {
      const p = genProgram(cls, s, 16);
      const { code, starts } = buildProgram(p);
      const lines = disassemble(code);
      const insnStarts = new Set(lines.map((l) => parseInt(l.slice(0, 8), 16) - CODE_ADDR));
      assert(!lines.some((l) => l.includes("(bad)")), `${cls} seed ${s}: ${lines.join("\n")}`);
      for (const st of starts) assert(insnStarts.has(st), `${cls} seed ${s}: piece at +${st} is not an instruction start`);
      const last = lines[lines.length - 1];
      const end = parseInt(last.slice(0, 8), 16) - CODE_ADDR + last.slice(10, 41).trim().split(" ").length;
      assertEquals(end, code.length, `${cls} seed ${s}`);
      assertEquals(caseOf(p).c.code, code);
    }
  }
});

test("oracle: the initial x87 and SSE state (random stacks, TOP, tags, FCW, MXCSR, XMM) goes through vmxlab's state block as FXRSTOR/FXSAVE take it", { skip }, () => {
  for (const cls of ["x87", "sse"] as const) {
    const cases = Array.from({ length: 50 }, (_, k) => ({ ...caseOf(genProgram(cls, SEED + k)).c, code: new Uint8Array([0x90]) }));
    const host = runNative(cases);
    const r = new VmxRunner("interp");
    cases.forEach((c, k) => assertEquals(compare(c, 0, host[k], r.run(c)), { kind: "same" }, `${cls} seed ${SEED + k}`));
    // The host kept what it was given (FXRSTOR then FXSAVE): ST(i), TOP, tags, FCW, MXCSR.
    assertEquals(host[0].fx.subarray(0, 5), cases[0].fx.subarray(0, 5));
    assertEquals(host[0].fx.subarray(24, 28), cases[0].fx.subarray(24, 28));
    assertEquals(host[0].fx.subarray(32, 288), cases[0].fx.subarray(32, 288));
  }
});
