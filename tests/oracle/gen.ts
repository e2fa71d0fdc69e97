/**
 * Random instruction sequences for the host-CPU oracle, by class: "int" (ALU, shifts and rotates,
 * multiply and divide, bit operations, BCD, string operations on the data page, CMOV/SETcc/BSWAP/
 * XADD/CMPXCHG, flag operations, moves, LEA, the stack), "x87" and "sse" (SSE, SSE2, SSE3).
 *
 * A program is a list of pieces; a piece is one instruction, or a few that only make sense together
 * (the setup that keeps a DIV from #DE, the pointers and count of a string instruction). Each piece
 * says which arithmetic flags it reads, which it leaves defined and which the SDM leaves undefined,
 * so `buildProgram` can keep undefined flags from reaching anything that reads them (it inserts
 * `cmp eax, imm32`, which defines all six, SDM Vol. 2A CMP) and can report the flags still undefined
 * at the end (masked in the comparison). Any subset of a program's pieces is again a valid program,
 * which is what the shrinker relies on.
 */
import { CODE_ADDR, CODE_MAX, DATA_ADDR, DATA_SIZE, defaultFx, type OracleCase } from "./case.ts";

export type OracleClass = "int" | "x87" | "sse";
export const CLASSES: readonly OracleClass[] = ["int", "x87", "sse"];

/** EFLAGS bits (SDM Vol. 1 3.4.3). */
export const F = { CF: 0x1, PF: 0x4, AF: 0x10, ZF: 0x40, SF: 0x80, OF: 0x800 } as const;
export const ALL6 = F.CF | F.PF | F.AF | F.ZF | F.SF | F.OF;

export interface Piece {
  bytes: number[];
  /** Arithmetic flags read (they must be defined before the piece runs). */
  reads: number;
  /** Flags the piece always leaves defined. */
  defs: number;
  /** Flags the piece may leave undefined (SDM). */
  undef: number;
  /** A short description (the instruction class), for reports. */
  what: string;
  /** For code that depends on where it lands (self-modifying code): the bytes at linear address `at`. */
  place?: (at: number) => number[];
}

export interface Program {
  cls: OracleClass;
  seed: number;
  pieces: Piece[];
  gpr: number[];
  eflags: number;
  fx: Uint8Array;
  data: Uint8Array;
}

/** Where the stack starts (ESP) inside the data page; programs push and pop at most 0x300 bytes net. */
export const STACK_START = DATA_ADDR + 0xc00;
/** Memory operands address the lower 0x800 bytes of the data page. */
const MEM_SPAN = 0x800;

/** mulberry32. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Flags a condition code reads (SDM Vol. 1 Appendix B, Table B-1). */
export function ccReads(cc: number): number {
  return [F.OF, F.CF, F.ZF, F.CF | F.ZF, F.SF, F.PF, F.SF | F.OF, F.ZF | F.SF | F.OF][cc >> 1];
}

const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const u16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
const modrm = (mod: number, reg: number, rm: number) => (mod << 6) | (reg << 3) | rm;
/** GPRs a program may write (not ESP: the stack stays in the data page). */
const GPRS = [0, 1, 2, 3, 5, 6, 7];

/** Builds one program's pieces with a seeded generator. */
class Gen {
  readonly r: () => number;
  constructor(seed: number) { this.r = prng(seed); }
  int(n: number): number { return this.r() % n; }
  pick<T>(a: readonly T[]): T { return a[this.r() % a.length]; }
  chance(p: number): boolean { return this.r() / 4294967296 < p; }
  /** A value with interesting bit patterns as well as random ones. */
  value(): number {
    switch (this.int(8)) {
      case 0: return this.pick([0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff]);
      case 1: return this.int(256);
      case 2: return (this.r() & 0xff) * 0x01010101 >>> 0;
      default: return this.r();
    }
  }
  gpr(): number { return this.pick(GPRS); }
  /** A memory offset in the data page for an access of `size` bytes. */
  memOff(size: number): number { return this.chance(0.5) ? this.int(MEM_SPAN - 16) : this.int((MEM_SPAN - 16) / size) * size; }

  /**
   * A ModRM operand (register or memory). Memory is [disp32], or [base + disp8] with a base
   * register the piece loads first (returned in `pre`). Returns the ModRM tail bytes.
   */
  rm(reg: number, size: number, regOk = true, memOk = true): { pre: number[]; tail: number[]; mem: boolean } {
    if (regOk && (!memOk || this.chance(0.55))) {
      let rm = this.int(8);
      if (size !== 8 && rm === 4) rm = this.gpr(); // never ESP as a 16/32-bit operand
      return { pre: [], tail: [modrm(3, reg, rm)], mem: false };
    }
    const off = this.memOff(size);
    if (this.chance(0.7)) return { pre: [], tail: [modrm(0, reg, 5), ...u32(DATA_ADDR + off)], mem: true };
    // mov base, DATA+off-d; op [base+d]
    const base = this.pick([0, 1, 2, 3, 6, 7]), d = this.int(128);
    return { pre: [0xb8 + base, ...u32(DATA_ADDR + off - d)], tail: [modrm(1, reg, base), d], mem: true };
  }
}

const P = (bytes: number[], what: string, reads = 0, defs = 0, undef = 0): Piece => ({ bytes, what, reads, defs, undef });
/** Operand-size prefix and the "w" bit for a size. */
const osz = (size: number) => (size === 16 ? [0x66] : []);
const wbit = (size: number) => (size === 8 ? 0 : 1);
const immOf = (size: number, v: number) => (size === 8 ? [v & 0xff] : size === 16 ? u16(v) : u32(v));

// --- the integer class ----------------------------------------------------------------------

