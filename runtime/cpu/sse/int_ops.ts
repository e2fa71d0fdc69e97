/**
 * The MMX and SSE2 integer instructions, one definition for both register files: `sub` is the
 * operation, with bit 8 set for the 128-bit XMM form (66 prefix) and clear for the 64-bit MMX form
 * (SDM vol. 1, chapters 9 and 11.4.3; each instruction's page in vol. 2). An MMX form also makes the
 * x87 transition of every MMX instruction (TOP = 0, all tags valid).
 */
import type { Cpu } from "../cpu.ts";
import type { Insn } from "../insn.ts";
import {
  A, B, checkMmx, checkSse, ea, getMm, getXmm, loadQ, loadW, mmxCommit, R, setMm, setXmm,
} from "./common.ts";

/** Operation numbers (the `sub` of the table, without the XMM bit). */
export const Pi = {
  PADDB: 0, PADDW: 1, PADDD: 2, PADDQ: 3, PSUBB: 4, PSUBW: 5, PSUBD: 6, PSUBQ: 7,
  PADDSB: 8, PADDSW: 9, PADDUSB: 10, PADDUSW: 11, PSUBSB: 12, PSUBSW: 13, PSUBUSB: 14, PSUBUSW: 15,
  PMULLW: 16, PMULHW: 17, PMULHUW: 18, PMULUDQ: 19, PMADDWD: 20, PSADBW: 21, PAVGB: 22, PAVGW: 23,
  PMINUB: 24, PMAXUB: 25, PMINSW: 26, PMAXSW: 27, PAND: 28, PANDN: 29, POR: 30, PXOR: 31,
  PCMPEQB: 32, PCMPEQW: 33, PCMPEQD: 34, PCMPGTB: 35, PCMPGTW: 36, PCMPGTD: 37,
  PACKSSWB: 38, PACKSSDW: 39, PACKUSWB: 40,
  PUNPCKLBW: 41, PUNPCKLWD: 42, PUNPCKLDQ: 43, PUNPCKLQDQ: 44, PUNPCKHBW: 45, PUNPCKHWD: 46, PUNPCKHDQ: 47, PUNPCKHQDQ: 48,
  PSRLW: 49, PSRLD: 50, PSRLQ: 51, PSRAW: 52, PSRAD: 53, PSLLW: 54, PSLLD: 55, PSLLQ: 56,
  PSRLDQ: 57, PSLLDQ: 58,
} as const;
/** The XMM-form bit of `sub`. */
export const PI_XMM = 0x100;

function satS8(v: number): number { return v > 127 ? 127 : v < -128 ? -128 : v; }
function satU8(v: number): number { return v > 255 ? 255 : v < 0 ? 0 : v; }
function satS16(v: number): number { return v > 32767 ? 32767 : v < -32768 ? -32768 : v; }
function satU16(v: number): number { return v > 65535 ? 65535 : v < 0 ? 0 : v; }

/** Load the operands of a two-operand integer instruction: A = destination, B = source. */
function operands(c: Cpu, i: Insn, xmm: boolean, srcBytes: number): void {
  if (xmm) {
    checkSse(c);
    getXmm(c, i.dr, A.i32);
    loadW(c, i, srcBytes, srcBytes === 16, B.i32);
  } else {
    checkMmx(c);
    getMm(c, i.dr, A.i32);
    B.i32[1] = 0;
    loadQ(c, i, srcBytes, B.i32);
  }
}
function commit(c: Cpu, i: Insn, xmm: boolean): void {
  if (xmm) setXmm(c, i.dr, R.i32);
  else { setMm(c, i.dr, R.i32[0], R.i32[1]); mmxCommit(c); }
}

