/**
 * Data movement, shuffles, masks, non-temporal stores, FXSAVE/FXRSTOR, the fences and CLFLUSH
 * (SDM vol. 2, each instruction's page; FXSAVE's image is table 10-2 of vol. 1, the 32-bit format).
 */
import type { Cpu } from "../cpu.ts";
import type { Insn } from "../insn.ts";
import { CpuFault } from "../fault.ts";
import * as stateMod from "../state.ts";
import * as sseStateMod from "../sse_state.ts";
import {
  A, B, checkMmx, checkSse, checkSseMmx, ea, FPR_W, getMm, getXmm, loadQ, loadW, mmxCommit, MXCSR_W, R,
  readMem, setMm, setXmm, writeMem, XMM_W,
} from "./common.ts";

const { Cr0, St, Vec } = stateMod;
const { MXCSR_MASK, SseOff } = sseStateMod;

/** `sseMov` sub-operations. */
export const Mv = {
  LOADU: 0, LOADA: 1, STOREU: 2, STOREA: 3, MOVSS_L: 4, MOVSS_S: 5, MOVSD_L: 6, MOVSD_S: 7,
  MOVLPS_L: 8, MOVLPS_S: 9, MOVHPS_L: 10, MOVHPS_S: 11, MOVSLDUP: 12, MOVSHDUP: 13, MOVDDUP: 14,
  MOVQ_L: 17, MOVQ_S: 18, MOVD_L: 19, MOVD_S: 20, MOVQ2DQ: 21, MOVDQ2Q: 22,
} as const;

/** The XMM moves (MOVAPS ... MOVQ2DQ), by `sub` (Mv). */
function sseMov(c: Cpu, i: Insn): void {
  const s = i.sub;
  if (s === Mv.MOVQ2DQ || s === Mv.MOVDQ2Q) checkSseMmx(c);
  else checkSse(c);
  const r = R.i32, b = B.i32;
  switch (s) {
    case Mv.LOADU: case Mv.LOADA:
      loadW(c, i, 16, s === Mv.LOADA, r);
      setXmm(c, i.dr, r);
      return;
    case Mv.STOREU: case Mv.STOREA:
      getXmm(c, i.sr, r);
      if (i.dk === 2) writeMem(c, i, 16, s === Mv.STOREA, r);
      else setXmm(c, i.dr, r);
      return;
    case Mv.MOVSS_L: case Mv.MOVSD_L: {
      const w = s === Mv.MOVSS_L ? 1 : 2;
      if (i.sk === 1) { getXmm(c, i.sr, b); setXmm(c, i.dr, b, w); return; }
      readMem(c, i, 4 * w, false, b);
      for (let k = w; k < 4; k++) b[k] = 0;
      setXmm(c, i.dr, b);
      return;
    }
    case Mv.MOVSS_S: case Mv.MOVSD_S: {
      const w = s === Mv.MOVSS_S ? 1 : 2;
      getXmm(c, i.sr, b);
      if (i.dk === 2) writeMem(c, i, 4 * w, false, b);
      else setXmm(c, i.dr, b, w);
      return;
    }
    case Mv.MOVLPS_L: case Mv.MOVHPS_L: {
      getXmm(c, i.dr, r);
      const to = s === Mv.MOVLPS_L ? 0 : 2;
      if (i.sk === 1) {
        // MOVHLPS (0F 12, register form): low <- source high; MOVLHPS (0F 16): high <- source low.
        getXmm(c, i.sr, b);
        const from = s === Mv.MOVLPS_L ? 2 : 0;
        r[to] = b[from]; r[to + 1] = b[from + 1];
      } else {
        readMem(c, i, 8, false, b);
        r[to] = b[0]; r[to + 1] = b[1];
      }
      setXmm(c, i.dr, r);
      return;
    }
    case Mv.MOVLPS_S: case Mv.MOVHPS_S:
      getXmm(c, i.sr, b);
      writeMem(c, i, 8, false, b, s === Mv.MOVLPS_S ? 0 : 2);
      return;
    case Mv.MOVSLDUP: case Mv.MOVSHDUP: {
      loadW(c, i, 16, true, b);
      const o = s === Mv.MOVSHDUP ? 1 : 0;
      r[0] = b[o]; r[1] = b[o]; r[2] = b[2 + o]; r[3] = b[2 + o];
      setXmm(c, i.dr, r);
      return;
    }
    case Mv.MOVDDUP:
      loadW(c, i, 8, false, b);
      r[0] = b[0]; r[1] = b[1]; r[2] = b[0]; r[3] = b[1];
      setXmm(c, i.dr, r);
      return;
    case Mv.MOVQ_L:
      loadW(c, i, 8, false, b);
      r[0] = b[0]; r[1] = b[1]; r[2] = 0; r[3] = 0;
      setXmm(c, i.dr, r);
      return;
    case Mv.MOVQ_S:
      getXmm(c, i.sr, b);
      if (i.dk === 2) { writeMem(c, i, 8, false, b); return; }
      b[2] = 0; b[3] = 0;
      setXmm(c, i.dr, b);
      return;
    case Mv.MOVD_L:
      r[0] = i.sk === 1 ? c.st[i.sr] : c.rd32(i.seg, ea(c, i));
      r[1] = 0; r[2] = 0; r[3] = 0;
      setXmm(c, i.dr, r);
      return;
    case Mv.MOVD_S:
      getXmm(c, i.sr, b);
      if (i.dk === 2) { c.checkWritable(i.seg); c.wr32(i.seg, ea(c, i), b[0]); } else c.st[i.dr] = b[0];
      return;
    case Mv.MOVQ2DQ:
      getMm(c, i.sr, b);
      r[0] = b[0]; r[1] = b[1]; r[2] = 0; r[3] = 0;
      setXmm(c, i.dr, r);
      mmxCommit(c);
      return;
    case Mv.MOVDQ2Q:
      getXmm(c, i.sr, b);
      setMm(c, i.dr, b[0], b[1]);
      mmxCommit(c);
      return;
  }
}