function pieceAlu(g: Gen): Piece {
  const k = g.int(8); // add or adc sbb and sub xor cmp
  const size = g.pick([8, 16, 32, 32]);
  const logic = k === 1 || k === 4 || k === 6;
  const reads = k === 2 || k === 3 ? F.CF : 0;
  const defs = logic ? ALL6 & ~F.AF : ALL6, undef = logic ? F.AF : 0;
  const names = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
  const lock = k !== 7 && g.chance(0.1);
  switch (g.int(4)) {
    case 0: { // Eb/Ev, Gb/Gv
      const o = g.rm(size === 8 ? g.int(8) : g.gpr(), size);
      return P([...o.pre, ...(lock && o.mem ? [0xf0] : []), ...osz(size), 8 * k + wbit(size), ...o.tail], names[k], reads, defs, undef);
    }
    case 1: { // Gb/Gv, Eb/Ev
      const o = g.rm(size === 8 ? g.int(8) : g.gpr(), size);
      return P([...o.pre, ...osz(size), 8 * k + 2 + wbit(size), ...o.tail], names[k], reads, defs, undef);
    }
    case 2: { // Eb/Ev, imm (80, 81, 83)
      const o = g.rm(k, size);
      const short = size !== 8 && g.chance(0.5);
      const op = size === 8 ? 0x80 : short ? 0x83 : 0x81;
      return P([...o.pre, ...(lock && o.mem ? [0xf0] : []), ...osz(size), op, ...o.tail, ...(short ? [g.value() & 0xff] : immOf(size, g.value()))], names[k], reads, defs, undef);
    }
    default: // AL/eAX, imm
      return P([...osz(size), 8 * k + 4 + wbit(size), ...immOf(size, g.value())], names[k], reads, defs, undef);
  }
}

function pieceUnary(g: Gen): Piece {
  const size = g.pick([8, 16, 32]);
  switch (g.int(5)) {
    case 0: { // test
      if (g.chance(0.3)) return P([...osz(size), 0xa8 + wbit(size), ...immOf(size, g.value())], "test", 0, ALL6 & ~F.AF, F.AF);
      if (g.chance(0.5)) { const o = g.rm(0, size); return P([...o.pre, ...osz(size), 0xf6 + wbit(size), ...o.tail, ...immOf(size, g.value())], "test", 0, ALL6 & ~F.AF, F.AF); }
      const o = g.rm(size === 8 ? g.int(8) : g.gpr(), size);
      return P([...o.pre, ...osz(size), 0x84 + wbit(size), ...o.tail], "test", 0, ALL6 & ~F.AF, F.AF);
    }
    case 1: { // inc/dec
      const dec = g.int(2);
      if (size !== 8 && g.chance(0.4)) return P([...osz(size), 0x40 + 8 * dec + g.gpr()], dec ? "dec" : "inc", 0, ALL6 & ~F.CF);
      const o = g.rm(dec, size);
      return P([...o.pre, ...(o.mem && g.chance(0.2) ? [0xf0] : []), ...osz(size), 0xfe + wbit(size), ...o.tail], dec ? "dec" : "inc", 0, ALL6 & ~F.CF);
    }
    case 2: { // not/neg
      const neg = g.int(2);
      const o = g.rm(2 + neg, size);
      return P([...o.pre, ...osz(size), 0xf6 + wbit(size), ...o.tail], neg ? "neg" : "not", 0, neg ? ALL6 : 0);
    }
    case 3: { // mul/imul one operand: CF OF defined, SF ZF AF PF undefined (SDM Vol. 2A MUL, IMUL)
      const o = g.rm(4 + g.int(2), size);
      return P([...o.pre, ...osz(size), 0xf6 + wbit(size), ...o.tail], "mul", 0, F.CF | F.OF, F.SF | F.ZF | F.AF | F.PF);
    }
    default: { // imul two and three operands
      const s = size === 8 ? 32 : size;
      const o = g.rm(g.gpr(), s);
      const kind = g.int(3);
      const und = F.SF | F.ZF | F.AF | F.PF;
      if (kind === 0) return P([...o.pre, ...osz(s), 0x0f, 0xaf, ...o.tail], "imul", 0, F.CF | F.OF, und);
      if (kind === 1) return P([...o.pre, ...osz(s), 0x6b, ...o.tail, g.value() & 0xff], "imul", 0, F.CF | F.OF, und);
      return P([...o.pre, ...osz(s), 0x69, ...o.tail, ...immOf(s, g.value())], "imul", 0, F.CF | F.OF, und);
    }
  }
}

/** DIV/IDIV with a setup that keeps the quotient in range (no #DE); all six flags undefined (SDM Vol. 2A DIV). */
function pieceDiv(g: Gen): Piece {
  const size = g.pick([8, 16, 32]);
  const signed = g.chance(0.5);
  const divisorReg = g.pick([1, 3, 5, 6, 7]); // ECX EBX EBP ESI EDI (never the dividend's registers)
  const mask = size === 8 ? 0xff : size === 16 ? 0xffff : 0xffffffff;
  let d = (g.value() & mask) >>> 0;
  if (d === 0) d = 1 + g.int(100);
  const bytes: number[] = [];
  if (!signed) {
    // High half of the dividend below the divisor: AH / DX / EDX = random mod d.
    const hi = g.int(0x10000000) % d;
    if (size === 8) bytes.push(0xb4, hi & 0xff); // mov ah, hi
    else bytes.push(...osz(size), 0xba, ...immOf(size, hi)); // mov dx/edx, hi
  } else {
    // Sign-extend the low half into the high half (CBW/CWD/CDQ), then a divisor other than 0, -1.
    if (size === 8) bytes.push(0x66, 0x98); // cbw
    else bytes.push(...osz(size), 0x99); // cwd / cdq
    const sd = size === 8 ? (d << 24) >> 24 : size === 16 ? (d << 16) >> 16 : d | 0;
    if (sd === -1) d = 2;
  }
  bytes.push(0xb8 + divisorReg, ...u32(d)); // mov divisor (low bits used)
  const rmReg = size === 8 ? [1, 3][g.int(2)] : divisorReg; // 8-bit: CL or BL (low byte of the register loaded)
  if (size === 8) bytes[bytes.length - 5] = 0xb8 + rmReg;
  bytes.push(...osz(size), 0xf6 + wbit(size), modrm(3, signed ? 7 : 6, rmReg));
  return P(bytes, signed ? "idiv" : "div", 0, 0, ALL6);
}