/** The two-operand integer instructions (Pq,Qq and Vdq,Wdq). */
function pint(c: Cpu, i: Insn): void {
  const xmm = (i.sub & PI_XMM) !== 0, op = i.sub & 0xff;
  const n = xmm ? 16 : 8;
  // PUNPCKL* of MMX registers read only 32 bits of memory (Qd, SDM PUNPCKLBW).
  const srcBytes = !xmm && op >= Pi.PUNPCKLBW && op <= Pi.PUNPCKLDQ ? 4 : n;
  operands(c, i, xmm, srcBytes);
  if (op >= Pi.PSRLW && op <= Pi.PSLLQ) shift(op, n, shiftCount(B.u32));
  else compute(op, n);
  commit(c, i, xmm);
}
/** A shift count from a 64-bit source: anything at or above 2^32 is "large". */
function shiftCount(b: Uint32Array): number {
  return b[1] !== 0 ? 0xffff : Math.min(b[0], 0xffff);
}
/** The shift-by-immediate groups (0F 71-73): Nq,Ib or Udq,Ib; `sub` as for pint. */
function pshiftImm(c: Cpu, i: Insn): void {
  const xmm = (i.sub & PI_XMM) !== 0, op = i.sub & 0xff;
  const n = xmm ? 16 : 8;
  if (xmm) { checkSse(c); getXmm(c, i.dr, A.i32); } else { checkMmx(c); getMm(c, i.dr, A.i32); }
  const count = i.imm & 0xff;
  if (op === Pi.PSRLDQ || op === Pi.PSLLDQ) {
    const a = A.u8, r = R.u8, sh = count > 16 ? 16 : count;
    for (let k = 0; k < 16; k++) {
      const from = op === Pi.PSRLDQ ? k + sh : k - sh;
      r[k] = from >= 0 && from < 16 ? a[from] : 0;
    }
  } else shift(op, n, count);
  commit(c, i, xmm);
}

function shift(op: number, n: number, count: number): void {
  const r = R, a = A;
  switch (op) {
    case Pi.PSRLW: for (let k = 0; k < n >> 1; k++) r.u16[k] = count > 15 ? 0 : a.u16[k] >>> count; break;
    case Pi.PSLLW: for (let k = 0; k < n >> 1; k++) r.u16[k] = count > 15 ? 0 : a.u16[k] << count; break;
    case Pi.PSRAW: for (let k = 0; k < n >> 1; k++) r.i16[k] = a.i16[k] >> (count > 15 ? 15 : count); break;
    case Pi.PSRLD: for (let k = 0; k < n >> 2; k++) r.u32[k] = count > 31 ? 0 : a.u32[k] >>> count; break;
    case Pi.PSLLD: for (let k = 0; k < n >> 2; k++) r.u32[k] = count > 31 ? 0 : a.u32[k] << count; break;
    case Pi.PSRAD: for (let k = 0; k < n >> 2; k++) r.i32[k] = a.i32[k] >> (count > 31 ? 31 : count); break;
    case Pi.PSRLQ: case Pi.PSLLQ:
      for (let k = 0; k < n >> 3; k++) {
        const lo = a.u32[2 * k], hi = a.u32[2 * k + 1];
        let rl = 0, rh = 0;
        if (count < 64) {
          if (op === Pi.PSRLQ) {
            if (count === 0) { rl = lo; rh = hi; } else if (count < 32) { rl = (lo >>> count) | (hi << (32 - count)); rh = hi >>> count; } else { rl = hi >>> (count - 32); rh = 0; }
          } else {
            if (count === 0) { rl = lo; rh = hi; } else if (count < 32) { rh = (hi << count) | (lo >>> (32 - count)); rl = lo << count; } else { rh = lo << (count - 32); rl = 0; }
          }
        }
        r.u32[2 * k] = rl; r.u32[2 * k + 1] = rh;
      }
      break;
  }
}

