/**
 * Double extended precision (80-bit) arithmetic computed exactly in software, the way the x87
 * FPU defines it (SDM vol. 1, chapters 4 and 8): every result is the exact value rounded once, to
 * the precision control's 24, 53 or 64 bits and the rounding control's direction, with the
 * extended exponent range; denormals, NaNs, infinities, the six exception flags with their masked
 * responses and, unmasked, the x87's post-computation responses (the exponent of an overflowed or
 * underflowed register result adjusted by 2^∓24576, SDM vol. 1, 8.5.4 and 8.5.5).
 *
 * Values are the raw register fields (`F80`: sign, 15-bit biased exponent, 64-bit significand
 * with the explicit integer bit). Arithmetic works on exact integers: a finite value is m · 2^e
 * with m a BigInt, so sums, products and exact remainders need no rounding until the end, and
 * quotients and square roots carry a sticky bit below enough extra bits to round correctly.
 *
 * An operation returns its result, or null when an unmasked pre-computation exception (invalid
 * operation, denormal operand, division by zero) leaves the destination unchanged. Exception flags
 * and C1 (the round-up bit) accumulate in an `FpEnv`.
 */
import * as fpuStateMod from "../fpu_state.ts";

const { Fcw, Fsw, Rc } = fpuStateMod;

/** The fields of an 80-bit register. */
export interface F80 {
  sign: number;
  /** Biased exponent, 0–0x7FFF. */
  exp: number;
  /** 64-bit significand, bit 63 the explicit integer bit. */
  sig: bigint;
}

/** Rounding and exception state of one operation. */
export interface FpEnv {
  /** Rounding control (Rc). */
  rc: number;
  /** The six exception masks (FCW bits 0–5). */
  masks: number;
  /** Exception flags raised (FSW bits 0–6). */
  flags: number;
  /** C1 after the operation: 1 when the result was rounded up in magnitude. */
  c1: number;
}

export function newEnv(fcw: number): FpEnv {
  return { rc: (fcw >> 10) & 3, masks: fcw & 0x3f, flags: 0, c1: 0 };
}

/** An unmasked pre-computation exception was raised: the destination must not change. */
export function aborted(env: FpEnv): boolean {
  return (env.flags & ~env.masks & (Fsw.IE | Fsw.DE | Fsw.ZE)) !== 0;
}

export const BIAS = 16383;
export const EMIN = -16382;
export const EMAX = 16383;
const J = 1n << 63n;
const QBIT = 1n << 62n;
const J_QBIT = J | QBIT;
const M64 = (1n << 64n) - 1n;

export const Kind = { ZERO: 0, DENORMAL: 1, NORMAL: 2, INF: 3, QNAN: 4, SNAN: 5, UNSUPPORTED: 6 } as const;

/** Classify a register value (SDM vol. 1, 8.2.2 and table 8-3 for unsupported encodings). */
export function kind(a: F80): number {
  // Comparisons only: BigInt comparisons allocate nothing, the bit operations would.
  const sig = a.sig;
  if (a.exp === 0x7fff) {
    if (sig < J) return Kind.UNSUPPORTED; // pseudo-infinity, pseudo-NaN
    if (sig === J) return Kind.INF;
    return sig >= J_QBIT ? Kind.QNAN : Kind.SNAN;
  }
  if (a.exp === 0) return sig === 0n ? Kind.ZERO : Kind.DENORMAL; // includes pseudo-denormals
  return sig >= J ? Kind.NORMAL : Kind.UNSUPPORTED; // unnormal
}

export const f80 = (sign: number, exp: number, sig: bigint): F80 => ({ sign, exp, sig });
export const INDEFINITE: F80 = f80(1, 0x7fff, 0xc000000000000000n);
export const zero = (sign: number): F80 => f80(sign, 0, 0n);
export const inf = (sign: number): F80 => f80(sign, 0x7fff, J);
export const ONE: F80 = f80(0, BIAS, J);

export function isNaN80(a: F80): boolean {
  return a.exp === 0x7fff && (a.sig & ~J) !== 0n && (a.sig & J) !== 0n;
}
function quiet(a: F80): F80 {
  return f80(a.sign, a.exp, a.sig | QBIT);
}

/** 2^k and 2^k − 1 for k = 0..192, and k as a BigInt: comparisons and table reads cost far less than BigInt arithmetic. */
const POW2: bigint[] = [];
const MASK: bigint[] = [];
const BIG: bigint[] = [];
for (let k = 0; k <= 192; k++) {
  POW2.push(1n << BigInt(k));
  MASK.push((1n << BigInt(k)) - 1n);
  BIG.push(BigInt(k));
}
const big = (k: number): bigint => (k <= 192 ? BIG[k] : BigInt(k));

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);