/** Shifts and rotates with the SDM's flag rules (Vol. 2B SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR). */
function pieceShift(g: Gen): Piece {
  const size = g.pick([8, 16, 32]);
  const k = g.pick([0, 1, 2, 3, 4, 5, 7]);
  const names = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"];
  const o = g.rm(k, size);
  const form = g.int(3);
  const reads = k === 2 || k === 3 ? F.CF : 0;
  if (form === 2) { // by CL: the count is not known here, so the flags a count can leave undefined are undefined
    const pre = g.chance(0.6) ? [0xb1, g.pick([0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, g.int(256)])] : [];
    let und = F.OF | (k >= 4 ? F.AF : 0);
    if ((k === 4 || k === 5) && size !== 32) und |= F.CF;
    return P([...pre, ...o.pre, ...osz(size), 0xd2 + wbit(size), ...o.tail], names[k] + " cl", reads, 0, und);
  }
  const count = form === 0 ? 1 : g.pick([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, g.int(256)]);
  const masked = count & 31;
  const bytes = [...o.pre, ...osz(size), ...(form === 0 ? [0xd0 + wbit(size), ...o.tail] : [0xc0 + wbit(size), ...o.tail, count])];
  if (masked === 0) return P(bytes, names[k], 0, 0, 0);
  if (k <= 3) { // rotates: CF defined (count non-zero), OF only for 1-bit rotates
    const rot = k >= 2 ? masked % (size + 1) : masked;
    if (k >= 2 && rot === 0) return P(bytes, names[k], reads, 0, masked === 1 ? 0 : F.OF);
    return P(bytes, names[k], reads, masked === 1 ? F.CF | F.OF : F.CF, masked === 1 ? 0 : F.OF);
  }
  let defs = F.SF | F.ZF | F.PF | F.CF, und = F.AF;
  if (masked === 1) defs |= F.OF; else und |= F.OF;
  if (k !== 7 && masked >= size) { defs &= ~F.CF; und |= F.CF; }
  return P(bytes, names[k], 0, defs, und);
}

/** SHLD/SHRD (SDM Vol. 2B): counts above the operand size leave the result undefined, so avoided. */
function pieceShd(g: Gen): Piece {
  const size = g.pick([16, 32, 32]);
  const right = g.int(2);
  const o = g.rm(g.gpr(), size);
  if (size === 32 && g.chance(0.3)) {
    const pre = g.chance(0.6) ? [0xb1, g.int(256)] : [];
    if (o.pre.length) return pieceShd(g); // a base register load could be ECX: keep the count register intact
    return P([...pre, 0x0f, right ? 0xad : 0xa5, ...o.tail], right ? "shrd cl" : "shld cl", 0, 0, F.OF | F.AF | F.CF | F.SF | F.ZF | F.PF);
  }
  const count = size === 16 ? g.int(17) : g.int(256);
  const masked = count & 31;
  const bytes = [...o.pre, ...osz(size), 0x0f, right ? 0xac : 0xa4, ...o.tail, count];
  if (masked === 0) return P(bytes, right ? "shrd" : "shld");
  return P(bytes, right ? "shrd" : "shld", 0, F.CF | F.SF | F.ZF | F.PF | (masked === 1 ? F.OF : 0), F.AF | (masked === 1 ? 0 : F.OF));
}

/** BT/BTS/BTR/BTC (CF defined, ZF unchanged, OF SF AF PF undefined) and BSF/BSR (SDM Vol. 2A). */
function pieceBits(g: Gen): Piece {
  const size = g.pick([16, 32]);
  const und = F.OF | F.SF | F.AF | F.PF;
  const kind = g.int(3);
  if (kind === 0) { // register bit offset: register destination only (a memory one addresses beyond the operand)
    const op = g.pick([0xa3, 0xab, 0xb3, 0xbb]);
    const dst = g.gpr(), src = g.gpr();
    return P([...osz(size), 0x0f, op, modrm(3, src, dst)], "bt", 0, F.CF, und);
  }
  if (kind === 1) {
    const o = g.rm(4 + g.int(4), size);
    return P([...o.pre, ...(o.mem && g.chance(0.2) && ((o.tail[0] >> 3) & 7) !== 4 ? [0xf0] : []), ...osz(size), 0x0f, 0xba, ...o.tail, g.int(256)], "bt imm", 0, F.CF, und);
  }
  // BSF/BSR of a non-zero source (a zero source leaves the destination undefined): or src, 1 << n first.
  const src = g.gpr(), dst = g.gpr(), bit = g.int(size);
  return P([...osz(size), 0x81, modrm(3, 1, src), ...immOf(size, 1 << bit), ...osz(size), 0x0f, g.pick([0xbc, 0xbd]), modrm(3, dst, src)],
    "bsf/bsr", 0, F.ZF, F.CF | F.OF | F.SF | F.AF | F.PF);
}

/** BCD adjustments (SDM Vol. 2A AAA AAD AAM AAS DAA DAS). */
function pieceBcd(g: Gen): Piece {
  switch (g.int(6)) {
    case 0: return P([0x27], "daa", F.AF | F.CF, ALL6 & ~F.OF, F.OF);
    case 1: return P([0x2f], "das", F.AF | F.CF, ALL6 & ~F.OF, F.OF);
    case 2: return P([0x37], "aaa", F.AF, F.AF | F.CF, F.OF | F.SF | F.ZF | F.PF);
    case 3: return P([0x3f], "aas", F.AF, F.AF | F.CF, F.OF | F.SF | F.ZF | F.PF);
    case 4: return P([0xd4, g.chance(0.5) ? 10 : 1 + g.int(255)], "aam", 0, F.SF | F.ZF | F.PF, F.OF | F.AF | F.CF);
    default: return P([0xd5, g.chance(0.5) ? 10 : g.int(256)], "aad", 0, F.SF | F.ZF | F.PF, F.OF | F.AF | F.CF);
  }
}

/** String instructions on the data page: ESI, EDI and ECX set by the piece, DF either way. */
function pieceString(g: Gen): Piece {
  const size = g.pick([8, 16, 32]);
  const n = g.int(24);
  const down = g.chance(0.3);
  const at = () => DATA_ADDR + 0x100 + g.int(0x500);
  const op = g.pick([0xa4, 0xaa, 0xac, 0xa6, 0xae]); // movs stos lods cmps scas
  const compare = op === 0xa6 || op === 0xae;
  const rep = g.int(3); // none, rep/repe, repne
  const pre = [0xbe, ...u32(at()), 0xbf, ...u32(at()), 0xb9, ...u32(n), down ? 0xfd : 0xfc];
  const prefix = rep === 0 ? [] : rep === 1 ? [0xf3] : compare ? [0xf2] : [0xf3];
  const bytes = [...pre, ...prefix, ...osz(size), op + wbit(size)];
  // With REP and ECX = 0 nothing is compared: the flags keep their state, so only a single CMPS/SCAS defines them.
  return P(bytes, ["movs", "stos", "lods", "cmps", "scas"][[0xa4, 0xaa, 0xac, 0xa6, 0xae].indexOf(op)] + (rep ? " rep" : ""), 0,
    compare && (rep === 0 || n > 0) ? ALL6 : 0);
}