function compute(op: number, n: number): void {
  const a = A, b = B, r = R;
  switch (op) {
    case Pi.PADDB: for (let k = 0; k < n; k++) r.u8[k] = a.u8[k] + b.u8[k]; break;
    case Pi.PADDW: for (let k = 0; k < n >> 1; k++) r.u16[k] = a.u16[k] + b.u16[k]; break;
    case Pi.PADDD: for (let k = 0; k < n >> 2; k++) r.i32[k] = a.i32[k] + b.i32[k]; break;
    case Pi.PADDQ: case Pi.PSUBQ:
      for (let k = 0; k < n >> 3; k++) {
        const x = (BigInt(a.u32[2 * k + 1]) << 32n) | BigInt(a.u32[2 * k]);
        const y = (BigInt(b.u32[2 * k + 1]) << 32n) | BigInt(b.u32[2 * k]);
        const z = BigInt.asUintN(64, op === Pi.PADDQ ? x + y : x - y);
        r.u32[2 * k] = Number(z & 0xffffffffn); r.u32[2 * k + 1] = Number(z >> 32n);
      }
      break;
    case Pi.PSUBB: for (let k = 0; k < n; k++) r.u8[k] = a.u8[k] - b.u8[k]; break;
    case Pi.PSUBW: for (let k = 0; k < n >> 1; k++) r.u16[k] = a.u16[k] - b.u16[k]; break;
    case Pi.PSUBD: for (let k = 0; k < n >> 2; k++) r.i32[k] = a.i32[k] - b.i32[k]; break;
    case Pi.PADDSB: for (let k = 0; k < n; k++) r.i8[k] = satS8(a.i8[k] + b.i8[k]); break;
    case Pi.PADDSW: for (let k = 0; k < n >> 1; k++) r.i16[k] = satS16(a.i16[k] + b.i16[k]); break;
    case Pi.PADDUSB: for (let k = 0; k < n; k++) r.u8[k] = satU8(a.u8[k] + b.u8[k]); break;
    case Pi.PADDUSW: for (let k = 0; k < n >> 1; k++) r.u16[k] = satU16(a.u16[k] + b.u16[k]); break;
    case Pi.PSUBSB: for (let k = 0; k < n; k++) r.i8[k] = satS8(a.i8[k] - b.i8[k]); break;
    case Pi.PSUBSW: for (let k = 0; k < n >> 1; k++) r.i16[k] = satS16(a.i16[k] - b.i16[k]); break;
    case Pi.PSUBUSB: for (let k = 0; k < n; k++) r.u8[k] = satU8(a.u8[k] - b.u8[k]); break;
    case Pi.PSUBUSW: for (let k = 0; k < n >> 1; k++) r.u16[k] = satU16(a.u16[k] - b.u16[k]); break;
    case Pi.PMULLW: for (let k = 0; k < n >> 1; k++) r.i16[k] = Math.imul(a.i16[k], b.i16[k]); break;
    case Pi.PMULHW: for (let k = 0; k < n >> 1; k++) r.i16[k] = (a.i16[k] * b.i16[k]) >> 16; break;
    case Pi.PMULHUW: for (let k = 0; k < n >> 1; k++) r.u16[k] = (a.u16[k] * b.u16[k]) >>> 16; break;
    case Pi.PMULUDQ:
      for (let k = 0; k < n >> 3; k++) {
        const z = BigInt(a.u32[2 * k]) * BigInt(b.u32[2 * k]);
        r.u32[2 * k] = Number(z & 0xffffffffn); r.u32[2 * k + 1] = Number(z >> 32n);
      }
      break;
    case Pi.PMADDWD:
      for (let k = 0; k < n >> 2; k++) {
        // 0x8000 * 0x8000 twice wraps to 0x80000000 (SDM PMADDWD).
        r.i32[k] = (a.i16[2 * k] * b.i16[2 * k] + a.i16[2 * k + 1] * b.i16[2 * k + 1]) | 0;
      }
      break;
    case Pi.PSADBW:
      for (let q = 0; q < n >> 3; q++) {
        let s = 0;
        for (let k = 0; k < 8; k++) s += Math.abs(a.u8[8 * q + k] - b.u8[8 * q + k]);
        r.u32[2 * q] = s; r.u32[2 * q + 1] = 0;
      }
      break;
    case Pi.PAVGB: for (let k = 0; k < n; k++) r.u8[k] = (a.u8[k] + b.u8[k] + 1) >> 1; break;
    case Pi.PAVGW: for (let k = 0; k < n >> 1; k++) r.u16[k] = (a.u16[k] + b.u16[k] + 1) >> 1; break;
    case Pi.PMINUB: for (let k = 0; k < n; k++) r.u8[k] = Math.min(a.u8[k], b.u8[k]); break;
    case Pi.PMAXUB: for (let k = 0; k < n; k++) r.u8[k] = Math.max(a.u8[k], b.u8[k]); break;
    case Pi.PMINSW: for (let k = 0; k < n >> 1; k++) r.i16[k] = Math.min(a.i16[k], b.i16[k]); break;
    case Pi.PMAXSW: for (let k = 0; k < n >> 1; k++) r.i16[k] = Math.max(a.i16[k], b.i16[k]); break;
    case Pi.PAND: for (let k = 0; k < n >> 2; k++) r.i32[k] = a.i32[k] & b.i32[k]; break;
    case Pi.PANDN: for (let k = 0; k < n >> 2; k++) r.i32[k] = ~a.i32[k] & b.i32[k]; break;
    case Pi.POR: for (let k = 0; k < n >> 2; k++) r.i32[k] = a.i32[k] | b.i32[k]; break;
    case Pi.PXOR: for (let k = 0; k < n >> 2; k++) r.i32[k] = a.i32[k] ^ b.i32[k]; break;
    case Pi.PCMPEQB: for (let k = 0; k < n; k++) r.u8[k] = a.u8[k] === b.u8[k] ? 0xff : 0; break;
    case Pi.PCMPEQW: for (let k = 0; k < n >> 1; k++) r.u16[k] = a.u16[k] === b.u16[k] ? 0xffff : 0; break;
    case Pi.PCMPEQD: for (let k = 0; k < n >> 2; k++) r.i32[k] = a.i32[k] === b.i32[k] ? -1 : 0; break;
    case Pi.PCMPGTB: for (let k = 0; k < n; k++) r.u8[k] = a.i8[k] > b.i8[k] ? 0xff : 0; break;
    case Pi.PCMPGTW: for (let k = 0; k < n >> 1; k++) r.u16[k] = a.i16[k] > b.i16[k] ? 0xffff : 0; break;
    case Pi.PCMPGTD: for (let k = 0; k < n >> 2; k++) r.i32[k] = a.i32[k] > b.i32[k] ? -1 : 0; break;
    case Pi.PACKSSWB: case Pi.PACKUSWB: {
      // n result bytes: the first half from A's words, the second from B's (R is separate from both).
      const h = n >> 1, us = op === Pi.PACKUSWB;
      for (let k = 0; k < n; k++) {
        const v = k < h ? a.i16[k] : b.i16[k - h];
        if (us) r.u8[k] = satU8(v); else r.i8[k] = satS8(v);
      }
      break;
    }
    case Pi.PACKSSDW: {
      const h = n >> 2;
      for (let k = 0; k < 2 * h; k++) r.i16[k] = satS16(k < h ? a.i32[k] : b.i32[k - h]);
      break;
    }
    case Pi.PUNPCKLBW: case Pi.PUNPCKHBW: {
      const base = op === Pi.PUNPCKHBW ? n >> 1 : 0;
      for (let k = 0; k < n >> 1; k++) { r.u8[2 * k] = a.u8[base + k]; r.u8[2 * k + 1] = b.u8[base + k]; }
      break;
    }
    case Pi.PUNPCKLWD: case Pi.PUNPCKHWD: {
      const base = op === Pi.PUNPCKHWD ? n >> 2 : 0;
      for (let k = 0; k < n >> 2; k++) { r.u16[2 * k] = a.u16[base + k]; r.u16[2 * k + 1] = b.u16[base + k]; }
      break;
    }
    case Pi.PUNPCKLDQ: case Pi.PUNPCKHDQ: {
      const base = op === Pi.PUNPCKHDQ ? n >> 3 : 0;
      for (let k = 0; k < n >> 3; k++) { r.i32[2 * k] = a.i32[base + k]; r.i32[2 * k + 1] = b.i32[base + k]; }
      break;
    }
    case Pi.PUNPCKLQDQ: r.i32[0] = a.i32[0]; r.i32[1] = a.i32[1]; r.i32[2] = b.i32[0]; r.i32[3] = b.i32[1]; break;
    case Pi.PUNPCKHQDQ: r.i32[0] = a.i32[2]; r.i32[1] = a.i32[3]; r.i32[2] = b.i32[2]; r.i32[3] = b.i32[3]; break;
  }
}

