/**
 * Operand access for the MMX and SSE instructions: the device-not-available and undefined-opcode
 * checks (SDM vol. 3, 2.5 and 13.1; vol. 2's "Exceptions" section of each instruction), XMM and MMX
 * registers in the state block (sse_state.ts), and 4-, 8- and 16-byte memory operands with the
 * alignment rule of legacy SSE (SDM vol. 1, 11.4.1: a 16-byte operand not aligned is #GP(0)).
 *
 * Restart rule (ops.ts): semantics load every operand into scratch first, then write memory, then
 * commit registers and MXCSR, so a fault or an MMIO exit leaves the instruction not executed.
 */
import type { Cpu } from "../cpu.ts";
import type { Insn } from "../insn.ts";
import { CpuFault } from "../fault.ts";
import * as addressMod from "../address.ts";
import * as stateMod from "../state.ts";
import * as sseStateMod from "../sse_state.ts";

const { Cr0, St, Vec } = stateMod;
const { Cr4Sse, SseOff } = sseStateMod;

export const XMM_W = SseOff.XMM >> 2; // word index of XMM0
export const FPR_W = SseOff.FPR >> 2;
export const MXCSR_W = SseOff.MXCSR >> 2;
const FSW_H = SseOff.FSW >> 1, FTW_H = SseOff.FTW >> 1;

/** Scratch operand buffers: A (the destination's old value), B (the source), R (the result). */
function scratch() {
  const buf = new ArrayBuffer(16);
  return {
    i32: new Int32Array(buf), u32: new Uint32Array(buf), u16: new Uint16Array(buf), i16: new Int16Array(buf),
    u8: new Uint8Array(buf), i8: new Int8Array(buf), f32: new Float32Array(buf), f64: new Float64Array(buf),
  };
}
export const A = scratch();
export const B = scratch();
export const R = scratch();

/** SSE, SSE2 and SSE3 instructions on XMM registers: CR0.EM or CR4.OSFXSR clear #UD, CR0.TS #NM (SDM vol. 3, 13.2). */
export function checkSse(c: Cpu): void {
  const cr0 = c.st[St.CR0];
  if ((cr0 & Cr0.EM) || !(c.st[St.CR4] & Cr4Sse.OSFXSR)) throw new CpuFault(Vec.UD);
  if (cr0 & Cr0.TS) throw new CpuFault(Vec.NM);
}
/** MMX-register instructions: CR0.EM #UD, CR0.TS #NM, a pending x87 exception (FSW.ES) #MF (SDM vol. 2, PADDB "Exceptions"). */
export function checkMmx(c: Cpu): void {
  const cr0 = c.st[St.CR0];
  if (cr0 & Cr0.EM) throw new CpuFault(Vec.UD);
  if (cr0 & Cr0.TS) throw new CpuFault(Vec.NM);
  if (c.st16[FSW_H] & 0x80) throw new CpuFault(Vec.MF);
}
/** MMX and SSE instructions that touch an MMX register and an XMM register (CVTPI2PS, MOVQ2DQ...). */
export function checkSseMmx(c: Cpu): void {
  checkSse(c);
  if (c.st16[FSW_H] & 0x80) throw new CpuFault(Vec.MF);
}

/** Effective address (address.ts). */
export const ea = addressMod.ea;

/** Read `n` bytes (4, 8 or 16) at the instruction's memory operand into `out`'s words. */
export function readMem(c: Cpu, i: Insn, n: number, align: boolean, out: Int32Array): void {
  const la = c.lin(i.seg, ea(c, i), n);
  if (align && (la & (n - 1))) throw new CpuFault(Vec.GP, 0);
  for (let k = 0; k < n >> 2; k++) out[k] = c.rdLin32((la + 4 * k) | 0);
}
/** Write `n` bytes (4, 8 or 16) from `words` to the memory operand, all pages checked before any byte is written. */
export function writeMem(c: Cpu, i: Insn, n: number, align: boolean, words: Int32Array, from = 0): void {
  c.checkWritable(i.seg);
  const la = c.lin(i.seg, ea(c, i), n);
  if (align && (la & (n - 1))) throw new CpuFault(Vec.GP, 0);
  if (((la & 0xfff) + n) > 0x1000) {
    c.translate(la, 1, true);
    c.translate((la + n - 1) | 0, 1, true);
  }
  for (let k = 0; k < n >> 2; k++) c.wrLin32((la + 4 * k) | 0, words[from + k]);
}

/** Copy XMM register `x` into scratch `out` (four words). */
export function getXmm(c: Cpu, x: number, out: Int32Array): void {
  const st = c.st, w = XMM_W + 4 * x;
  out[0] = st[w]; out[1] = st[w + 1]; out[2] = st[w + 2]; out[3] = st[w + 3];
}
/** Write the first `n` words of `v` to XMM register `x` (the rest keep their value). */
export function setXmm(c: Cpu, x: number, v: Int32Array, n = 4): void {
  const st = c.st, w = XMM_W + 4 * x;
  for (let k = 0; k < n; k++) st[w + k] = v[k];
}
/** Copy MMX register `m` (bytes 0-7 of physical x87 register R_m) into scratch `out`. */
export function getMm(c: Cpu, m: number, out: Int32Array): void {
  const w = FPR_W + 4 * m;
  out[0] = c.st[w]; out[1] = c.st[w + 1];
}
/**
 * Write MMX register `m`: bytes 0-7, and the sign/exponent bytes 8-9 set to all ones (SDM vol. 1,
 * 9.5.1). The instruction's x87 side effects (mmxCommit) are separate.
 */
export function setMm(c: Cpu, m: number, lo: number, hi: number): void {
  const w = FPR_W + 4 * m;
  c.st[w] = lo; c.st[w + 1] = hi;
  c.st16[(SseOff.FPR + 16 * m + 8) >> 1] = 0xffff;
}
/** What every MMX instruction does to the x87 state: TOP = 0 and all tags valid (SDM vol. 1, 9.5.1). */
export function mmxCommit(c: Cpu): void {
  c.st16[FSW_H] &= ~0x3800;
  c.st16[FTW_H] = 0;
}

/** The source operand W (XMM register or memory of `n` bytes) into `out`. */
export function loadW(c: Cpu, i: Insn, n: number, align: boolean, out: Int32Array): void {
  if (i.sk === 1) getXmm(c, i.sr, out);
  else readMem(c, i, n, align, out);
}
/** The source operand Q (MMX register or 8 bytes of memory; 4 for the Qd forms) into `out`. */
export function loadQ(c: Cpu, i: Insn, n: number, out: Int32Array): void {
  if (i.sk === 1) getMm(c, i.sr, out);
  else readMem(c, i, n, false, out);
}