function pieceCond(g: Gen): Piece {
  const cc = g.int(16);
  switch (g.int(3)) {
    case 0: {
      const size = g.pick([16, 32]);
      const o = g.rm(g.gpr(), size);
      return P([...o.pre, ...osz(size), 0x0f, 0x40 + cc, ...o.tail], "cmovcc", ccReads(cc));
    }
    case 1: {
      const o = g.rm(0, 8);
      return P([...o.pre, 0x0f, 0x90 + cc, ...o.tail], "setcc", ccReads(cc));
    }
    default: { // jcc over one instruction
      const inner = pieceSimple(g);
      if (inner.bytes.length > 127) return inner;
      return P([0x70 + cc, inner.bytes.length, ...inner.bytes], "jcc", ccReads(cc) | inner.reads, 0, inner.undef);
    }
  }
}

function pieceExchange(g: Gen): Piece {
  const size = g.pick([8, 16, 32]);
  switch (g.int(5)) {
    case 0: return P([0x0f, 0xc8 + g.gpr()], "bswap");
    case 1: { // xadd: flags of the addition
      const o = g.rm(size === 8 ? g.int(8) : g.gpr(), size);
      return P([...o.pre, ...(o.mem && g.chance(0.3) ? [0xf0] : []), ...osz(size), 0x0f, 0xc0 + wbit(size), ...o.tail], "xadd", 0, ALL6);
    }
    case 2: { // cmpxchg: flags of the comparison
      const o = g.rm(size === 8 ? g.int(8) : g.gpr(), size);
      return P([...o.pre, ...(o.mem && g.chance(0.3) ? [0xf0] : []), ...osz(size), 0x0f, 0xb0 + wbit(size), ...o.tail], "cmpxchg", 0, ALL6);
    }
    case 3: { // cmpxchg8b: ZF only
      const off = g.int((MEM_SPAN - 16) / 8) * 8;
      return P([...(g.chance(0.3) ? [0xf0] : []), 0x0f, 0xc7, modrm(0, 1, 5), ...u32(DATA_ADDR + off)], "cmpxchg8b", 0, F.ZF);
    }
    default: { // xchg
      if (size !== 8 && g.chance(0.3)) return P([...osz(size), 0x90 + g.gpr()], "xchg eax");
      const o = g.rm(size === 8 ? g.int(8) : g.gpr(), size);
      return P([...o.pre, ...osz(size), 0x86 + wbit(size), ...o.tail], "xchg");
    }
  }
}

function pieceFlags(g: Gen): Piece {
  switch (g.int(9)) {
    case 0: return P([0xf8], "clc", 0, F.CF);
    case 1: return P([0xf9], "stc", 0, F.CF);
    case 2: return P([0xf5], "cmc", F.CF, F.CF);
    case 3: return P([g.pick([0xfc, 0xfd])], "cld/std");
    case 4: return P([0x9f], "lahf", F.SF | F.ZF | F.AF | F.PF | F.CF);
    case 5: return P([0x9e], "sahf", 0, F.SF | F.ZF | F.AF | F.PF | F.CF);
    case 6: return P([0x9c, 0x58 + g.gpr()], "pushfd; pop", ALL6); // pushfd reads every flag
    case 7: { // push imm; popfd: arithmetic flags and DF (IF=1, IOPL=0 as at CPL 3; no TF, AC, NT, ID)
      const v = (g.r() & (ALL6 | 0x400)) | 0x202;
      return P([0x68, ...u32(v), 0x9d], "popfd", 0, ALL6);
    }
    default: return P([0x66, 0x9c, 0x66, 0x58 + g.gpr()], "pushf; pop", ALL6);
  }
}

/** Moves, extensions, LEA, XLAT, PUSH/POP: no flags. */
function pieceSimple(g: Gen): Piece {
  const size = g.pick([8, 16, 32]);
  switch (g.int(10)) {
    case 0: {
      const o = g.rm(size === 8 ? g.int(8) : g.gpr(), size);
      return P([...o.pre, ...osz(size), g.pick([0x88, 0x8a]) + wbit(size), ...o.tail], "mov");
    }
    case 1: return size === 8 ? P([0xb0 + g.int(8), g.value() & 0xff], "mov imm") : P([...osz(size), 0xb8 + g.gpr(), ...immOf(size, g.value())], "mov imm");
    case 2: {
      const o = g.rm(0, size);
      return P([...o.pre, ...osz(size), 0xc6 + wbit(size), ...o.tail, ...immOf(size, g.value())], "mov imm");
    }
    case 3: { // movzx/movsx
      const s = g.pick([16, 32]);
      const o = g.rm(g.gpr(), s === 16 ? 8 : g.pick([8, 16]));
      return P([...o.pre, ...osz(s), 0x0f, g.pick([0xb6, 0xb7, 0xbe, 0xbf]), ...o.tail], "movzx/movsx");
    }
    case 4: { // lea with a random SIB or 16-bit address: no memory access, any register values
      const dst = g.gpr();
      if (g.chance(0.25)) {
        const mod = g.int(3), rm = g.int(8);
        const disp = mod === 1 ? 1 : mod === 2 || (mod === 0 && rm === 6) ? 2 : 0;
        return P([...osz(g.pick([16, 32])), 0x67, 0x8d, modrm(mod, dst, rm), ...[g.int(256), g.int(256)].slice(0, disp)], "lea16");
      }
      const mod = g.int(3);
      const bytes = [0x8d, modrm(mod, dst, 4), (g.int(4) << 6) | (g.int(8) << 3) | g.int(8)];
      if (mod === 1) bytes.push(g.int(256));
      if (mod === 2 || (bytes[2] & 7) === 5 && mod === 0) bytes.push(...u32(g.value()));
      return P([...osz(g.pick([16, 32, 32])), ...bytes], "lea");
    }
    case 5: return P([g.pick([[0x98], [0x66, 0x98], [0x99], [0x66, 0x99]])].flat(), "cbw/cwd");
    case 6: return P([0xbb, ...u32(DATA_ADDR + g.int(MEM_SPAN - 256)), 0xd7], "xlat");
    case 7: { // push then pop (net zero stack use)
      const push = g.pick([[0x50 + g.int(8)], [0x68, ...u32(g.value())], [0x6a, g.int(256)], [0xff, modrm(0, 6, 5), ...u32(DATA_ADDR + g.memOff(4))], [0x66, 0x50 + g.int(8)]]);
      const pop = push[0] === 0x66 ? [0x66, 0x58 + g.gpr()] : g.chance(0.8) ? [0x58 + g.gpr()] : [0x8f, modrm(0, 0, 5), ...u32(DATA_ADDR + g.memOff(4))];
      return P([...push, ...pop], "push/pop");
    }
    case 8: return P([0x60, 0x61], "pushad/popad");
    default: return P([0x90], "nop");
  }
}

