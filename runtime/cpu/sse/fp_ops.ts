/**
 * SSE, SSE2 and SSE3 floating-point semantics: packed and scalar single and double arithmetic,
 * min/max, square root, the reciprocal estimates, comparisons (CMPxx, COMIS, UCOMIS), and
 * conversions. The arithmetic itself is float.ts; this module applies x86's NaN rules (SDM vol. 1,
 * 4.8.3.5 and table 4-7: the first source NaN wins, quieted; a signaling NaN raises IE; invalid
 * operations return the QNaN floating-point indefinite) and the MXCSR protocol: flags are collected
 * per instruction, an unmasked one raises #XM (#UD when CR4.OSXMMEXCPT = 0) with the destination
 * unchanged (SDM vol. 1, 11.5.1), masked ones are ORed into MXCSR.
 */
import type { Cpu } from "../cpu.ts";
import type { Insn } from "../insn.ts";
import { CpuFault } from "../fault.ts";
import * as stateMod from "../state.ts";
import * as sseStateMod from "../sse_state.ts";
import * as F from "./float.ts";
import {
  A, B, checkSse, checkSseMmx, ea, getXmm, loadQ, loadW, mmxCommit, MXCSR_W, R, setMm, setXmm,
} from "./common.ts";

const { Fl, St, Vec } = stateMod;
const { Cr4Sse, Mx, MXCSR_MASK } = sseStateMod;
const F32 = F.F32, F64 = F.F64;

// ---------------------------------------------------------------------------------------------
// Bits and numbers
// ---------------------------------------------------------------------------------------------
const cv = new ArrayBuffer(8);
const cvF32 = new Float32Array(cv, 0, 1);
const cvF64 = new Float64Array(cv);
const cvI32 = new Int32Array(cv);

function num32(bits: number): number {
  cvI32[0] = bits;
  return cvF32[0];
}
/** Bits of a non-NaN single value; NaN (an invalid operation) gives the indefinite. */
function bits32(v: number): number {
  if (v !== v) return 0xffc00000 | 0;
  cvF32[0] = v;
  return cvI32[0];
}
function num64(lo: number, hi: number): number {
  cvI32[0] = lo; cvI32[1] = hi;
  return cvF64[0];
}
/** Store a double's bits into words k, k+1 of `out` (NaN: the indefinite). */
function put64(out: Int32Array, k: number, v: number): void {
  if (v !== v) { out[k] = 0; out[k + 1] = 0xfff80000 | 0; return; }
  cvF64[0] = v;
  out[k] = cvI32[0]; out[k + 1] = cvI32[1];
}
function isNaN32(b: number): boolean {
  return (b & 0x7fffffff) > 0x7f800000;
}
function isSNaN32(b: number): boolean {
  return isNaN32(b) && (b & 0x400000) === 0;
}
function isNaN64(lo: number, hi: number): boolean {
  const h = hi & 0x7fffffff;
  return h > 0x7ff00000 || (h === 0x7ff00000 && lo !== 0);
}
function isSNaN64(lo: number, hi: number): boolean {
  return isNaN64(lo, hi) && (hi & 0x80000) === 0;
}

/** Take MXCSR's mode for the instruction. */
function begin(c: Cpu): void {
  F.setMode(c.st[MXCSR_W]);
}
/**
 * Commit the collected flags: an unmasked exception is #XM (or #UD without CR4.OSXMMEXCPT) before
 * the destination is written; masked flags are sticky in MXCSR (SDM vol. 1, 11.5.1 and 11.5.3).
 */
export function commitFlags(c: Cpu): void {
  const f = F.M.fl;
  if (f === 0) return;
  const mx = c.st[MXCSR_W];
  const unmasked = ~(mx >> 7) & 0x3f;
  if ((f & unmasked) === 0) {
    c.st[MXCSR_W] = mx | f;
    return;
  }
  // An unmasked exception (SDM vol. 1, 11.5.1; the flags as measured on the host): an unmasked
  // pre-computation exception (IE, DE, ZE) stops the instruction before any result, so only the
  // pre-computation flags are set; otherwise every flag the lanes raised (float.ts computes PE
  // for an unmasked overflow or underflow from the unbounded-exponent result).
  const pre = f & (Mx.IE | Mx.DE | Mx.ZE);
  c.st[MXCSR_W] = mx | (pre & unmasked ? pre : f);
  throw new CpuFault(c.st[St.CR4] & Cr4Sse.OSXMMEXCPT ? Vec.XM : Vec.UD);
}

