/**
 * Which tier runs each semantic function of the opcode table, as data beside it (the shape of
 * v86's x86_table.js flags). The interpreter runs every one; the JIT (jit/translate.ts):
 * - `native`: translates it to wasm itself (its emitters; some forms still go to the interpreter,
 *   see `isNative` there);
 * - `exit`: calls the interpreter's function, which may record a VM exit, and ends the run there
 *   when it does (IN and OUT: an exit per OUT without leaving compiled code otherwise);
 * - `callout`: calls the interpreter's function from compiled code (a block ends after it only when
 *   its table entry is terminal).
 * Every semantic name must have a tier: this is a `Record` over the names, so a new instruction
 * without one does not compile (and tests/opcode_table_test.ts checks the table at run time).
 * @module
 */
import type { SemName } from "./ops.ts";

export type Tier = "native" | "exit" | "callout";

export const SEM_TIER: Readonly<Record<SemName, Tier>> = {
  // Integer arithmetic, moves and control flow the JIT emits itself.
  alu: "native", test: "native", incdec: "native", not: "native", neg: "native", mov: "native", movzx: "native",
  movsx: "native", lea: "native", xchg: "native", push: "native", pop: "native", cbw: "native", cwd: "native",
  jcc: "native", setcc: "native", cmovcc: "native", jmp: "native", jmpNear: "native", call: "native",
  callNear: "native", ret: "native", shift: "native", imul2: "native", imul3: "native", nop: "native", lods: "native",
  stos: "native", movs: "native", mul: "native", imul1: "native", div: "native", idiv: "native",
  // Port IO: the interpreter's function, ending the run at a VM exit.
  in: "exit", out: "exit",
  // The rest: the interpreter's function, called from compiled code.
  pushSeg: "callout", popSeg: "callout", pusha: "callout", popa: "callout", jmpFar: "callout",
  jmpFarIndirect: "callout", callFar: "callout", callFarIndirect: "callout", retFar: "callout", loop: "callout",
  jcxz: "callout", enter: "callout", leave: "callout", pushf: "callout", popf: "callout", sahf: "callout",
  lahf: "callout", flagOp: "callout", cli: "callout", sti: "callout", shd: "callout", bt: "callout", bsf: "callout",
  bsr: "callout", bswap: "callout", xadd: "callout", cmpxchg: "callout", cmpxchg8b: "callout", cmps: "callout",
  scas: "callout", ins: "callout", outs: "callout", int: "callout", int3: "callout", int1: "callout",
  into: "callout", iret: "callout", daa: "callout", das: "callout", aaa: "callout", aas: "callout", aam: "callout",
  aad: "callout", salc: "callout", xlat: "callout", bound: "callout", arpl: "callout", loadFarPtr: "callout",
  movFromSeg: "callout", movToSeg: "callout", wait: "callout", fpu: "callout", ud: "callout", hlt: "callout",
  cpuid: "callout", vmcall: "callout", rdtsc: "callout", rdmsr: "callout", wrmsr: "callout", invd: "callout",
  wbinvd: "callout", invlpg: "callout", movFromCr: "callout", movToCr: "callout", movFromDr: "callout",
  movToDr: "callout", sdt: "callout", ldt: "callout", smsw: "callout", lmsw: "callout", clts: "callout",
  sldt: "callout", str: "callout", lldt: "callout", ltr: "callout", larlsl: "callout", verrw: "callout",
  // MMX, SSE, SSE2, SSE3 (runtime/cpu/sse/): the interpreter's definitions, called from compiled code.
  sseArith: "callout", sseCmp: "callout", sseComi: "callout", sseCvt: "callout", ldmxcsr: "callout",
  stmxcsr: "callout", pint: "callout", pshiftImm: "callout", pshuf: "callout", pmovmskb: "callout",
  pextrw: "callout", pinsrw: "callout", sseMov: "callout", mmxMov: "callout", shufp: "callout", movmskp: "callout",
  maskmov: "callout", fxsave: "callout", fxrstor: "callout", fence: "callout", clflush: "callout", emms: "callout",
};