/** PSHUFW (sub 0), PSHUFD (1), PSHUFHW (2), PSHUFLW (3), with the order in imm8. */
function pshuf(c: Cpu, i: Insn): void {
  const s = i.sub, imm = i.imm & 0xff;
  if (s === 0) { checkMmx(c); loadQ(c, i, 8, B.i32); } else { checkSse(c); loadW(c, i, 16, true, B.i32); }
  const b = B, r = R;
  if (s === 0) for (let k = 0; k < 4; k++) r.u16[k] = b.u16[(imm >> (2 * k)) & 3];
  else if (s === 1) for (let k = 0; k < 4; k++) r.i32[k] = b.i32[(imm >> (2 * k)) & 3];
  else if (s === 2) {
    r.i32[0] = b.i32[0]; r.i32[1] = b.i32[1];
    for (let k = 0; k < 4; k++) r.u16[4 + k] = b.u16[4 + ((imm >> (2 * k)) & 3)];
  } else {
    r.i32[2] = b.i32[2]; r.i32[3] = b.i32[3];
    for (let k = 0; k < 4; k++) r.u16[k] = b.u16[(imm >> (2 * k)) & 3];
  }
  if (s === 0) { setMm(c, i.dr, r.i32[0], r.i32[1]); mmxCommit(c); } else setXmm(c, i.dr, r.i32);
}