// ---------------------------------------------------------------------------------------------
// Element operations
// ---------------------------------------------------------------------------------------------
/** Arithmetic operation codes (the `sub` of the table divided by 4). */
const ADD = 0, MUL = 1, SUB = 2, MIN = 3, DIV = 4, MAX = 5, SQRT = 6, RCP = 7, RSQRT = 8;

/** Arithmetic on two non-NaN operands as read from the register (DAZ and DE applied here). */
function arith(op: number, a: number, b: number, fmt: number): number {
  switch (op) {
    case ADD: return F.binary(F.OP_ADD, a, b, fmt);
    case SUB: return F.binary(F.OP_SUB, a, b, fmt);
    case MUL: return F.binary(F.OP_MUL, a, b, fmt);
    default: return F.binary(F.OP_DIV, a, b, fmt);
  }
}

/** One single-precision lane: bits in, bits out. */
function op32(op: number, a: number, b: number): number {
  if (op === SQRT || op === RCP || op === RSQRT) {
    if (isNaN32(b)) { if (isSNaN32(b) && op === SQRT) F.raise(Mx.IE); return b | 0x400000; }
    if (op === SQRT) return bits32(F.sqrtOp(num32(b), F32));
    return bits32(estimate(op, num32(b)));
  }
  const an = isNaN32(a), bn = isNaN32(b);
  if (op === MIN || op === MAX) {
    // Any NaN: the second operand, and IE even for a QNaN (SDM MINPS/MAXPS).
    // With DAZ the returned operand is the zero a denormal reads as (measured on the host).
    if (an || bn) { F.raise(Mx.IE); return bn ? b : bits32(F.operandQuiet(num32(b), F32)); }
    const x = F.operand(num32(a), F32), y = F.operand(num32(b), F32);
    if (op === MIN ? x < y : x > y) return bits32(x);
    return bits32(y);
  }
  if (an || bn) {
    if (isSNaN32(a) || isSNaN32(b)) F.raise(Mx.IE);
    return (an ? a : b) | 0x400000;
  }
  return bits32(arith(op, num32(a), num32(b), F32));
}
/** One double lane: A words (al, ah) with B words (bl, bh) into R words k, k+1. */
function op64(op: number, al: number, ah: number, bl: number, bh: number, k: number): void {
  const o = R.i32;
  if (op === SQRT) {
    if (isNaN64(bl, bh)) { if (isSNaN64(bl, bh)) F.raise(Mx.IE); o[k] = bl; o[k + 1] = bh | 0x80000; return; }
    put64(o, k, F.sqrtOp(num64(bl, bh), F64));
    return;
  }
  const an = isNaN64(al, ah), bn = isNaN64(bl, bh);
  if (op === MIN || op === MAX) {
    if (an || bn) {
      F.raise(Mx.IE);
      if (bn) { o[k] = bl; o[k + 1] = bh; } else put64(o, k, F.operandQuiet(num64(bl, bh), F64));
      return;
    }
    const x = F.operand(num64(al, ah), F64), y = F.operand(num64(bl, bh), F64);
    put64(o, k, (op === MIN ? x < y : x > y) ? x : y);
    return;
  }
  if (an || bn) {
    if (isSNaN64(al, ah) || isSNaN64(bl, bh)) F.raise(Mx.IE);
    if (an) { o[k] = al; o[k + 1] = ah | 0x80000; } else { o[k] = bl; o[k + 1] = bh | 0x80000; }
    return;
  }
  put64(o, k, arith(op, num64(al, ah), num64(bl, bh), F64));
}

/**
 * RCPPS/RSQRTPS: an approximation with relative error at most 1.5 * 2^-12 (SDM RCPPS). Silicon
 * tables differ between processors; this gives the correctly rounded value, which is within the
 * bound. A denormal input is treated as zero (infinity of its sign), a result below the normal
 * range is zero, and no flags are raised.
 */
function estimate(op: number, x: number): number {
  const ax = Math.abs(x);
  if (op === RCP) {
    if (ax < 2 ** -126) return x < 0 || Object.is(x, -0) ? -Infinity : Infinity;
    const r = Math.fround(1 / x);
    return Math.abs(r) < 2 ** -126 ? (r < 0 ? -0 : 0) : r;
  }
  if (ax < 2 ** -126) return x < 0 || Object.is(x, -0) ? -Infinity : Infinity;
  if (x < 0) return NaN;
  return Math.fround(1 / Math.sqrt(x));
}

// ---------------------------------------------------------------------------------------------
// Semantics
// ---------------------------------------------------------------------------------------------
/**
 * Arithmetic: `sub` = op * 4 + form (0 ps, 1 pd, 2 ss, 3 sd). Also ADDSUB (op 9), HADD (10), HSUB (11).
 */