/** Number of bits of a positive BigInt (0 for 0). */
export function bitLen(m: bigint): number {
  if (m < POW2[53]) {
    // Exact as a double: the exponent field gives the length.
    F64[0] = Number(m);
    return m === 0n ? 0 : ((U32[1] >>> 20) & 0x7ff) - 1022;
  }
  if (m < POW2[192]) {
    // Number(m) rounds to 53 bits, at most up to the next power of two: check that case.
    F64[0] = Number(m);
    const n = ((U32[1] >>> 20) & 0x7ff) - 1022;
    return (U32[1] & 0xfffff) === 0 && U32[0] === 0 && m < POW2[n - 1] ? n - 1 : n;
  }
  const s = m.toString(16);
  return (s.length - 1) * 4 + (32 - Math.clz32(parseInt(s[0], 16)));
}

/** A finite nonzero value as sign · m · 2^e. */
export interface Exact {
  sign: number;
  m: bigint;
  e: number;
}
/** The exact value of a finite register (zero gives m = 0). */
export function toExact(a: F80): Exact {
  return { sign: a.sign, m: a.sig, e: (a.exp === 0 ? 1 : a.exp) - BIAS - 63 };
}

interface Rounded {
  m: bigint;
  e: number;
  inexact: boolean;
  up: boolean;
}
/**
 * Round m · 2^e (m > 0) to `prec` significant bits, or to the fixed quantum 2^(emin − prec + 1)
 * below 2^emin (denormals), in direction rc.
 */
function roundSig(sign: number, m: bigint, e: number, prec: number, emin: number, rc: number): Rounded {
  const E = e + bitLen(m) - 1;
  const q = Math.max(E, emin) - prec + 1;
  if (e >= q) return { m, e, inexact: false, up: false };
  const d = q - e;
  const kept = m >> big(d);
  const rem = d <= 192 ? m & MASK[d] : m - (kept << big(d));
  if (rem === 0n) return { m: kept, e: q, inexact: false, up: false };
  let up: boolean;
  if (rc === Rc.NEAREST) {
    const half = d <= 193 ? POW2[d - 1] : 1n << big(d - 1);
    up = rem > half || (rem === half && (kept & 1n) === 1n);
  } else if (rc === Rc.UP) up = sign === 0;
  else if (rc === Rc.DOWN) up = sign === 1;
  else up = false;
  return { m: up ? kept + 1n : kept, e: q, inexact: true, up };
}

/** A destination format: significand bits and normal exponent range. */
export interface Fmt {
  prec: number;
  emin: number;
  emax: number;
}
export const FMT32: Fmt = { prec: 24, emin: -126, emax: 127 };
export const FMT64: Fmt = { prec: 53, emin: -1022, emax: 1023 };
export const FMT80: Fmt = { prec: 64, emin: EMIN, emax: EMAX };

/** Result of rounding to a format: m · 2^e (m = 0 a zero), or infinity (m = −1). */
export interface Result {
  sign: number;
  m: bigint;
  e: number;
}

/**
 * Round an exact nonzero value into a format (SDM vol. 1, 4.9.1.4–4.9.1.6 and 8.5.4–8.5.6).
 * @param prec significand bits (the precision control for register results)
 * @param toReg an x87 register destination: unmasked overflow and underflow deliver the rounded
 *   value with its exponent adjusted by 2^∓24576; for a memory destination they return null (no store)
 */