/** PMOVMSKB Gd, Nq/Udq: `sub` 1 for XMM. */
function pmovmskb(c: Cpu, i: Insn): void {
  const xmm = i.sub === 1;
  if (xmm) { checkSse(c); getXmm(c, i.sr, B.i32); } else { checkMmx(c); getMm(c, i.sr, B.i32); }
  let m = 0;
  for (let k = 0; k < (xmm ? 16 : 8); k++) m |= (B.u8[k] >> 7) << k;
  c.st[i.dr] = m;
  if (!xmm) mmxCommit(c);
}
/** PEXTRW Gd, Nq/Udq, Ib. */
function pextrw(c: Cpu, i: Insn): void {
  const xmm = i.sub === 1;
  if (xmm) { checkSse(c); getXmm(c, i.sr, B.i32); } else { checkMmx(c); getMm(c, i.sr, B.i32); }
  const v = B.u16[i.imm & (xmm ? 7 : 3)];
  c.st[i.dr] = v;
  if (!xmm) mmxCommit(c);
}
/** PINSRW Pq/Vdq, Rd/Mw, Ib. */
function pinsrw(c: Cpu, i: Insn): void {
  const xmm = i.sub === 1;
  if (xmm) { checkSse(c); getXmm(c, i.dr, R.i32); } else { checkMmx(c); getMm(c, i.dr, R.i32); }
  const v = i.sk === 1 ? c.st16[i.sr] : c.rd16(i.seg, ea(c, i));
  R.u16[i.imm & (xmm ? 7 : 3)] = v;
  if (xmm) setXmm(c, i.dr, R.i32);
  else { setMm(c, i.dr, R.i32[0], R.i32[1]); mmxCommit(c); }
}

export const intSemantics = { pint, pshiftImm, pshuf, pmovmskb, pextrw, pinsrw };