function sseArith(c: Cpu, i: Insn): void {
  checkSse(c);
  const op = i.sub >> 2, form = i.sub & 3;
  const n = form < 2 ? 16 : form === 2 ? 4 : 8;
  getXmm(c, i.dr, A.i32);
  loadW(c, i, n, form < 2, B.i32);
  begin(c);
  const a = A.i32, b = B.i32, r = R.i32;
  r[0] = a[0]; r[1] = a[1]; r[2] = a[2]; r[3] = a[3];
  if (op >= 9) horizontal(op, form, a, b);
  else if (form === 0) for (let k = 0; k < 4; k++) r[k] = op32(op, a[k], b[k]);
  else if (form === 2) r[0] = op32(op, a[0], b[0]);
  else if (form === 1) { op64(op, a[0], a[1], b[0], b[1], 0); op64(op, a[2], a[3], b[2], b[3], 2); }
  else op64(op, a[0], a[1], b[0], b[1], 0);
  commitFlags(c);
  setXmm(c, i.dr, r);
}
/** ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD (SSE3): lane pairs in the SDM's order. */
function horizontal(op: number, form: number, a: Int32Array, b: Int32Array): void {
  const r = R.i32;
  if (form === 0) {
    if (op === 9) {
      r[0] = op32(SUB, a[0], b[0]); r[1] = op32(ADD, a[1], b[1]);
      r[2] = op32(SUB, a[2], b[2]); r[3] = op32(ADD, a[3], b[3]);
    } else {
      const o = op === 10 ? ADD : SUB;
      const a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
      r[0] = op32(o, a0, a1); r[1] = op32(o, a2, a3); r[2] = op32(o, b0, b1); r[3] = op32(o, b2, b3);
    }
  } else {
    if (op === 9) {
      op64(SUB, a[0], a[1], b[0], b[1], 0);
      op64(ADD, a[2], a[3], b[2], b[3], 2);
    } else {
      const o = op === 10 ? ADD : SUB;
      const a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
      op64(o, a0, a1, a2, a3, 0);
      op64(o, b0, b1, b2, b3, 2);
    }
  }
}

/** CMPPS/CMPPD/CMPSS/CMPSD with predicate imm8[2:0] (SDM CMPPS, table 3-7). `sub` = form. */
function sseCmp(c: Cpu, i: Insn): void {
  checkSse(c);
  const form = i.sub;
  const n = form < 2 ? 16 : form === 2 ? 4 : 8;
  getXmm(c, i.dr, A.i32);
  loadW(c, i, n, form < 2, B.i32);
  begin(c);
  const p = i.imm & 7;
  const a = A.i32, b = B.i32, r = R.i32;
  r[0] = a[0]; r[1] = a[1]; r[2] = a[2]; r[3] = a[3];
  if (form === 0 || form === 2) {
    const lanes = form === 0 ? 4 : 1;
    for (let k = 0; k < lanes; k++) {
      const an = isNaN32(a[k]), bn = isNaN32(b[k]);
      const rel = an || bn ? cmpNaN(p, isSNaN32(a[k]) || isSNaN32(b[k])) : F.cmp(F.operand(num32(a[k]), F32), F.operand(num32(b[k]), F32));
      r[k] = predicate(p, rel) ? -1 : 0;
    }
  } else {
    const lanes = form === 1 ? 2 : 1;
    for (let k = 0; k < lanes; k++) {
      const al = a[2 * k], ah = a[2 * k + 1], bl = b[2 * k], bh = b[2 * k + 1];
      const an = isNaN64(al, ah), bn = isNaN64(bl, bh);
      const rel = an || bn ? cmpNaN(p, isSNaN64(al, ah) || isSNaN64(bl, bh)) : F.cmp(F.operand(num64(al, ah), F64), F.operand(num64(bl, bh), F64));
      const v = predicate(p, rel) ? -1 : 0;
      r[2 * k] = v; r[2 * k + 1] = v;
    }
  }
  commitFlags(c);
  setXmm(c, i.dr, r);
}
/** Unordered: the signaling predicates (LT, LE, NLT, NLE) raise IE for any NaN, the others for an SNaN. */
function cmpNaN(p: number, snan: boolean): number {
  if (snan || p === 1 || p === 2 || p === 5 || p === 6) F.raise(Mx.IE);
  return 2;
}
function predicate(p: number, rel: number): boolean {
  const un = rel === 2;
  switch (p) {
    case 0: return !un && rel === 0;
    case 1: return !un && rel < 0;
    case 2: return !un && rel <= 0;
    case 3: return un;
    case 4: return un || rel !== 0;
    case 5: return un || !(rel < 0);
    case 6: return un || !(rel <= 0);
    default: return !un;
  }
}