export function roundTo(sign: number, m: bigint, e: number, prec: number, fmt: Fmt, env: FpEnv, toReg: boolean): Result | null {
  const rc = env.rc;
  const n = bitLen(m);
  const E0 = e + n - 1;
  if (E0 > fmt.emin && E0 < fmt.emax) {
    // Far from both ends of the range: no underflow, and rounding up can at most reach 2^(E0+1).
    const r = roundSig(sign, m, e, prec, fmt.emin, rc);
    if (r.inexact) { env.flags |= Fsw.PE; env.c1 = r.up ? 1 : 0; }
    return { sign, m: r.m, e: r.e };
  }
  const u = roundSig(sign, m, e, prec, -0x7fffffff, rc);
  const eu = u.e + bitLen(u.m) - 1;
  if (eu < fmt.emin) {
    if (!(env.masks & Fcw.UM)) {
      env.flags |= Fsw.UE;
      if (!toReg) return null;
      if (eu + 24576 < fmt.emin) {
        // Still too small after the bias adjustment (only FSCALE gets here): a zero, inexact.
        env.flags |= Fsw.PE;
        env.c1 = 0;
        return { sign, m: 0n, e: 0 };
      }
      if (u.inexact) { env.flags |= Fsw.PE; env.c1 = u.up ? 1 : 0; }
      return { sign, m: u.m, e: u.e + 24576 };
    }
    const r = roundSig(sign, m, e, prec, fmt.emin, rc);
    if (r.inexact) { env.flags |= Fsw.UE | Fsw.PE; env.c1 = r.up ? 1 : 0; }
    return { sign, m: r.m, e: r.e };
  }
  const r = roundSig(sign, m, e, prec, fmt.emin, rc);
  const er = r.e + bitLen(r.m) - 1;
  if (er > fmt.emax) {
    if (!(env.masks & Fcw.OM)) {
      env.flags |= Fsw.OE;
      if (!toReg) return null;
      if (er - 24576 > fmt.emax) {
        // Still too large after the bias adjustment (only FSCALE gets here): an infinity, inexact.
        env.flags |= Fsw.PE;
        env.c1 = 1;
        return { sign, m: -1n, e: 0 };
      }
      if (r.inexact) { env.flags |= Fsw.PE; env.c1 = r.up ? 1 : 0; }
      return { sign, m: r.m, e: r.e - 24576 };
    }
    env.flags |= Fsw.OE | Fsw.PE;
    const toInf = rc === Rc.NEAREST || (rc === Rc.UP && sign === 0) || (rc === Rc.DOWN && sign === 1);
    env.c1 = toInf ? 1 : 0;
    if (toInf) return { sign, m: -1n, e: 0 };
    return { sign, m: (1n << BigInt(prec)) - 1n, e: fmt.emax - prec + 1 };
  }
  if (r.inexact) { env.flags |= Fsw.PE; env.c1 = r.up ? 1 : 0; }
  return { sign, m: r.m, e: r.e };
}

/** Pack a rounded result into register fields. */
export function packExt(r: Result): F80 {
  if (r.m < 0n) return inf(r.sign);
  if (r.m === 0n) return zero(r.sign);
  const n = bitLen(r.m);
  const E = r.e + n - 1;
  if (E < EMIN) {
    // Denormal: the quantum is 2^(EMIN - 63) or coarser.
    return f80(r.sign, 0, (r.m << BigInt(r.e - (EMIN - 63))) & M64);
  }
  const sig = n <= 64 ? r.m << big(64 - n) : r.m >> big(n - 64);
  return f80(r.sign, (E + BIAS) & 0x7fff, sig);
}

/** Round an exact value to a register result at precision `prec`. */
export function roundExt(sign: number, m: bigint, e: number, prec: number, env: FpEnv): F80 {
  return packExt(roundTo(sign, m, e, prec, FMT80, env, true)!);
}

/** Significand bits for the precision control field (PC 01 is reserved: treated as 64 here). */
export function precBits(fcw: number): number {
  const pc = (fcw >> 8) & 3;
  return pc === 0 ? 24 : pc === 2 ? 53 : 64;
}

// ---------------------------------------------------------------------------------------------
// Operand checks shared by the arithmetic (SDM vol. 1, 4.8.3.5 and table 4-7)
// ---------------------------------------------------------------------------------------------

/**
 * The NaN result for two operands at least one of which is a NaN (x87 rules, SDM vol. 1, table 4-7):
 * an SNaN and a QNaN give the QNaN; two SNaNs or two QNaNs the one with the larger significand.
 */
function propagate2(a: F80, b: F80): F80 {
  const an = isNaN80(a), bn = isNaN80(b);
  if (an && bn) {
    const aq = (a.sig & QBIT) !== 0n, bq = (b.sig & QBIT) !== 0n;
    if (aq !== bq) return aq ? a : b;
    const as = a.sig | QBIT, bs = b.sig | QBIT;
    if (as > bs) return quiet(a);
    if (bs > as) return quiet(b);
    return a.sign <= b.sign ? quiet(a) : quiet(b);
  }
  return an ? quiet(a) : quiet(b);
}

/**
 * Check two operands: unsupported formats and SNaNs raise IE, NaNs propagate. Denormal operands
 * are the operation's to report (`denormals`), after its invalid cases: an invalid operation or a
 * division by zero reports no DE (as silicon does).
 * @returns the result when the operands decide it (a NaN or the indefinite), null to go on; an
 *   unmasked IE or DE is seen by `aborted(env)`
 */