/** The MMX moves: MOVD Pq,Ed (0), MOVD Ed,Pq (1), MOVQ Pq,Qq (2), MOVQ Qq,Pq (3), MOVNTQ Mq,Pq (4). */
function mmxMov(c: Cpu, i: Insn): void {
  checkMmx(c);
  const b = B.i32;
  switch (i.sub) {
    case 0: {
      const v = i.sk === 1 ? c.st[i.sr] : c.rd32(i.seg, ea(c, i));
      setMm(c, i.dr, v, 0);
      break;
    }
    case 1:
      getMm(c, i.sr, b);
      if (i.dk === 2) { c.checkWritable(i.seg); c.wr32(i.seg, ea(c, i), b[0]); } else c.st[i.dr] = b[0];
      break;
    case 2:
      loadQ(c, i, 8, b);
      setMm(c, i.dr, b[0], b[1]);
      break;
    default:
      getMm(c, i.sr, b);
      if (i.dk === 2) writeMem(c, i, 8, false, b);
      else setMm(c, i.dr, b[0], b[1]);
  }
  mmxCommit(c);
}

/** SHUFPS (sub 0) and SHUFPD (1). */
function shufp(c: Cpu, i: Insn): void {
  checkSse(c);
  getXmm(c, i.dr, A.i32);
  loadW(c, i, 16, true, B.i32);
  const a = A.i32, b = B.i32, r = R.i32, imm = i.imm;
  if (i.sub === 0) {
    r[0] = a[imm & 3]; r[1] = a[(imm >> 2) & 3]; r[2] = b[(imm >> 4) & 3]; r[3] = b[(imm >> 6) & 3];
  } else {
    const x = (imm & 1) * 2, y = ((imm >> 1) & 1) * 2;
    r[0] = a[x]; r[1] = a[x + 1]; r[2] = b[y]; r[3] = b[y + 1];
  }
  setXmm(c, i.dr, r);
}
/** MOVMSKPS (sub 0), MOVMSKPD (1): the sign bits into a general register. */
function movmskp(c: Cpu, i: Insn): void {
  checkSse(c);
  getXmm(c, i.sr, B.i32);
  const b = B.i32;
  c.st[i.dr] = i.sub === 0
    ? (b[0] >>> 31) | ((b[1] >>> 31) << 1) | ((b[2] >>> 31) << 2) | ((b[3] >>> 31) << 3)
    : (b[1] >>> 31) | ((b[3] >>> 31) << 1);
}
/**
 * MASKMOVQ (sub 0) and MASKMOVDQU (1): the bytes of the first operand whose mask byte has its top
 * bit set go to DS:(E)DI (a segment override applies). Every selected byte is checked before any
 * is written.
 */
function maskmov(c: Cpu, i: Insn): void {
  const xmm = i.sub === 1;
  if (xmm) { checkSse(c); getXmm(c, i.dr, A.i32); getXmm(c, i.sr, B.i32); } else { checkMmx(c); getMm(c, i.dr, A.i32); getMm(c, i.sr, B.i32); }
  const n = xmm ? 16 : 8;
  const di = i.asz === 4 ? c.st[14] : c.st[14] & 0xffff;
  const las: number[] = [];
  for (let k = 0; k < n; k++) {
    if (B.u8[k] & 0x80) {
      if (las.length === 0) c.checkWritable(i.seg);
      const la = c.lin(i.seg, (di + k) & (i.asz === 4 ? -1 : 0xffff), 1);
      c.translate(la, 1, true);
      las.push(la, A.u8[k]);
    }
  }
  for (let k = 0; k < las.length; k += 2) c.wrLin8(las[k], las[k + 1]);
  if (!xmm) mmxCommit(c);
}