/** Control transfers and frames: LOOP/LOOPcc/JECXZ forward, CALL/POP, ENTER/LEAVE (levels 0 and 1), INTO. */
function pieceControl(g: Gen): Piece {
  switch (g.int(5)) {
    case 0: { // mov ecx, n; loop/loope/loopne/jecxz over one instruction
      const inner = pieceSimple(g);
      const op = g.pick([0xe0, 0xe1, 0xe2, 0xe3]);
      if (inner.bytes.length > 127) return inner;
      const reads = op === 0xe0 || op === 0xe1 ? F.ZF : 0;
      return P([0xb9, ...u32(g.pick([0, 1, 2, g.value()])), op, inner.bytes.length, ...inner.bytes], "loop/jecxz", reads | inner.reads, 0, inner.undef);
    }
    case 1: return P([0xe8, 0, 0, 0, 0, 0x58 + g.gpr()], "call/pop");
    case 2: { // enter n, 0|1; leave: the frame stays in the data page's stack area
      const level = g.int(2);
      return P([0xc8, g.int(0x80), 0, level, ...(g.chance(0.5) ? [0x89, modrm(1, g.gpr(), 5), 0x100 - 4 * (1 + g.int(4))] : []), 0xc9], "enter/leave");
    }
    case 3: return P([0xce], "into", F.OF); // #OF when OF = 1 (a trap: EIP after the INTO)
    default: { // sub esp / add esp around a store to the new stack slot
      const n = 4 * (1 + g.int(16));
      return P([0x83, modrm(3, 5, 4), n, 0xc7, 0x04, 0x24, ...u32(g.value()), 0x83, modrm(3, 0, 4), n], "stack slot", 0, ALL6);
    }
  }
}

/** Memory operands with SIB (base + index*scale + disp8), segment overrides, BTx with a register bit offset into memory, CMPXCHG8B's success path, BOUND. */
function pieceAddressing(g: Gen): Piece {
  switch (g.int(5)) {
    case 0: { // mov base, DATA+x; mov index, i; op [base + index*scale + d]
      const base = g.pick([0, 1, 2, 3, 6, 7]), index = g.pick([0, 1, 2, 3, 5, 6, 7].filter((r) => r !== base));
      const scale = g.int(4), i = g.int(32), d = g.int(128);
      const at = DATA_ADDR + g.int(0x400) - ((i << scale) + d) + 0x100;
      const seg = g.chance(0.3) ? [g.pick([0x26, 0x2e, 0x36, 0x3e])] : [];
      const op = g.pick([[0x8b], [0x03], [0x01], [0x31], [0x0f, 0xb6], [0x89]]);
      const reg = g.pick([0, 1, 2, 3, 5, 6, 7].filter((r) => r !== base && r !== index));
      const flags = op[0] === 0x03 || op[0] === 0x01 ? [0, ALL6, 0] : op[0] === 0x31 ? [0, ALL6 & ~F.AF, F.AF] : [0, 0, 0];
      return P([0xb8 + base, ...u32(at), 0xb8 + index, ...u32(i), ...seg, ...op, modrm(1, reg, 4), (scale << 6) | (index << 3) | base, d], "sib", flags[0], flags[1], flags[2]);
    }
    case 1: { // bt/bts/btr/btc [mem], reg with a small signed bit offset (the bit string reaches below and above the operand)
      const r = g.pick([0, 1, 2, 3, 5, 6, 7]), bit = g.int(192) - 64, size = g.pick([16, 32]);
      return P([0xb8 + r, ...u32(bit), ...(g.chance(0.2) ? [0xf0] : []), ...osz(size), 0x0f, g.pick([0xab, 0xb3, 0xbb]), modrm(0, r, 5), ...u32(DATA_ADDR + 0x200 + g.int(0x100))],
        "bt mem,reg", 0, F.CF, F.OF | F.SF | F.AF | F.PF);
    }
    case 2: { // cmpxchg8b that succeeds: EDX:EAX loaded from the operand first
      const m = DATA_ADDR + g.int(0xf0) * 8;
      return P([0xa1, ...u32(m), 0x8b, modrm(0, 2, 5), ...u32(m + 4), 0x0f, 0xc7, modrm(0, 1, 5), ...u32(m)], "cmpxchg8b equal", 0, F.ZF);
    }
    case 3: { // bound r32, m32&32 (#BR when out of range, which ends the program: kept rare)
      if (g.chance(0.7)) return pieceAddressing(g);
      return P([0x62, modrm(0, g.gpr(), 5), ...u32(DATA_ADDR + g.int(0xf0) * 8)], "bound");
    }
    default: { // movs/stos/lods with a segment override on the source
      const size = g.pick([8, 16, 32]);
      return P([0xbe, ...u32(DATA_ADDR + 0x100 + g.int(0x300)), 0xbf, ...u32(DATA_ADDR + 0x400 + g.int(0x300)), 0xfc, g.pick([0x26, 0x2e, 0x36, 0x3e]), ...osz(size), g.pick([0xa4, 0xac]) + wbit(size)], "movs/lods seg");
    }
  }
}

/**
 * Self-modifying code: a store into the immediate of an instruction a few bytes on (MOV r32, imm32,
 * or ADD EAX, imm32). Since the P6 family the processor detects stores to code already fetched and
 * runs the new bytes (SDM Vol. 3A 11.6); a JIT must too.
 */
function pieceSmc(g: Gen): Piece {
  const reg = g.gpr(), v = g.value(), old = g.value();
  const add = g.chance(0.3);
  const store = (at: number) => [0xc7, 0x05, ...u32(at + 10 + (add ? 1 : 1)), ...u32(v)]; // 10 bytes, then the target
  const target = add ? [0x05, ...u32(old)] : [0xb8 + reg, ...u32(old)];
  const piece = P([...store(CODE_ADDR), ...target], add ? "smc add eax" : "smc mov", 0, add ? ALL6 : 0);
  piece.place = (at) => [...store(at), ...target];
  return piece;
}

const INT_PIECES: [number, (g: Gen) => Piece][] = [
  [14, pieceAlu], [10, pieceUnary], [4, pieceDiv], [10, pieceShift], [4, pieceShd], [6, pieceBits], [4, pieceBcd],
  [5, pieceString], [8, pieceCond], [6, pieceExchange], [6, pieceFlags], [12, pieceSimple], [4, pieceControl], [6, pieceAddressing], [2, pieceSmc],
];