export function check2(a: F80, b: F80, env: FpEnv): F80 | null {
  const ka = kind(a), kb = kind(b);
  if (ka === Kind.UNSUPPORTED || kb === Kind.UNSUPPORTED) { env.flags |= Fsw.IE; return INDEFINITE; }
  if (ka === Kind.SNAN || kb === Kind.SNAN) env.flags |= Fsw.IE;
  if (ka >= Kind.QNAN || kb >= Kind.QNAN) return propagate2(a, b);
  return null;
}
/** DE for denormal operands (pseudo-denormals included). */
export function denormals(env: FpEnv, a: F80, b?: F80): void {
  if ((a.exp === 0 && a.sig !== 0n) || (b !== undefined && b.exp === 0 && b.sig !== 0n)) env.flags |= Fsw.DE;
}
/** One operand's checks, as check2. */
export function check1(a: F80, env: FpEnv): F80 | null {
  const k = kind(a);
  if (k === Kind.UNSUPPORTED) { env.flags |= Fsw.IE; return INDEFINITE; }
  if (k === Kind.SNAN) { env.flags |= Fsw.IE; return quiet(a); }
  if (k === Kind.QNAN) return a;
  return null;
}
function invalid(env: FpEnv): F80 {
  env.flags |= Fsw.IE;
  return INDEFINITE;
}

// ---------------------------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------------------------

/** Exact sum of two exact values (either may be zero). */
function addExact(a: Exact, b: Exact): Exact {
  if (a.m === 0n) return b;
  if (b.m === 0n) return a;
  // A far smaller operand only matters as a sticky bit below every rounding point.
  const Ea = a.e + bitLen(a.m) - 1, Eb = b.e + bitLen(b.m) - 1;
  if (Ea - Eb > 72) b = { sign: b.sign, m: 1n, e: Ea - 72 };
  else if (Eb - Ea > 72) a = { sign: a.sign, m: 1n, e: Eb - 72 };
  const e = Math.min(a.e, b.e);
  const am = a.m << BigInt(a.e - e), bm = b.m << BigInt(b.e - e);
  const s = (a.sign ? -am : am) + (b.sign ? -bm : bm);
  return s < 0n ? { sign: 1, m: -s, e } : { sign: 0, m: s, e };
}

/** a + b (sub: a − b), rounded to `prec` bits. FADD, FSUB, FSUBR and their forms. */
export function add(a: F80, b: F80, sub: boolean, prec: number, env: FpEnv): F80 | null {
  const nan = check2(a, b, env);
  if (nan) return aborted(env) ? null : nan;
  denormals(env, a, b);
  if (aborted(env)) return null;
  const bs = sub ? b.sign ^ 1 : b.sign;
  const ka = kind(a), kb = kind(b);
  if (ka === Kind.INF || kb === Kind.INF) {
    if (ka === Kind.INF && kb === Kind.INF && a.sign !== bs) { invalid(env); return aborted(env) ? null : INDEFINITE; }
    return ka === Kind.INF ? a : inf(bs);
  }
  const x = toExact(a), y = toExact(b);
  y.sign = bs;
  const s = addExact(x, y);
  if (s.m === 0n) {
    // An exact zero sum is +0, or −0 rounding down; (−0) + (−0) is −0 (IEEE 754 6.3).
    if (a.sig === 0n && b.sig === 0n && a.sign === bs) return zero(a.sign);
    return zero(env.rc === Rc.DOWN ? 1 : 0);
  }
  return roundExt(s.sign, s.m, s.e, prec, env);
}

/** a × b. FMUL and its forms. */
export function mul(a: F80, b: F80, prec: number, env: FpEnv): F80 | null {
  const nan = check2(a, b, env);
  if (nan) return aborted(env) ? null : nan;
  denormals(env, a, b);
  if (aborted(env)) return null;
  const sign = a.sign ^ b.sign;
  const ka = kind(a), kb = kind(b);
  if (ka === Kind.INF || kb === Kind.INF) {
    if (ka === Kind.ZERO || kb === Kind.ZERO) { invalid(env); return aborted(env) ? null : INDEFINITE; }
    return inf(sign);
  }
  if (ka === Kind.ZERO || kb === Kind.ZERO) return zero(sign);
  const x = toExact(a), y = toExact(b);
  return roundExt(sign, x.m * y.m, x.e + y.e, prec, env);
}