/** COMISS/UCOMISS/COMISD/UCOMISD: ZF, PF, CF from the comparison, OF SF AF cleared. `sub` = double*2 + ordered. */
function sseComi(c: Cpu, i: Insn): void {
  checkSse(c);
  const dbl = (i.sub & 2) !== 0, signaling = (i.sub & 1) !== 0;
  getXmm(c, i.dr, A.i32);
  loadW(c, i, dbl ? 8 : 4, false, B.i32);
  begin(c);
  const a = A.i32, b = B.i32;
  let rel: number;
  if (dbl) {
    if (isNaN64(a[0], a[1]) || isNaN64(b[0], b[1])) {
      if (signaling || isSNaN64(a[0], a[1]) || isSNaN64(b[0], b[1])) F.raise(Mx.IE);
      rel = 2;
    } else rel = F.cmp(F.operand(num64(a[0], a[1]), F64), F.operand(num64(b[0], b[1]), F64));
  } else {
    if (isNaN32(a[0]) || isNaN32(b[0])) {
      if (signaling || isSNaN32(a[0]) || isSNaN32(b[0])) F.raise(Mx.IE);
      rel = 2;
    } else rel = F.cmp(F.operand(num32(a[0]), F32), F.operand(num32(b[0]), F32));
  }
  commitFlags(c);
  const f = c.getFlags() & ~(Fl.OF | Fl.SF | Fl.AF | Fl.ZF | Fl.PF | Fl.CF);
  const set = rel === 2 ? Fl.ZF | Fl.PF | Fl.CF : rel < 0 ? Fl.CF : rel === 0 ? Fl.ZF : 0;
  c.setFlags(f | set);
}

// ---------------------------------------------------------------------------------------------
// Conversions (SDM CVTxx2yy). `sub` selects the conversion.
// ---------------------------------------------------------------------------------------------
export const Cvt = {
  PI2PS: 0, PI2PD: 1, SI2SS: 2, SI2SD: 3, TPS2PI: 4, TPD2PI: 5, TSS2SI: 6, TSD2SI: 7, PS2PI: 8, PD2PI: 9,
  SS2SI: 10, SD2SI: 11, PS2PD: 12, PD2PS: 13, SS2SD: 14, SD2SS: 15, DQ2PS: 16, PS2DQ: 17, TPS2DQ: 18,
  TPD2DQ: 19, DQ2PD: 20, PD2DQ: 21,
} as const;

/** A single lane to int32 (NaN: indefinite and IE). */
function s2i(b: number, trunc: boolean): number {
  if (isNaN32(b)) { F.raise(Mx.IE); return -0x80000000; }
  return F.toInt32(F.operandQuiet(num32(b), F32), trunc);
}
function d2i(lo: number, hi: number, trunc: boolean): number {
  if (isNaN64(lo, hi)) { F.raise(Mx.IE); return -0x80000000; }
  return F.toInt32(F.operandQuiet(num64(lo, hi), F64), trunc);
}
/** Single to double: exact; SNaN quieted with IE, denormal DE (or zero with DAZ). */
function s2d(b: number, k: number): void {
  if (isNaN32(b)) {
    if (isSNaN32(b)) F.raise(Mx.IE);
    // The payload moves to the top of the double significand (SDM 4.8.3.7).
    R.i32[k] = (b & 0x7) << 29;
    R.i32[k + 1] = (b & 0x80000000) | 0x7ff80000 | ((b & 0x3fffff) >>> 3);
    return;
  }
  put64(R.i32, k, F.operand(num32(b), F32));
}
function d2s(lo: number, hi: number): number {
  if (isNaN64(lo, hi)) {
    if (isSNaN64(lo, hi)) F.raise(Mx.IE);
    return (hi & 0x80000000) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (lo >>> 29);
  }
  return bits32(F.toFormat(F.operand(num64(lo, hi), F64), F32));
}