function weighted(g: Gen, table: [number, (g: Gen) => Piece][]): Piece {
  let n = g.int(table.reduce((s, [w]) => s + w, 0));
  for (const [w, f] of table) { if (n < w) return f(g); n -= w; }
  return table[0][1](g);
}

// --- x87 and SSE ------------------------------------------------------------------------------

/** Memory operand [disp32] in the data page. */
const abs = (reg: number, off: number) => [modrm(0, reg, 5), ...u32(DATA_ADDR + off)];

/**
 * The x87 condition codes, tracked like EFLAGS but 16 bits up in a piece's reads/defs/undef:
 * C0 (FSW bit 8), C1 (9), C2 (10), C3 (14).
 */
export const X = { C0: 0x100 << 16, C1: 0x200 << 16, C2: 0x400 << 16, C3: 0x4000 << 16 } as const;
const CC_ALL = (X.C0 | X.C1 | X.C2 | X.C3) >>> 0;
/** C0, C2 and C3 undefined, C1 defined (rounding or stack fault): most x87 arithmetic (SDM Vol. 2, "FPU Flags Affected"). */
const CC_ARITH = { defs: X.C1, undef: (X.C0 | X.C2 | X.C3) >>> 0 };

/** x87 operations on values from the data page and the initial stack (all exceptions masked, as FNINIT leaves them). */
function pieceX87(g: Gen): Piece {
  const mo = () => g.int(0x80) * 8;
  const st = () => g.int(8);
  const A = CC_ARITH;
  switch (g.int(20)) {
    case 0: return P([0xdd, ...abs(0, mo())], "fld m64", 0, A.defs, A.undef);
    case 1: return P([0xd9, ...abs(0, g.int(0x100) * 4)], "fld m32", 0, A.defs, A.undef);
    case 2: return P([0xdb, ...abs(5, g.int(0x60) * 10)], "fld m80", 0, A.defs, A.undef);
    case 3: return P(g.pick([[0xdf, ...abs(0, g.int(0x200) * 2)], [0xdb, ...abs(0, g.int(0x100) * 4)], [0xdf, ...abs(5, mo())]]), "fild", 0, A.defs, A.undef);
    case 4: return P([0xd9, 0xc0 + st()], "fld st(i)", 0, A.defs, A.undef);
    case 5: // fadd fmul fsub fsubr fdiv fdivr: st0 op st(i), st(i) op st0, and the popping forms
      return P([g.pick([0xd8, 0xdc, 0xde]), modrm(3, g.pick([0, 1, 4, 5, 6, 7]), st())], "farith st", 0, A.defs, A.undef);
    case 6: return P([g.pick([0xd8, 0xdc]), ...abs(g.pick([0, 1, 4, 5, 6, 7]), mo())], "farith m32/m64", 0, A.defs, A.undef);
    case 7: return P([g.pick([0xda, 0xde]), ...abs(g.pick([0, 1, 4, 5, 6, 7]), g.int(0x200) * 2)], "fiarith", 0, A.defs, A.undef);
    case 8: return P([0xd9, g.pick([0xe0, 0xe1])], "fchs/fabs", 0, A.defs, A.undef);
    case 9: return P([0xd9, g.pick([0xfa, 0xfc, 0xfd])], "fsqrt/frndint/fscale", 0, A.defs, A.undef);
    case 10: return P([0xd9, g.pick([0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee])], "fld const", 0, A.defs, A.undef);
    case 11: return P([0xd9, 0xc8 + st()], "fxch", 0, A.defs, A.undef);
    case 12: { // fst/fstp m32 (D9 /2 /3), m64 (DD /2 /3), fstp m80 (DB /7)
      const [op, r] = g.pick([[0xd9, 2], [0xd9, 3], [0xdd, 2], [0xdd, 3], [0xdb, 7]] as const);
      return P([op, ...abs(r, 0x400 + g.int(0x60) * 10)], "fst/fstp", 0, A.defs, A.undef);
    }
    case 13: return P([g.pick([0xdf, 0xdb]), ...abs(g.pick([2, 3]), 0x400 + mo())], "fist/fistp", 0, A.defs, A.undef);
    case 14: return P([0xdd, 0xd8 + st()], "fstp st(i)", 0, A.defs, A.undef);
    case 15: return P([0xdf, 0xe0], "fnstsw ax", CC_ALL);
    case 16: return P(g.pick([[0xd8, 0xd0 + st()], [0xd8, 0xd8 + st()], [0xdd, 0xe0 + st()], [0xdd, 0xe8 + st()], [0xde, 0xd9], [0xda, 0xe9], [0xd9, 0xe4], [0xd9, 0xe5]]),
      "fcom/fucom/ftst/fxam", 0, CC_ALL);
    case 17: return P([0xd9, 0xf8], "fprem", 0, CC_ALL);
    case 18: { // fldcw from the data page: precision and rounding control, exceptions stay masked
      const cw = 0x7f | (g.int(4) << 8) | (g.int(4) << 10);
      const off = 0x780 + g.int(0x40) * 2;
      return P([0x66, 0xc7, 0x05, ...u32(DATA_ADDR + off), cw & 0xff, cw >> 8, 0xd9, ...abs(5, off)], "fldcw", 0, 0, CC_ALL);
    }
    default: return P([0xd9, g.pick([0xf6, 0xf7])], "fdecstp/fincstp", 0, A.defs, A.undef);
  }
}

/**
 * SSE/SSE2/SSE3 and MMX operations on XMM0-7 and MM0-7 (loaded from the data page and the initial
 * FXSAVE image). Not generated: RCPPS/RSQRTPS/RCPSS/RSQRTSS (the SDM bounds their error only, and
 * AMD and Intel return different approximations).
 */
