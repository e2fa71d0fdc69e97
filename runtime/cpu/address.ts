/**
 * The effective address of a decoded memory operand (base + index << scale + displacement, at the
 * address size). A leaf module: the integer semantics (ops.ts) and the SIMD ones (sse/) both use
 * it, and bind it module-locally so the hot path reads no imported binding.
 */
import type { Cpu } from "./cpu.ts";
import type { Insn } from "./insn.ts";

export function ea(c: Cpu, i: Insn): number {
  let a = i.disp;
  if (i.base >= 0) a += c.st[i.base << 1];
  if (i.index >= 0) a += c.st[i.index << 1] << i.scale;
  return i.asz === 4 ? a | 0 : a & 0xffff;
}
