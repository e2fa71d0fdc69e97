/**
 * The x87 transcendental instructions (FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1)
 * computed in 200-bit binary floating point on BigInts, then rounded once to the 64-bit
 * significand in the current rounding direction. The working error is below 2^-190 relative, so
 * the result is the correctly rounded value of the function except in cases closer to a rounding
 * boundary than that (none is known); real processors are only specified to within one unit in the
 * last place (SDM vol. 1, 8.3.10), so their last bit can differ from this.
 *
 * Argument reduction for FSIN, FCOS, FSINCOS and FPTAN is exact arithmetic against the 66-bit
 * approximation of π that the SDM documents for the x87 (vol. 1, 8.3.10: 0.C90FDAA2 2168C234 C ×
 * 4), which is what makes a Pentium 4's results for large arguments differ from the true sine.
 */
import * as fpuStateMod from "../fpu_state.ts";
import {
  aborted, bitLen, check1, check2, denormals, type F80, f80, fromInteger, type FpEnv, INDEFINITE, inf, Kind, kind, mul, ONE,
  roundExt, toExact, zero,
} from "./softfloat.ts";

const { Fsw } = fpuStateMod;

/** Working precision in bits. */
const P = 200;

/** A working value m · 2^e, m a signed BigInt. */
interface BF {
  m: bigint;
  e: number;
}
function norm(m: bigint, e: number): BF {
  if (m === 0n) return { m: 0n, e: 0 };
  const neg = m < 0n;
  let a = neg ? -m : m;
  const n = bitLen(a);
  if (n > P) {
    a >>= BigInt(n - P);
    e += n - P;
  }
  return { m: neg ? -a : a, e };
}
const bf = (m: bigint, e = 0): BF => norm(m, e);
function bmul(a: BF, b: BF): BF {
  return norm(a.m * b.m, a.e + b.e);
}
function top(a: BF): number {
  return a.e + bitLen(a.m < 0n ? -a.m : a.m);
}
function badd(a: BF, b: BF): BF {
  if (a.m === 0n) return b;
  if (b.m === 0n) return a;
  const ta = top(a), tb = top(b);
  if (ta - tb > P + 4) return a;
  if (tb - ta > P + 4) return b;
  const e = Math.min(a.e, b.e);
  return norm((a.m << BigInt(a.e - e)) + (b.m << BigInt(b.e - e)), e);
}
function bneg(a: BF): BF {
  return { m: -a.m, e: a.e };
}
function bsub(a: BF, b: BF): BF {
  return badd(a, bneg(b));
}
function bdiv(a: BF, b: BF): BF {
  const na = bitLen(a.m < 0n ? -a.m : a.m), nb = bitLen(b.m < 0n ? -b.m : b.m);
  const k = Math.max(0, P + 2 + nb - na);
  return norm((a.m << BigInt(k)) / b.m, a.e - b.e - k);
}
function bsqrt(a: BF): BF {
  let m = a.m, e = a.e;
  let sh = Math.max(0, 2 * P + 4 - bitLen(m));
  if ((e - sh) & 1) sh++;
  m <<= BigInt(sh);
  e -= sh;
  let x = 1n << BigInt((bitLen(m) + 1) >> 1);
  for (;;) {
    const y = (x + m / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  return norm(x, e / 2);
}
function bhalf(a: BF, k = 1): BF {
  return { m: a.m, e: a.e - k };
}
function fromExact(a: F80): BF {
  const x = toExact(a);
  return bf(a.sign ? -x.m : x.m, x.e);
}
/** Round a working value to a register result (always inexact: the sticky bit is set). */
function toF80(a: BF, env: FpEnv): F80 {
  if (a.m === 0n) return zero(0);
  const neg = a.m < 0n;
  const m = neg ? -a.m : a.m;
  return roundExt(neg ? 1 : 0, (m << 1n) | 1n, a.e - 1, 64, env);
}

// Constants, computed once in fixed point.
function atanInvFixed(n: bigint, bits: bigint): bigint {
  // atan(1/n) · 2^bits by its series.
  const one = 1n << bits;
  let term = one / n, sum = term, k = 1n;
  const n2 = n * n;
  while (term !== 0n) {
    term /= n2;
    const t = term / (2n * k + 1n);
    sum += k & 1n ? -t : t;
    k++;
  }
  return sum;
}
const FIX = 260n;
const PI: BF = bf(16n * atanInvFixed(5n, FIX) - 4n * atanInvFixed(239n, FIX), -Number(FIX));
const LN2: BF = (() => {
  // ln 2 = 2 atanh(1/3).
  const one = 1n << FIX;
  let term = one / 3n, sum = term, k = 1n;
  while (term !== 0n) {
    term /= 9n;
    sum += term / (2n * k + 1n);
    k++;
  }
  return bf(2n * sum, -Number(FIX));
})();
/** The x87's 66-bit π (SDM vol. 1, 8.3.10) over 2: PI66_HALF_M · 2^-67. */
const PI66_HALF_M = 0xc90fdaa22168c234cn;

/** Σ c_k x^k-style series helper: sum of terms until they vanish below the working precision. */
function sinSeries(r: BF): BF {
  // sin r = r − r³/3! + …
  const r2 = bmul(r, r);
  let term = r, sum = r;
  for (let k = 1; k < 200; k++) {
    term = bdiv(bmul(term, r2), bf(BigInt((2 * k) * (2 * k + 1))));
    if (term.m === 0n || top(sum) - top(term) > P + 2) break;
    sum = k & 1 ? bsub(sum, term) : badd(sum, term);
  }
  return sum;
}
function cosSeries(r: BF): BF {
  const r2 = bmul(r, r);
  let term = bf(1n), sum = term;
  for (let k = 1; k < 200; k++) {
    term = bdiv(bmul(term, r2), bf(BigInt((2 * k - 1) * (2 * k))));
    if (term.m === 0n || top(sum) - top(term) > P + 2) break;
    sum = k & 1 ? bsub(sum, term) : badd(sum, term);
  }
  return sum;
}
/** atan(z) for any finite z. */
function batan(z: BF): BF {
  if (z.m === 0n) return z;
  const neg = z.m < 0n;
  let a: BF = neg ? bneg(z) : z;
  let invert = false;
  if (top(a) > 1 || (top(a) === 1 && a.m !== 1n << BigInt(bitLen(a.m) - 1))) {
    // |z| > 1: atan z = π/2 − atan(1/z).
    a = bdiv(bf(1n), a);
    invert = true;
  }
  // Halve the angle three times: atan z = 2 atan(z / (1 + √(1 + z²))).
  for (let k = 0; k < 3; k++) a = bdiv(a, badd(bf(1n), bsqrt(badd(bf(1n), bmul(a, a)))));
  const a2 = bmul(a, a);
  let pow = a, sum = a;
  for (let k = 1; k < 400; k++) {
    pow = bmul(pow, a2);
    const term = bdiv(pow, bf(BigInt(2 * k + 1)));
    if (term.m === 0n || top(sum) - top(term) > P + 2) break;
    sum = k & 1 ? bsub(sum, term) : badd(sum, term);
  }
  let r = { m: sum.m, e: sum.e + 3 };
  if (invert) r = bsub(bhalf(PI), r);
  return neg ? bneg(r) : r;
}
/** e^x − 1 for |x| ≤ 64. */
function bexpm1(x: BF): BF {
  if (x.m === 0n) return x;
  // Scale down to |r| < 2^-12, sum the series, then expm1(2r) = expm1(r) · (expm1(r) + 2).
  const k = Math.max(0, top(x) + 12);
  const r = { m: x.m, e: x.e - k };
  let term = r, sum = r;
  for (let n = 2; n < 100; n++) {
    term = bdiv(bmul(term, r), bf(BigInt(n)));
    if (term.m === 0n || top(sum) - top(term) > P + 2) break;
    sum = badd(sum, term);
  }
  for (let i = 0; i < k; i++) sum = bmul(sum, badd(sum, bf(2n)));
  return sum;
}
/** ln(1 + x) for x > −1, as 2 atanh(x / (2 + x)). */
function blog1p(x: BF): BF {
  if (x.m === 0n) return x;
  const u = bdiv(x, badd(bf(2n), x));
  const u2 = bmul(u, u);
  let pow = u, sum = u;
  for (let k = 1; k < 2000; k++) {
    pow = bmul(pow, u2);
    const term = bdiv(pow, bf(BigInt(2 * k + 1)));
    if (term.m === 0n || top(sum) - top(term) > P + 2) break;
    sum = badd(sum, term);
  }
  return { m: sum.m, e: sum.e + 1 };
}
/** ln(y) for y > 0: y = m · 2^k with m in [√½, √2). */
function blog(y: BF): BF {
  let k = top(y) - 1; // y in [2^k, 2^(k+1))
  let m: BF = { m: y.m, e: y.e - k };
  // m in [1, 2): bring it into [√½, √2) (compare m² with 2).
  if (top(bmul(m, m)) > 2) { m = bhalf(m); k++; }
  return badd(bmul(bf(BigInt(k)), LN2), blog1p(bsub(m, bf(1n))));
}

/**
 * Reduce x (|x| < 2^63) by the 66-bit π/2: x = k · π66/2 + r exactly, |r| ≤ π66/4.
 * @returns r and k mod 4
 */
function reduce(a: F80): { r: BF; q: number } {
  const x = toExact(a);
  // x = mx · 2^ex; π66/2 = PM · 2^-67.
  let num: bigint, den: bigint, e: number;
  if (x.e >= -67) {
    num = x.m << BigInt(x.e + 67);
    den = PI66_HALF_M;
    e = -67;
  } else {
    num = x.m;
    den = PI66_HALF_M << BigInt(-67 - x.e);
    e = x.e;
  }
  let k = num / den;
  let rem = num - k * den;
  if (rem * 2n > den || (rem * 2n === den && (k & 1n))) { k += 1n; rem -= den; }
  if (a.sign) { rem = -rem; k = -k; }
  return { r: bf(rem, e), q: Number(((k % 4n) + 4n) % 4n) };
}

/** FSIN, FCOS, FSINCOS, FPTAN's common checks: null to go on, or the result for every output. */
function trigCheck(a: F80, env: FpEnv): { special: F80 | null; outOfRange: boolean } {
  const nan = check1(a, env);
  if (nan) return { special: nan, outOfRange: false };
  const k = kind(a);
  if (k === Kind.INF) { env.flags |= Fsw.IE; return { special: INDEFINITE, outOfRange: false }; }
  if (k !== Kind.ZERO && a.exp - 16383 >= 63) return { special: null, outOfRange: true };
  denormals(env, a);
  return { special: null, outOfRange: false };
}

export interface TrigResult {
  /** The source was out of range (|x| ≥ 2^63): C2 = 1 and nothing changes. */
  outOfRange: boolean;
  /** sin, cos (or tan, 1 for FPTAN); null when aborted. */
  values: F80[] | null;
}

/** FSIN (which = 0), FCOS (1), FSINCOS (2: [sin, cos]), FPTAN (3: [tan, 1]). */
export function trig(a: F80, which: number, env: FpEnv): TrigResult {
  const c = trigCheck(a, env);
  if (c.outOfRange) return { outOfRange: true, values: null };
  if (aborted(env)) return { outOfRange: false, values: null };
  const n = which >= 2 ? 2 : 1;
  if (c.special) return { outOfRange: false, values: new Array<F80>(n).fill(c.special) };
  if (kind(a) === Kind.ZERO) {
    const v = which === 0 ? [a] : which === 1 ? [ONE] : which === 2 ? [a, ONE] : [a, ONE];
    return { outOfRange: false, values: v };
  }
  const { r, q } = reduce(a);
  const s = sinSeries(r), co = cosSeries(r);
  const sinv = q === 0 ? s : q === 1 ? co : q === 2 ? bneg(s) : bneg(co);
  const cosv = q === 0 ? co : q === 1 ? bneg(s) : q === 2 ? bneg(co) : s;
  if (which === 0) return { outOfRange: false, values: [toF80(sinv, env)] };
  if (which === 1) return { outOfRange: false, values: [toF80(cosv, env)] };
  if (which === 2) {
    // Both results are rounded; C1 is the sine's round-up bit (as silicon reports it).
    const cv = toF80(cosv, env);
    const sv = toF80(sinv, env);
    return { outOfRange: false, values: [sv, cv] };
  }
  return { outOfRange: false, values: [toF80(bdiv(sinv, cosv), env), ONE] };
}

/** F2XM1: 2^x − 1 (defined by the SDM for −1 ≤ x ≤ 1). */
export function f2xm1(a: F80, env: FpEnv): F80 | null {
  const nan = check1(a, env);
  if (nan) return aborted(env) ? null : nan;
  denormals(env, a);
  if (aborted(env)) return null;
  const k = kind(a);
  if (k === Kind.ZERO) return a;
  if (k === Kind.INF) return a.sign ? f80(1, 16383, 1n << 63n) : a;
  const x = fromExact(a);
  if (top(x) > 7) {
    // Outside the defined range: the mathematical value for moderate x, else its limit.
    if (a.sign) return roundExt(1, (1n << 66n) - 1n, -66, 64, env);
    return roundExt(0, 1n, 1 << 20, 64, env);
  }
  return toF80(bexpm1(bmul(x, LN2)), env);
}

/** log2 of x > 0 as a working value, exact (m = integer) for a power of two. */
function log2Of(a: F80): { v: BF; exact: bigint | null } {
  const x = toExact(a);
  const n = bitLen(x.m);
  if (x.m === 1n << BigInt(n - 1)) return { v: bf(0n), exact: BigInt(x.e + n - 1) };
  return { v: bdiv(blog(fromExact(a)), LN2), exact: null };
}

/** FYL2X: y · log2(x). */
export function fyl2x(y: F80, x: F80, env: FpEnv): F80 | null {
  const nan = check2(x, y, env);
  if (nan) return aborted(env) ? null : nan;
  const kx = kind(x), ky = kind(y);
  const invalid = (): F80 | null => { env.flags |= Fsw.IE; return aborted(env) ? null : INDEFINITE; };
  if (x.sign && kx !== Kind.ZERO) return invalid();
  if (kx === Kind.ZERO) {
    if (ky === Kind.ZERO) return invalid();
    if (ky !== Kind.INF) env.flags |= Fsw.ZE;
    return aborted(env) ? null : inf(y.sign ^ 1);
  }
  if (kx === Kind.INF) {
    if (ky === Kind.ZERO) return invalid();
    return inf(y.sign);
  }
  denormals(env, x, y);
  if (aborted(env)) return null;
  const l = log2Of(x);
  // log2(x) is +0 at x = 1, negative below 1.
  const lsign = l.exact !== null ? (l.exact < 0n ? 1 : 0) : l.v.m < 0n ? 1 : 0;
  const lzero = l.exact === 0n;
  if (ky === Kind.INF) {
    if (lzero) return invalid();
    return inf(y.sign ^ lsign);
  }
  if (ky === Kind.ZERO || lzero) return zero(y.sign ^ lsign);
  if (l.exact !== null) return mul(y, fromInteger(l.exact), 64, env);
  return toF80(bmul(fromExact(y), l.v), env);
}

/** FYL2XP1: y · log2(x + 1) (defined by the SDM for |x| < 1 − √2/2). */
export function fyl2xp1(y: F80, x: F80, env: FpEnv): F80 | null {
  const nan = check2(x, y, env);
  if (nan) return aborted(env) ? null : nan;
  const kx = kind(x), ky = kind(y);
  const invalid = (): F80 | null => { env.flags |= Fsw.IE; return aborted(env) ? null : INDEFINITE; };
  if (kx === Kind.ZERO) {
    if (ky === Kind.INF) return invalid();
    denormals(env, y);
    return aborted(env) ? null : zero(x.sign ^ y.sign);
  }
  denormals(env, x, y);
  if (aborted(env)) return null;
  const xv = fromExact(x);
  if (kx === Kind.INF || badd(xv, bf(1n)).m <= 0n) {
    // +∞, or x ≤ −1 (far outside the SDM's domain): an infinity, or invalid.
    if (x.sign || ky === Kind.ZERO) return invalid();
    return inf(y.sign);
  }
  if (ky === Kind.INF) return inf(y.sign ^ x.sign);
  if (ky === Kind.ZERO) return zero(x.sign ^ y.sign);
  return toF80(bmul(fromExact(y), bdiv(blog1p(xv), LN2)), env);
}

/** FPATAN: the angle of (x, y), atan2(y, x) with the x87's signs of zero and infinity. */
export function fpatan(y: F80, x: F80, env: FpEnv): F80 | null {
  const nan = check2(x, y, env);
  if (nan) return aborted(env) ? null : nan;
  denormals(env, x, y);
  if (aborted(env)) return null;
  const kx = kind(x), ky = kind(y);
  const sy = y.sign;
  const signed = (v: BF): F80 => toF80(sy ? bneg(v) : v, env);
  if (ky === Kind.ZERO) {
    if (x.sign === 0) return zero(sy);
    return signed(PI);
  }
  if (kx === Kind.ZERO) return signed(bhalf(PI));
  if (ky === Kind.INF) {
    if (kx === Kind.INF) return signed(x.sign ? bsub(PI, bhalf(PI, 2)) : bhalf(PI, 2));
    return signed(bhalf(PI));
  }
  if (kx === Kind.INF) return x.sign ? signed(PI) : zero(sy);
  const yv = fromExact(y), xv = fromExact(x);
  const ay = sy ? bneg(yv) : yv, ax = x.sign ? bneg(xv) : xv;
  let t = batan(bdiv(ay, ax));
  if (x.sign) t = bsub(PI, t);
  return signed(t);
}

/** The x87 constants rounded by RC (FLDPI, FLDL2E, FLDL2T, FLDLG2, FLDLN2): see x87.ts. */
export const CONSTANTS = {
  pi: PI,
  l2e: bdiv(bf(1n), LN2),
  l2t: bdiv(blog(bf(10n)), LN2),
  lg2: bdiv(LN2, blog(bf(10n))),
  ln2: LN2,
};
/** Round a constant to 64 bits in direction rc (no flags: the x87 constant loads raise none). */
export function constant(c: BF, rc: number): F80 {
  const env: FpEnv = { rc, masks: 0x3f, flags: 0, c1: 0 };
  return toF80(c, env);
}