function pieceSse(g: Gen): Piece {
  const x = () => g.int(8), mo = () => g.int(0x70) * 16;
  const rr = () => modrm(3, x(), x());
  switch (g.int(24)) {
    case 0: return P([0x0f, 0x28, ...abs(x(), mo())], "movaps");
    case 1: return P([0x66, 0x0f, 0x6f, ...abs(x(), mo())], "movdqa");
    case 2: return P([g.pick([[0x0f], [0x66, 0x0f], [0xf3, 0x0f], [0xf2, 0x0f]])].flat().concat([g.pick([0x51, 0x58, 0x59, 0x5c, 0x5d, 0x5e, 0x5f]), rr()]), "arith/sqrt ps/pd/ss/sd");
    case 3: return P([0x66, 0x0f, g.pick([0xfe, 0xfa, 0xd4, 0xfb, 0xdb, 0xdf, 0xeb, 0xef, 0x74, 0x75, 0x76, 0x64, 0x65, 0x66, 0xd5, 0xe5, 0xf4, 0xf5, 0x60, 0x61, 0x62, 0x68, 0x69, 0x6a, 0x6c, 0x6d, 0x63, 0x67, 0x6b, 0xd8, 0xd9, 0xdc, 0xdd, 0xe8, 0xe9, 0xec, 0xed, 0xe0, 0xe3, 0xda, 0xde, 0xea, 0xee, 0xf6, 0xd1, 0xd2, 0xd3, 0xe1, 0xe2, 0xf1, 0xf2, 0xf3]), rr()], "sse2 int");
    case 4: return P([0x0f, 0xc6, rr(), g.int(256)], "shufps");
    case 5: return P([0x66, 0x0f, g.pick([0x70, 0xc6]), rr(), g.int(256)], "pshufd/shufpd");
    case 6: return P([g.pick([0xf2, 0x66]), 0x0f, g.pick([0x7c, 0x7d, 0xd0]), rr()], "sse3 hadd/hsub/addsub");
    case 7: return P([0x0f, 0x11, ...abs(x(), 0x400 + mo())], "movups store");
    case 8: return P([g.pick([[0x0f, 0x2e], [0x0f, 0x2f], [0x66, 0x0f, 0x2e], [0x66, 0x0f, 0x2f]])].flat().concat([rr()]), "ucomis/comis", 0, ALL6, 0);
    case 9: return P([g.pick([[0xf3, 0x0f, 0x2d], [0xf3, 0x0f, 0x2c], [0xf2, 0x0f, 0x2d], [0xf2, 0x0f, 0x2c]])].flat().concat([modrm(3, g.gpr(), x())]), "cvt to int");
    case 10: return P([g.pick([[0x0f, 0x5b], [0x66, 0x0f, 0x5b], [0xf3, 0x0f, 0x5b], [0x66, 0x0f, 0x5a], [0x0f, 0x5a], [0xf3, 0x0f, 0x5a], [0xf2, 0x0f, 0x5a], [0xf3, 0x0f, 0xe6], [0xf2, 0x0f, 0xe6], [0x66, 0x0f, 0xe6]])].flat().concat([rr()]), "cvt");
    case 11: return P([g.pick([0xf3, 0xf2]), 0x0f, 0x2a, modrm(3, x(), g.gpr())], "cvtsi2ss/sd");
    case 12: return P([g.pick([[0x0f], [0x66, 0x0f]])].flat().concat([g.pick([0x54, 0x55, 0x56, 0x57, 0x14, 0x15]), rr()]), "and/or/xor/unpck ps/pd");
    case 13: return P([g.pick([[0x0f], [0x66, 0x0f], [0xf3, 0x0f], [0xf2, 0x0f]])].flat().concat([0xc2, rr(), g.int(8)]), "cmpps/pd/ss/sd");
    case 14: { // shifts by an immediate: 71/72 /2 /4 /6, 73 /2 /3 /6 /7
      const op = g.pick([0x71, 0x72, 0x73]);
      return P([0x66, 0x0f, op, modrm(3, op === 0x73 ? g.pick([2, 3, 6, 7]) : g.pick([2, 4, 6]), x()), g.int(40)], "psll/psrl/psra imm");
    }
    case 15: return P([g.pick([[0x66, 0x0f, 0x7e, modrm(3, x(), g.gpr())], [0x66, 0x0f, 0x6e, modrm(3, x(), g.gpr())], [0xf3, 0x0f, 0x7e, rr()], [0x66, 0x0f, 0xd6, ...abs(x(), 0x400 + mo())], [0x0f, 0x50, modrm(3, g.gpr(), x())], [0x66, 0x0f, 0xd7, modrm(3, g.gpr(), x())]])].flat(), "movd/movq/movmsk");
    case 16: return P([g.pick([[0x0f, 0x12], [0x0f, 0x16], [0xf3, 0x0f, 0x16], [0xf3, 0x0f, 0x12], [0xf2, 0x0f, 0x12], [0xf3, 0x0f, 0x10], [0xf2, 0x0f, 0x10]])].flat().concat([rr()]), "movhlps/movlhps/movshdup/movsldup/movddup/movss/movsd");
    case 17: return P([g.pick([[0x66, 0x0f, 0xe7], [0x0f, 0x2b], [0x66, 0x0f, 0x2b]])].flat().concat(abs(x(), 0x400 + mo())), "movnt store");
    case 18: return P([0x0f, 0xc3, ...abs(g.gpr(), 0x400 + mo())], "movnti");
    case 19: return P(g.pick([[0x0f, 0xae, 0xe8], [0x0f, 0xae, 0xf0], [0x0f, 0xae, 0xf8], [0xf3, 0x90], [0x0f, 0xae, ...abs(7, mo())]]), "fences/pause/clflush");
    case 20: { // ldmxcsr of another rounding mode (exceptions stay masked), stmxcsr
      const v = 0x1f80 | (g.int(4) << 13) | (g.chance(0.3) ? 0x8000 : 0) | (g.chance(0.3) ? 0x40 : 0);
      const off = 0x780 + g.int(0x10) * 4;
      return P([0xc7, 0x05, ...u32(DATA_ADDR + off), ...u32(v), 0x0f, 0xae, ...abs(2, off), 0x0f, 0xae, ...abs(3, off + 0x40)], "ldmxcsr/stmxcsr");
    }
    case 21: // MMX: movq from memory, arithmetic, pack/unpack, shifts
      return P(g.pick([[0x0f, 0x6f, ...abs(x(), mo())], [0x0f, g.pick([0xfc, 0xfd, 0xfe, 0xec, 0xdc, 0xf8, 0xe8, 0xd8, 0xd5, 0xe5, 0xf5, 0x63, 0x67, 0x6b, 0x60, 0x68, 0xdb, 0xeb, 0xef, 0x74, 0x64]), modrm(3, x(), x())],
        [0x0f, 0x71, modrm(3, g.pick([2, 4, 6]), x()), g.int(20)], [0x0f, 0x7f, ...abs(x(), 0x400 + mo())], [0x0f, 0x7e, modrm(3, x(), g.gpr())]]), "mmx");
    case 22: return P([0x0f, 0x77], "emms");
    default: return P([0x66, 0x0f, g.pick([0x28, 0x10]), ...abs(x(), mo())], "movapd/movupd");
  }
}

