/**
 * CPUID tells the truth: every feature leaf 1 reports has its instructions, run here one each in
 * protected mode with CR4.OSFXSR set (SDM vol. 2, CPUID, table 3-10/3-11), under every engine; and
 * an instruction of a feature it does not report (MONITOR, SSSE3's PSHUFB, SSE4.1's PMULLD, POPCNT)
 * raises #UD.
 */
import { test } from "node:test";
import { assertEquals } from "./assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";

const EDX = { FPU: 0, CX8: 8, CMOV: 15, CLFSH: 19, MMX: 23, FXSR: 24, SSE: 25, SSE2: 26 } as const;
const ECX = { SSE3: 0 } as const;

/** mov eax, cr4; or eax, 0x600 (OSFXSR, OSXMMEXCPT); mov cr4, eax; mov ebx, 0x200000 (a 16-byte aligned buffer) */
const PROLOGUE = [0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x06, 0x00, 0x00, 0x0f, 0x22, 0xe0, 0xbb, 0x00, 0x00, 0x20, 0x00];

/** One instruction of each reported feature (bytes after the prologue). */
const REPORTED: [string, number[]][] = [
  ["FPU: fninit; fld1", [0xdb, 0xe3, 0xd9, 0xe8]],
  ["CX8: cmpxchg8b [ebx]", [0x0f, 0xc7, 0x0b]],
  ["CMOV: cmovz eax, ecx", [0x0f, 0x44, 0xc1]],
  ["CLFSH: clflush [ebx]", [0x0f, 0xae, 0x3b]],
  ["MMX: movd mm0, eax; paddb mm0, mm0; emms", [0x0f, 0x6e, 0xc0, 0x0f, 0xfc, 0xc0, 0x0f, 0x77]],
  ["FXSR: fxsave [ebx]; fxrstor [ebx]", [0x0f, 0xae, 0x03, 0x0f, 0xae, 0x0b]],
  ["SSE: addps xmm0, xmm1; ldmxcsr/stmxcsr", [0x0f, 0x58, 0xc1, 0x0f, 0xae, 0x1b, 0x0f, 0xae, 0x13]],
  ["SSE2: addpd xmm0, xmm1; paddq xmm0, xmm1", [0x66, 0x0f, 0x58, 0xc1, 0x66, 0x0f, 0xd4, 0xc1]],
  ["SSE3: haddps xmm0, xmm1; fld1; fisttp dword [ebx]", [0xf2, 0x0f, 0x7c, 0xc1, 0xd9, 0xe8, 0xdb, 0x0b]],
];
/** Instructions of features leaf 1 does not report. */
const UNREPORTED: [string, number[]][] = [
  ["MONITOR (ECX bit 3)", [0x0f, 0x01, 0xc8]],
  ["PSHUFB (SSSE3, ECX bit 9)", [0x66, 0x0f, 0x38, 0x00, 0xc1]],
  ["PMULLD (SSE4.1, ECX bit 19)", [0x66, 0x0f, 0x38, 0x40, 0xc1]],
  ["POPCNT (ECX bit 23)", [0xf3, 0x0f, 0xb8, 0xc1]],
];

function cpuid1(): { ecx: number; edx: number } {
  // mov eax, 1; cpuid; hlt
  const m = new Machine({ mode: "protected" });
  m.load(new Uint8Array([0xb8, 1, 0, 0, 0, 0x0f, 0xa2, 0xf4]), { format: "raw" });
  m.run({ budget: 100 });
  const r = m.vcpu.getRegs();
  return { ecx: r.rcx, edx: r.rdx };
}

test("CPUID leaf 1 reports the features this processor implements, and not SSSE3, SSE4 or POPCNT", () => {
  const { ecx, edx } = cpuid1();
  for (const [name, bit] of Object.entries(EDX)) assertEquals((edx >>> bit) & 1, 1, `EDX.${name}`);
  for (const [name, bit] of Object.entries(ECX)) assertEquals((ecx >>> bit) & 1, 1, `ECX.${name}`);
  for (const [name, bit] of [["MONITOR", 3], ["SSSE3", 9], ["SSE4.1", 19], ["SSE4.2", 20], ["POPCNT", 23]] as const) {
    assertEquals((ecx >>> bit) & 1, 0, `ECX.${name}`);
  }
});

for (const engine of ["interp", "jit"] as const) {
  test(`every reported feature's instructions run; unreported ones raise #UD (${engine})`, async () => {
    if (engine !== "interp") await loadJit();
    const run = (bytes: number[]) => {
      const m = new Machine({ mode: "protected", engine });
      m.load(new Uint8Array([...PROLOGUE, ...bytes, 0xf4]), { format: "raw" });
      m.vcpu.vmcsWrite(0x4004, 1 << 6); // EXCEPTION_BITMAP: #UD exits, so it cannot be missed
      return m.run({ budget: 1000 }).exit;
    };
    for (const [name, bytes] of REPORTED) assertEquals(run(bytes), { reason: "hlt" }, name);
    for (const [name, bytes] of UNREPORTED) assertEquals(run(bytes), { reason: "exception", exception: 6, errorCode: 0 }, name);
  });
}