function sseCvt(c: Cpu, i: Insn): void {
  const s = i.sub;
  const a = A.i32, b = B.i32, r = R.i32;
  const mmxDst = s === Cvt.TPS2PI || s === Cvt.TPD2PI || s === Cvt.PS2PI || s === Cvt.PD2PI;
  const mmxSrc = (s === Cvt.PI2PS || s === Cvt.PI2PD) && i.sk === 1;
  if (mmxDst || mmxSrc) checkSseMmx(c);
  else checkSse(c);
  // Sources
  switch (s) {
    case Cvt.PI2PS: case Cvt.PI2PD: loadQ(c, i, 8, b); break;
    case Cvt.SI2SS: case Cvt.SI2SD: b[0] = i.sk === 1 ? c.st[i.sr] : c.rd32(i.seg, ea(c, i)); break;
    case Cvt.TPS2PI: case Cvt.PS2PI: case Cvt.TSD2SI: case Cvt.SD2SI: case Cvt.PS2PD: case Cvt.SD2SS: case Cvt.DQ2PD:
      loadW(c, i, 8, false, b); break;
    case Cvt.TSS2SI: case Cvt.SS2SI: case Cvt.SS2SD: loadW(c, i, 4, false, b); break;
    default: loadW(c, i, 16, true, b);
  }
  const toXmm = !mmxDst && s !== Cvt.TSS2SI && s !== Cvt.TSD2SI && s !== Cvt.SS2SI && s !== Cvt.SD2SI;
  if (toXmm) getXmm(c, i.dr, a);
  begin(c);
  r[0] = a[0]; r[1] = a[1]; r[2] = a[2]; r[3] = a[3];
  let gpr = 0;
  switch (s) {
    case Cvt.PI2PS: r[0] = bits32(F.toFormat(b[0], F32)); r[1] = bits32(F.toFormat(b[1], F32)); break;
    case Cvt.PI2PD: put64(r, 0, b[0]); put64(r, 2, b[1]); break;
    case Cvt.SI2SS: r[0] = bits32(F.toFormat(b[0], F32)); break;
    case Cvt.SI2SD: put64(r, 0, b[0]); break;
    case Cvt.TPS2PI: case Cvt.PS2PI: { const t = s === Cvt.TPS2PI; r[0] = s2i(b[0], t); r[1] = s2i(b[1], t); break; }
    case Cvt.TPD2PI: case Cvt.PD2PI: { const t = s === Cvt.TPD2PI; r[0] = d2i(b[0], b[1], t); r[1] = d2i(b[2], b[3], t); break; }
    case Cvt.TSS2SI: case Cvt.SS2SI: gpr = s2i(b[0], s === Cvt.TSS2SI); break;
    case Cvt.TSD2SI: case Cvt.SD2SI: gpr = d2i(b[0], b[1], s === Cvt.TSD2SI); break;
    case Cvt.PS2PD: { const b0 = b[0], b1 = b[1]; s2d(b0, 0); s2d(b1, 2); break; }
    case Cvt.PD2PS: r[0] = d2s(b[0], b[1]); r[1] = d2s(b[2], b[3]); r[2] = 0; r[3] = 0; break;
    case Cvt.SS2SD: s2d(b[0], 0); break;
    case Cvt.SD2SS: r[0] = d2s(b[0], b[1]); break;
    case Cvt.DQ2PS: for (let k = 0; k < 4; k++) r[k] = bits32(F.toFormat(b[k], F32)); break;
    case Cvt.PS2DQ: case Cvt.TPS2DQ: for (let k = 0; k < 4; k++) r[k] = s2i(b[k], s === Cvt.TPS2DQ); break;
    case Cvt.TPD2DQ: case Cvt.PD2DQ: {
      const t = s === Cvt.TPD2DQ;
      r[0] = d2i(b[0], b[1], t); r[1] = d2i(b[2], b[3], t); r[2] = 0; r[3] = 0; break;
    }
    case Cvt.DQ2PD: { const b0 = b[0], b1 = b[1]; put64(r, 0, b0); put64(r, 2, b1); break; }
  }
  commitFlags(c);
  if (mmxDst) { setMm(c, i.dr, r[0], r[1]); mmxCommit(c); return; }
  if (!toXmm) { c.st[i.dr] = gpr; return; }
  setXmm(c, i.dr, r);
  if (mmxSrc) mmxCommit(c);
}

/** LDMXCSR: reserved bits set is #GP(0) (SDM LDMXCSR). */
function ldmxcsr(c: Cpu, i: Insn): void {
  checkSse(c);
  const v = c.rd32(i.seg, ea(c, i));
  if (v & ~MXCSR_MASK) throw new CpuFault(Vec.GP, 0);
  c.st[MXCSR_W] = v;
}
function stmxcsr(c: Cpu, i: Insn): void {
  checkSse(c);
  c.checkWritable(i.seg);
  c.wr32(i.seg, ea(c, i), c.st[MXCSR_W]);
}

export const fpSemantics = { sseArith, sseCmp, sseComi, sseCvt, ldmxcsr, stmxcsr };