/** a ÷ b. FDIV, FDIVR and their forms. */
export function div(a: F80, b: F80, prec: number, env: FpEnv): F80 | null {
  const nan = check2(a, b, env);
  if (nan) return aborted(env) ? null : nan;
  const sign = a.sign ^ b.sign;
  const ka = kind(a), kb = kind(b);
  if (kb === Kind.ZERO) {
    if (ka === Kind.ZERO) { invalid(env); return aborted(env) ? null : INDEFINITE; }
    if (ka !== Kind.INF) env.flags |= Fsw.ZE;
    return aborted(env) ? null : inf(sign);
  }
  if (ka === Kind.INF && kb === Kind.INF) { invalid(env); return aborted(env) ? null : INDEFINITE; }
  denormals(env, a, b);
  if (aborted(env)) return null;
  if (ka === Kind.INF) return inf(sign);
  if (kb === Kind.INF) return zero(sign);
  if (ka === Kind.ZERO) return zero(sign);
  const x = toExact(a), y = toExact(b);
  const q = divExact(x.m, x.e, y.m, y.e);
  return roundExt(sign, q.m, q.e, prec, env);
}
/** mx·2^ex ÷ my·2^ey to at least 68 significant bits, with a sticky bit. */
function divExact(mx: bigint, ex: number, my: bigint, ey: number): { m: bigint; e: number } {
  const k = Math.max(0, 68 + bitLen(my) - bitLen(mx) + 1);
  const n = mx << BigInt(k);
  const q = n / my;
  const sticky = q * my !== n ? 1n : 0n;
  return { m: (q << 1n) | sticky, e: ex - ey - k - 1 };
}