// --- programs ---------------------------------------------------------------------------------

/** A random program of `size` pieces of class `cls`, with its initial state, from `seed`. */
export function genProgram(cls: OracleClass, seed: number, size = 12): Program {
  const g = new Gen((seed * 2654435761) ^ (CLASSES.indexOf(cls) * 0x9e3779b9));
  const gpr = GPRS.map(() => g.value());
  gpr.splice(4, 0, STACK_START);
  const eflags = (g.r() & (ALL6 | 0x400)) | 0x202;
  const data = new Uint8Array(DATA_SIZE);
  for (let k = 0; k < DATA_SIZE; k += 4) new DataView(data.buffer).setUint32(k, g.value(), true);
  const fx = defaultFx();
  const fdv = new DataView(fx.buffer);
  if (cls === "x87") {
    // FCW: exceptions masked, random precision and rounding control; a random TOP and 0-8 valid
    // registers holding normal, denormal, zero, infinite and NaN values (the image's ST(i) order).
    fdv.setUint16(0, 0x7f | (g.int(4) << 8) | (g.int(4) << 10), true);
    const top = g.int(8), n = g.int(9);
    fdv.setUint16(2, top << 11, true);
    let tags = 0;
    for (let i = 0; i < n; i++) {
      const o = 32 + 16 * i;
      const kind = g.int(6);
      const exp = kind === 0 ? 0 : kind === 1 ? 0x7fff : 0x3fff + g.int(129) - 64;
      const hi = kind === 0 && g.chance(0.5) ? 0 : (g.r() | (kind === 0 ? 0 : 0x80000000)) >>> 0;
      fdv.setUint32(o, kind === 1 && g.chance(0.5) ? 0 : g.r(), true);
      fdv.setUint32(o + 4, kind === 1 && g.chance(0.5) ? 0x80000000 : hi, true);
      fdv.setUint16(o + 8, exp | (g.int(2) << 15), true);
      tags |= 1 << ((top + i) & 7);
    }
    fx[4] = tags;
  }
  if (cls === "sse") {
    // MXCSR: exceptions masked, random rounding, FTZ and DAZ; XMM0-7 of mixed single/double patterns.
    fdv.setUint32(24, 0x1f80 | (g.int(4) << 13) | (g.chance(0.3) ? 0x8000 : 0) | (g.chance(0.3) ? 0x40 : 0), true);
    for (let k = 160; k < 288; k += 4) fdv.setUint32(k, g.chance(0.5) ? g.value() : ((g.int(2) << 31) | ((0x70 + g.int(32)) << 23) | (g.r() & 0x7fffff)) >>> 0, true);
  }
  if (cls === "x87") {
    // Plausible doubles in the data page, so loads give normal numbers as well as the odd pattern.
    const dv = new DataView(data.buffer);
    for (let k = 0; k < 0x400; k += 8) if (g.chance(0.7)) dv.setFloat64(k, (g.r() / 65536 - 32768) * Math.pow(2, g.int(40) - 20), true);
  }
  const pieces: Piece[] = [];
  for (let k = 0; k < size; k++) {
    if (cls === "int") pieces.push(weighted(g, INT_PIECES));
    else if (cls === "x87") pieces.push(g.chance(0.8) ? pieceX87(g) : weighted(g, INT_PIECES));
    else pieces.push(g.chance(0.8) ? pieceSse(g) : weighted(g, INT_PIECES));
  }
  // A few programs end in an intended fault: a division by zero (#DE) or UD2 (#UD).
  if (cls === "int" && g.chance(0.03)) pieces.push(P([0x31, 0xc9, 0xf7, 0xf1], "div by zero (#DE)", 0, 0, ALL6));
  if (cls === "int" && g.chance(0.01)) pieces.push(P([0x0f, 0x0b], "ud2 (#UD)"));
  return { cls, seed, pieces, gpr, eflags, fx, data };
}

/** The CMP EAX, imm32 that makes every arithmetic flag defined before a piece that reads one. */
const CLEANSE = [0x3d, 0x5a, 0xa5, 0x0f, 0xf0];
/** FXAM: sets C0-C3 from ST0's class and sign (SDM Vol. 2A FXAM), before a piece that reads them. */
const CLEANSE_CC = [0xd9, 0xe5];

/**
 * Flags (and x87 condition codes) undefined at the end of a program, and at each piece, for a
 * program that faults part-way: a fault in piece k is compared with the flags undefined before or
 * after piece k masked (its instructions before the faulting one may have run).
 */
export interface UndefMask {
  end: number;
  at: { start: number; undef: number }[];
}

/** The undefined set a result at `eip` is compared with: the faulting piece's, or the end's. */
export function undefAt(u: number | UndefMask, eip: number | null): number {
  if (typeof u === "number") return u;
  if (eip === null) return u.end;
  const off = eip - CODE_ADDR;
  let m = u.end;
  for (const p of u.at) if (p.start <= off) m = p.undef;
  return m;
}

/** The program's code (pieces plus the inserted CMPs and FXAMs) and the flags left undefined. */
export function buildProgram(p: Program, keep: number[] = p.pieces.map((_, k) => k)): { code: Uint8Array; undef: UndefMask; starts: number[] } {
  const out: number[] = [];
  const starts: number[] = [];
  const at: { start: number; undef: number }[] = [];
  let undef = 0;
  for (const k of keep) {
    const pc = p.pieces[k];
    if (pc.reads & undef & 0xffff) { out.push(...CLEANSE); undef &= ~ALL6; }
    if (pc.reads & undef & CC_ALL) { out.push(...CLEANSE_CC); undef &= ~CC_ALL; }
    starts.push(out.length);
    out.push(...(pc.place ? pc.place(CODE_ADDR + out.length) : pc.bytes));
    const after = (undef & ~pc.defs) | pc.undef;
    at.push({ start: starts[starts.length - 1], undef: (undef | after) >>> 0 });
    undef = after;
  }
  if (out.length > CODE_MAX) throw new RangeError(`Program too long: ${out.length} bytes`);
  return { code: new Uint8Array(out), undef: { end: undef >>> 0, at }, starts };
}

/** The case for a program (or a subset of its pieces). */
export function caseOf(p: Program, keep?: number[]): { c: OracleCase; undef: UndefMask } {
  const b = buildProgram(p, keep);
  return { c: { gpr: p.gpr.slice(), eflags: p.eflags, fx: p.fx.slice(), data: p.data.slice(), code: b.code }, undef: b.undef };
}