/** x87 tag of a physical register's contents (SDM vol. 1, 8.1.7): 0 valid, 1 zero, 2 special. */
function tagOf(c: Cpu, r: number): number {
  const base = (SseOff.FPR + 16 * r) >> 2;
  const lo = c.st[base], hi = c.st[base + 1];
  const exp = c.st16[(SseOff.FPR + 16 * r + 8) >> 1] & 0x7fff;
  if (exp === 0x7fff) return 2;
  if (exp === 0) return lo === 0 && hi === 0 ? 1 : 2;
  return hi < 0 ? 0 : 2;
}

function fxCheck(c: Cpu, i: Insn): number {
  if (c.st[St.CR0] & (Cr0.EM | Cr0.TS)) throw new CpuFault(Vec.NM);
  const la = c.lin(i.seg, ea(c, i), 512);
  if (la & 15) throw new CpuFault(Vec.GP, 0);
  return la;
}
/** FXSAVE m512 (32-bit format): x87 environment, MXCSR, ST0-7 in stack order, XMM0-7. */
function fxsave(c: Cpu, i: Insn): void {
  c.checkWritable(i.seg);
  const la = fxCheck(c, i);
  c.translate(la, 1, true);
  c.translate((la + 511) | 0, 1, true);
  const st = c.st, h = c.st16;
  const fsw = h[SseOff.FSW >> 1], ftw = h[SseOff.FTW >> 1];
  let abridged = 0;
  for (let r = 0; r < 8; r++) if (((ftw >> (2 * r)) & 3) !== 3) abridged |= 1 << r;
  c.wrLin32(la, h[SseOff.FCW >> 1] | (fsw << 16));
  c.wrLin32((la + 4) | 0, abridged | (h[SseOff.FOP >> 1] << 16));
  c.wrLin32((la + 8) | 0, st[SseOff.FIP >> 2]);
  c.wrLin32((la + 12) | 0, h[SseOff.FCS >> 1]);
  c.wrLin32((la + 16) | 0, st[SseOff.FDP >> 2]);
  c.wrLin32((la + 20) | 0, h[SseOff.FDS >> 1]);
  c.wrLin32((la + 24) | 0, st[MXCSR_W]);
  c.wrLin32((la + 28) | 0, MXCSR_MASK);
  const top = (fsw >> 11) & 7;
  for (let k = 0; k < 8; k++) {
    const r = (top + k) & 7, w = FPR_W + 4 * r, at = (la + 32 + 16 * k) | 0;
    c.wrLin32(at, st[w]);
    c.wrLin32((at + 4) | 0, st[w + 1]);
    c.wrLin16((at + 8) | 0, h[(SseOff.FPR + 16 * r + 8) >> 1]);
  }
  for (let x = 0; x < 8; x++) {
    for (let k = 0; k < 4; k++) c.wrLin32((la + 160 + 16 * x + 4 * k) | 0, st[XMM_W + 4 * x + k]);
  }
}
/** FXRSTOR m512: reserved MXCSR bits are #GP(0); the full tag word is rebuilt from the abridged one and the contents. */
function fxrstor(c: Cpu, i: Insn): void {
  const la = fxCheck(c, i);
  const img = new Int32Array(128);
  for (let k = 0; k < 128; k++) img[k] = c.rdLin32((la + 4 * k) | 0);
  if (img[6] & ~MXCSR_MASK) throw new CpuFault(Vec.GP, 0);
  const st = c.st, h = c.st16;
  const fsw = img[0] >>> 16;
  h[SseOff.FCW >> 1] = img[0];
  h[SseOff.FSW >> 1] = fsw;
  h[SseOff.FOP >> 1] = (img[1] >>> 16) & 0x7ff;
  st[SseOff.FIP >> 2] = img[2];
  h[SseOff.FCS >> 1] = img[3];
  st[SseOff.FDP >> 2] = img[4];
  h[SseOff.FDS >> 1] = img[5];
  st[MXCSR_W] = img[6];
  const top = (fsw >> 11) & 7;
  for (let k = 0; k < 8; k++) {
    const r = (top + k) & 7, w = FPR_W + 4 * r;
    st[w] = img[8 + 4 * k]; st[w + 1] = img[9 + 4 * k];
    h[(SseOff.FPR + 16 * r + 8) >> 1] = img[10 + 4 * k];
  }
  for (let x = 0; x < 8; x++) for (let k = 0; k < 4; k++) st[XMM_W + 4 * x + k] = img[40 + 4 * x + k];
  let ftw = 0;
  const abridged = img[1] & 0xff;
  for (let r = 0; r < 8; r++) ftw |= (abridged & (1 << r) ? tagOf(c, r) : 3) << (2 * r);
  h[SseOff.FTW >> 1] = ftw;
}

/** LFENCE, MFENCE, SFENCE: ordering is already total here; nothing to wait for. */
function fence(): void {}
/** CLFLUSH m8: no cache to flush, but the access is checked as a byte read (SDM CLFLUSH: #PF, #GP, #SS). */
function clflush(c: Cpu, i: Insn): void {
  const la = c.lin(i.seg, ea(c, i), 1);
  c.translate(la, 0, true);
}

export const moveSemantics = { sseMov, mmxMov, shufp, movmskp, maskmov, fxsave, fxrstor, fence, clflush };