/** Integer square root (floor) of n ≥ 0. */
export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((bitLen(n) + 1) >> 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/** √a. FSQRT. */
export function sqrt(a: F80, prec: number, env: FpEnv): F80 | null {
  const nan = check1(a, env);
  if (nan) return aborted(env) ? null : nan;
  const k = kind(a);
  if (k === Kind.ZERO) return a;
  if (a.sign) { invalid(env); return aborted(env) ? null : INDEFINITE; }
  denormals(env, a);
  if (aborted(env)) return null;
  if (k === Kind.INF) return a;
  const x = toExact(a);
  let m = x.m, e = x.e;
  // Scale to at least 2·68 bits with an even exponent.
  let sh = Math.max(0, 140 - bitLen(m));
  if ((e - sh) & 1) sh++;
  m <<= BigInt(sh);
  e -= sh;
  const r = isqrt(m);
  const sticky = r * r !== m ? 1n : 0n;
  return roundExt(0, (r << 1n) | sticky, e / 2 - 1, prec, env);
}

/** Compare for FCOM/FUCOM/FCOMI/FTST: −1 less, 0 equal, 1 greater, 2 unordered; null when aborted. */
export function compare(a: F80, b: F80, quietNaN: boolean, env: FpEnv): number | null {
  const ka = kind(a), kb = kind(b);
  if (ka === Kind.UNSUPPORTED || kb === Kind.UNSUPPORTED) { env.flags |= Fsw.IE; return aborted(env) ? null : 2; }
  if (ka >= Kind.QNAN || kb >= Kind.QNAN) {
    if (!quietNaN || ka === Kind.SNAN || kb === Kind.SNAN) env.flags |= Fsw.IE;
    return aborted(env) ? null : 2;
  }
  denormals(env, a, b);
  if (aborted(env)) return null;
  return cmpValues(a, b);
}
/** Order of two non-NaN values (−0 = +0). */
export function cmpValues(a: F80, b: F80): number {
  const ka = kind(a), kb = kind(b);
  const az = ka === Kind.ZERO, bz = kb === Kind.ZERO;
  if (az && bz) return 0;
  if (!az && !bz && a.sign !== b.sign) return a.sign ? -1 : 1;
  if (az) return b.sign ? 1 : -1;
  if (bz) return a.sign ? -1 : 1;
  const ia = ka === Kind.INF, ib = kb === Kind.INF;
  let c: number;
  if (ia || ib) c = ia && ib ? 0 : ia ? 1 : -1;
  else {
    const x = toExact(a), y = toExact(b);
    const Ex = x.e + bitLen(x.m), Ey = y.e + bitLen(y.m);
    if (Ex !== Ey) c = Ex > Ey ? 1 : -1;
    else {
      const e = Math.min(x.e, y.e);
      const xm = x.m << BigInt(x.e - e), ym = y.m << BigInt(y.e - e);
      c = xm === ym ? 0 : xm > ym ? 1 : -1;
    }
  }
  return a.sign ? -c : c;
}

/** Round an exact value to an integer in direction rc: the integer (signed BigInt) and whether it was inexact/up. */
export function roundToInteger(x: Exact, rc: number): { v: bigint; inexact: boolean; up: boolean } {
  if (x.m === 0n) return { v: 0n, inexact: false, up: false };
  if (x.e >= 0) {
    const v = x.m << BigInt(x.e);
    return { v: x.sign ? -v : v, inexact: false, up: false };
  }
  const sh = BigInt(-x.e);
  const kept = x.m >> sh;
  const rem = x.m - (kept << sh);
  if (rem === 0n) return { v: x.sign ? -kept : kept, inexact: false, up: false };
  let up: boolean;
  if (rc === Rc.NEAREST) {
    const half = 1n << (sh - 1n);
    up = rem > half || (rem === half && (kept & 1n) === 1n);
  } else if (rc === Rc.UP) up = x.sign === 0;
  else if (rc === Rc.DOWN) up = x.sign === 1;
  else up = false;
  const v = up ? kept + 1n : kept;
  return { v: x.sign ? -v : v, inexact: true, up };
}

/** An integer (signed BigInt) as an exact register value. */
export function fromInteger(v: bigint): F80 {
  if (v === 0n) return zero(0);
  const sign = v < 0n ? 1 : 0;
  const m = sign ? -v : v;
  const n = bitLen(m);
  return f80(sign, BIAS + n - 1, (m << BigInt(64 - n)) & M64);
}

/** FRNDINT: round to an integral value in the current rounding direction. */
export function roundInt(a: F80, env: FpEnv): F80 | null {
  const nan = check1(a, env);
  if (nan) return aborted(env) ? null : nan;
  denormals(env, a);
  if (aborted(env)) return null;
  const k = kind(a);
  if (k === Kind.ZERO || k === Kind.INF) return a;
  const r = roundToInteger(toExact(a), env.rc);
  if (r.inexact) { env.flags |= Fsw.PE; env.c1 = r.up ? 1 : 0; }
  if (r.v === 0n) return zero(a.sign);
  return fromInteger(r.v);
}

/**
 * Convert to a signed integer of `bits` bits (FIST, FISTP, FISTTP with truncate). Out of range,
 * NaN or infinity is invalid: the integer indefinite (the most negative value) when masked.
 * @returns the integer, or null when an unmasked exception leaves the destination unchanged
 */
export function toInt(a: F80, bits: number, truncate: boolean, env: FpEnv): bigint | null {
  const indefinite = -(1n << BigInt(bits - 1));
  const k = kind(a);
  // No DE for stores (silicon reports none for a denormal source; the SDM lists none for FIST).
  if (k === Kind.UNSUPPORTED || k >= Kind.INF) { env.flags |= Fsw.IE; return aborted(env) ? null : indefinite; }
  const r = roundToInteger(toExact(a), truncate ? Rc.ZERO : env.rc);
  const lim = 1n << BigInt(bits - 1);
  if (r.v >= lim || r.v < -lim) { env.flags |= Fsw.IE; return aborted(env) ? null : indefinite; }
  if (r.inexact) { env.flags |= Fsw.PE; env.c1 = r.up ? 1 : 0; }
  return r.v;
}

// ---------------------------------------------------------------------------------------------
// Memory formats
// ---------------------------------------------------------------------------------------------

/** Load a single (bits 32) or double (64) real: exact, SNaN → IE and quieted, denormal → DE. */
export function fromIeee(bits: bigint, fmt: Fmt, env: FpEnv, quietSnan = true): F80 {
  const ebits = fmt === FMT32 ? 8 : 11;
  const fbits = fmt.prec - 1;
  const sign = Number(bits >> BigInt(ebits + fbits)) & 1;
  const exp = Number((bits >> BigInt(fbits)) & ((1n << BigInt(ebits)) - 1n));
  const frac = bits & ((1n << BigInt(fbits)) - 1n);
  const emaxBiased = (1 << ebits) - 1;
  const bias = (1 << (ebits - 1)) - 1;
  if (exp === emaxBiased) {
    if (frac === 0n) return inf(sign);
    const sig = J | (frac << BigInt(63 - fbits));
    // FLD quiets an SNaN (IE); an arithmetic operand stays signalling for the operation's NaN rules.
    if (!quietSnan) return f80(sign, 0x7fff, sig);
    if (!(sig & QBIT)) env.flags |= Fsw.IE;
    return f80(sign, 0x7fff, sig | QBIT);
  }
  if (exp === 0) {
    if (frac === 0n) return zero(sign);
    env.flags |= Fsw.DE;
    return packExt({ sign, m: frac, e: 1 - bias - fbits });
  }
  return f80(sign, exp - bias + BIAS, J | (frac << BigInt(63 - fbits)));
}

/**
 * Store to a single or double real (FST, FSTP): rounded by RC to the format, NaNs truncated (an
 * SNaN raises IE and is quieted), the empty/invalid cases to the caller.
 * @returns the bits, or null when an unmasked exception means no store
 */
export function toIeee(a: F80, fmt: Fmt, env: FpEnv): bigint | null {
  const ebits = fmt === FMT32 ? 8 : 11;
  const fbits = fmt.prec - 1;
  const bias = (1 << (ebits - 1)) - 1;
  const emaxBiased = BigInt((1 << ebits) - 1);
  const k = kind(a);
  const signBit = BigInt(a.sign) << BigInt(ebits + fbits);
  const infBits = signBit | (emaxBiased << BigInt(fbits));
  if (k === Kind.UNSUPPORTED) {
    env.flags |= Fsw.IE;
    return aborted(env) ? null : (1n << BigInt(ebits + fbits)) | (emaxBiased << BigInt(fbits)) | (1n << BigInt(fbits - 1));
  }
  if (k === Kind.SNAN || k === Kind.QNAN) {
    if (k === Kind.SNAN) env.flags |= Fsw.IE;
    if (aborted(env)) return null;
    return infBits | (((a.sig | QBIT) & ~J) >> BigInt(63 - fbits));
  }
  if (k === Kind.INF) return infBits;
  if (k === Kind.ZERO) return signBit;
  const x = toExact(a);
  const r = roundTo(a.sign, x.m, x.e, fmt.prec, fmt, env, false);
  if (!r) return null;
  if (r.m < 0n) return infBits;
  if (r.m === 0n) return signBit;
  const n = bitLen(r.m);
  const E = r.e + n - 1;
  if (E < fmt.emin) return signBit | (r.m << BigInt(r.e - (fmt.emin - fbits)));
  const sig = n <= fmt.prec ? r.m << BigInt(fmt.prec - n) : r.m >> BigInt(n - fmt.prec);
  return signBit | (BigInt(E + bias) << BigInt(fbits)) | (sig & ((1n << BigInt(fbits)) - 1n));
}

/** FBLD: 18 packed BCD digits and a sign byte, exact. Digits above 9 give what the arithmetic gives (undefined in the SDM). */
export function fromBcd(bytes: number[]): F80 {
  let v = 0n;
  for (let k = 8; k >= 0; k--) v = v * 100n + BigInt((bytes[k] >> 4) * 10 + (bytes[k] & 15));
  const sign = bytes[9] & 0x80 ? 1 : 0;
  if (v === 0n) return zero(sign);
  const r = fromInteger(v);
  r.sign = sign;
  return r;
}

/** FBSTP: round by RC to an integer of at most 18 decimal digits; invalid gives the BCD indefinite. */
export function toBcd(a: F80, env: FpEnv): number[] | null {
  const indefinite = [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];
  const k = kind(a);
  if (k === Kind.UNSUPPORTED || k >= Kind.INF) { env.flags |= Fsw.IE; return aborted(env) ? null : indefinite; }
  const r = roundToInteger(toExact(a), env.rc);
  let v = r.v < 0n ? -r.v : r.v;
  if (v >= 10n ** 18n) { env.flags |= Fsw.IE; return aborted(env) ? null : indefinite; }
  if (r.inexact) { env.flags |= Fsw.PE; env.c1 = r.up ? 1 : 0; }
  const out = new Array<number>(10).fill(0);
  for (let k2 = 0; k2 < 9; k2++) {
    const d = Number(v % 100n);
    v /= 100n;
    out[k2] = ((Math.floor(d / 10)) << 4) | (d % 10);
  }
  out[9] = a.sign ? 0x80 : 0;
  return out;
}

// ---------------------------------------------------------------------------------------------
// FSCALE, FXTRACT, FPREM, FPREM1
// ---------------------------------------------------------------------------------------------

/** FSCALE: a · 2^trunc(b). */
export function scale(a: F80, b: F80, env: FpEnv): F80 | null {
  const nan = check2(a, b, env);
  if (nan) return aborted(env) ? null : nan;
  const ka = kind(a), kb = kind(b);
  if (kb === Kind.INF && ((b.sign === 0 && ka === Kind.ZERO) || (b.sign === 1 && ka === Kind.INF))) {
    invalid(env);
    return aborted(env) ? null : INDEFINITE;
  }
  denormals(env, a, b);
  if (aborted(env)) return null;
  if (kb === Kind.INF) {
    if (b.sign === 0) {
      if (ka === Kind.ZERO) { invalid(env); return aborted(env) ? null : INDEFINITE; }
      return inf(a.sign);
    }
    if (ka === Kind.INF) { invalid(env); return aborted(env) ? null : INDEFINITE; }
    return zero(a.sign);
  }
  if (ka === Kind.INF || ka === Kind.ZERO) return a;
  let n = kb === Kind.ZERO ? 0n : roundToInteger(toExact(b), Rc.ZERO).v;
  if (n > 70000n) n = 70000n;
  if (n < -70000n) n = -70000n;
  const x = toExact(a);
  return roundExt(a.sign, x.m, x.e + Number(n), 64, env);
}

/** FXTRACT: [exponent, significand] of a (the significand ends in ST(0)). */
export function xtract(a: F80, env: FpEnv): [F80, F80] | null {
  const k = kind(a);
  if (k === Kind.UNSUPPORTED) { env.flags |= Fsw.IE; return aborted(env) ? null : [INDEFINITE, INDEFINITE]; }
  if (k === Kind.SNAN || k === Kind.QNAN) {
    if (k === Kind.SNAN) env.flags |= Fsw.IE;
    return aborted(env) ? null : [quiet(a), quiet(a)];
  }
  if (k === Kind.ZERO) {
    env.flags |= Fsw.ZE;
    return aborted(env) ? null : [inf(1), a];
  }
  if (k === Kind.INF) return [inf(0), a];
  denormals(env, a);
  if (aborted(env)) return null;
  const x = toExact(a);
  const n = bitLen(x.m);
  const E = x.e + n - 1;
  return [fromInteger(BigInt(E)), f80(a.sign, BIAS, (x.m << BigInt(64 - n)) & M64)];
}

/**
 * FPREM (round = false: truncating quotient) and FPREM1 (IEEE remainder): the partial remainder
 * and the condition codes. With an exponent difference of 64 or more the reduction is partial
 * (C2 = 1) by 2^(D − N), N = 32 + (D − 64) mod 32 (an implementation-dependent N in 32–63, SDM FPREM).
 * @returns the remainder and quotient bits q (Q2 Q1 Q0), partial, or null when aborted
 */
export function prem(a: F80, b: F80, round: boolean, env: FpEnv): { r: F80; q: number; partial: boolean } | null {
  const nan = check2(a, b, env);
  if (nan) return aborted(env) ? null : { r: nan, q: 0, partial: false };
  const ka = kind(a), kb = kind(b);
  if (ka === Kind.INF || kb === Kind.ZERO) { invalid(env); return aborted(env) ? null : { r: INDEFINITE, q: 0, partial: false }; }
  denormals(env, a, b);
  if (aborted(env)) return null;
  if (kb === Kind.INF || ka === Kind.ZERO) return { r: a, q: 0, partial: false };
  const x = toExact(a), y = toExact(b);
  const Ex = x.e + bitLen(x.m) - 1, Ey = y.e + bitLen(y.m) - 1;
  const D = Ex - Ey;
  if (D < 0) {
    if (!round || D < -1) return { r: roundExt(a.sign, x.m, x.e, 64, env), q: 0, partial: false };
  }
  let partial = false;
  const ym = y.m;
  let ye = y.e;
  if (D >= 64) {
    partial = true;
    const N = 32 + ((D - 64) % 32);
    ye += D - N;
  }
  const e = Math.min(x.e, ye);
  const A = x.m << BigInt(x.e - e), B = ym << BigInt(ye - e);
  let Q = A / B;
  let R = A - Q * B;
  let sign = a.sign;
  if (round && !partial) {
    const twice = R << 1n;
    if (twice > B || (twice === B && (Q & 1n) === 1n)) {
      Q += 1n;
      R = B - R;
      sign ^= 1;
    }
  }
  const q = Number(Q & 7n);
  if (R === 0n) return { r: zero(a.sign), q, partial };
  return { r: roundExt(sign, R, e, 64, env), q, partial };
}
