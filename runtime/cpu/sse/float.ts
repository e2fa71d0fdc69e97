/**
 * IEEE 754 single and double arithmetic as SSE computes it (SDM vol. 1, chapter 4 and 11.5): the
 * four rounding modes, DAZ and FTZ, the six exception flags, and x86's NaN rules. Values travel as
 * JavaScript numbers (a single is a number that Math.fround leaves unchanged); NaN operands never
 * reach the arithmetic here: callers classify them by their bits first (sse/fp_ops.ts), because
 * converting a single NaN to a number may quiet it.
 *
 * Every operation computes its exactly rounded result. The fast path takes the host's
 * round-to-nearest result when it can prove it correct and knows exactly whether it was inexact
 * (error-free transformations: TwoSum, Dekker's product); everything else (other rounding modes,
 * results near the underflow or overflow thresholds, FTZ) goes through an exact path on BigInt
 * significands that rounds once, from the exact value, with the tininess rule of x86 (tininess is
 * detected after rounding, SDM vol. 1, 4.9.1.5 and 11.5.2.2).
 *
 * State is one module-level object for speed (`M`): `setMode` before an instruction, `M.fl`
 * collects its flags.
 */
import * as sseStateMod from "../sse_state.ts";

const { Mx } = sseStateMod;

/** Format codes. */
export const F32 = 0, F64 = 1;

/**
 * The rounding mode (0 nearest, 1 down, 2 up, 3 toward zero), flush-to-zero (with UM masked),
 * denormals-are-zero, UM and OM clear (an unmasked underflow is signaled for any tiny result, exact
 * or not; SDM 4.9.1.5), and `fl`, the flags raised since the caller last cleared them (MXCSR bit
 * positions). One const object: a module-level `let` costs a hole check at every use.
 */
export const M = { fl: 0, rc: 0, ftz: false, daz: false, um: false, om: false };

/** Take the rounding mode, FTZ and DAZ from an MXCSR value, and clear the flags. */
export function setMode(mxcsr: number): void {
  M.rc = (mxcsr >> 13) & 3;
  M.ftz = (mxcsr & Mx.FZ) !== 0 && (mxcsr & Mx.UM) !== 0;
  M.daz = (mxcsr & Mx.DAZ) !== 0;
  M.um = (mxcsr & Mx.UM) === 0;
  M.om = (mxcsr & Mx.OM) === 0;
  M.fl = 0;
}
/** Raise flags (MXCSR bit positions). */
export function raise(f: number): void {
  M.fl |= f;
}

const IE = Mx.IE, DE = Mx.DE, ZE = Mx.ZE, OE = Mx.OE, UE = Mx.UE, PE = Mx.PE;

// Format parameters: precision p, minimum normal exponent, maximum exponent.
const P = [24, 53];
const EMIN = [-126, -1022];
const EMAX = [127, 1023];
const MIN_NORMAL = [2 ** -126, 2 ** -1022];
const MAX_FINITE = [(2 - 2 ** -23) * 2 ** 127, Number.MAX_VALUE];

/** The value as stored in the format: Math.fround for singles. */
function inFormat(x: number, fmt: number): number {
  return fmt === F32 ? Math.fround(x) : x;
}

/** Whether a non-NaN value is denormal (nonzero and below the smallest normal) in its format. */
export function isDenormal(x: number, fmt: number): boolean {
  return x !== 0 && Math.abs(x) < MIN_NORMAL[fmt];
}
/**
 * An operand as the arithmetic sees it: with DAZ a denormal becomes a zero of its sign; otherwise
 * a denormal raises DE (SDM 11.5.2.1: the denormal-operand exception).
 */
export function operand(x: number, fmt: number): number {
  if (x !== 0 && Math.abs(x) < MIN_NORMAL[fmt]) {
    if (M.daz) return x < 0 ? -0 : 0;
    M.fl |= DE;
  }
  return x;
}
/** Operation codes of binary(): the SSE opcodes' order (ADD 58, MUL 59, SUB 5C, DIV 5E). */
export const OP_ADD = 0, OP_MUL = 1, OP_SUB = 2, OP_DIV = 4;

/**
 * A binary operation with the denormal-operand rule: DE for a denormal operand (DAZ off), except
 * when the operation is invalid or divides by zero, which take priority (measured on the host:
 * a denormal divided by zero raises ZE alone, the square root of a negative denormal IE alone).
 */
export function binary(op: number, a: number, b: number, fmt: number): number {
  let de = false;
  const min = MIN_NORMAL[fmt];
  if (a !== 0 && Math.abs(a) < min) { if (M.daz) a = a < 0 ? -0 : 0; else de = true; }
  if (b !== 0 && Math.abs(b) < min) { if (M.daz) b = b < 0 ? -0 : 0; else de = true; }
  if (!de) return op === OP_ADD ? add(a, b, fmt) : op === OP_MUL ? mul(a, b, fmt) : op === OP_SUB ? add(a, -b, fmt) : div(a, b, fmt);
  const before = M.fl;
  M.fl = 0;
  const r = op === OP_ADD ? add(a, b, fmt) : op === OP_MUL ? mul(a, b, fmt) : op === OP_SUB ? add(a, -b, fmt) : div(a, b, fmt);
  if (!(M.fl & (IE | ZE))) M.fl |= DE;
  M.fl |= before;
  return r;
}
/** The square root with the same denormal rule. */
export function sqrtOp(a: number, fmt: number): number {
  let de = false;
  if (a !== 0 && Math.abs(a) < MIN_NORMAL[fmt]) { if (M.daz) a = a < 0 ? -0 : 0; else de = true; }
  if (!de) return sqrt(a, fmt);
  const before = M.fl;
  M.fl = 0;
  const r = sqrt(a, fmt);
  if (!(M.fl & IE)) M.fl |= DE;
  M.fl |= before;
  return r;
}

/** Like operand(), without raising DE (instructions that do not signal it: conversions to integers). */
export function operandQuiet(x: number, fmt: number): number {
  if (M.daz && x !== 0 && Math.abs(x) < MIN_NORMAL[fmt]) return x < 0 ? -0 : 0;
  return x;
}

// ---------------------------------------------------------------------------------------------
// The exact path
// ---------------------------------------------------------------------------------------------
const scratch = new Float64Array(1);
const scratchU = new Uint32Array(scratch.buffer);

/** A finite double as sign, integer significand and exponent: |x| = m * 2^e. */
function decompose(x: number): { s: number; m: bigint; e: number } {
  scratch[0] = x;
  const hi = scratchU[1], lo = scratchU[0];
  const s = hi >>> 31;
  const ex = (hi >>> 20) & 0x7ff;
  const frac = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (ex === 0) return { s, m: frac, e: -1074 };
  return { s, m: frac | (1n << 52n), e: ex - 1075 };
}
function bitLength(m: bigint): number {
  return m === 0n ? 0 : m.toString(2).length;
}
/** m * 2^e as a number, for |m| < 2^53 and e in range (exact). */
function scale(m: bigint, e: number): number {
  let v = Number(m);
  // Multiply in steps so that no intermediate overflows or underflows inexactly.
  while (e > 1000) { v *= 2 ** 1000; e -= 1000; }
  while (e < -1000) {
    const step = Math.max(e, -1000);
    // Keep v representable: shift down only as far as the value stays exact (callers pass
    // values that are representable in the target format, so each step is exact).
    v *= 2 ** step;
    e -= step;
  }
  return v * 2 ** e;
}

/**
 * Round (-1)^s * (m + sticky) * 2^e, exactly, to the format with the current rounding mode, FTZ
 * and flags (OE, UE, PE). `sticky` says the true value lies strictly between m and m + 1 units
 * of 2^e; callers give m at least p + 2 bits whenever sticky can be set.
 */
export function roundExact(s: number, m: bigint, e: number, sticky: boolean, fmt: number): number {
  if (m === 0n && !sticky) return s ? -0 : 0;
  const p = P[fmt], emin = EMIN[fmt], emax = EMAX[fmt];
  const n = bitLength(m);
  const lead = e + n - 1; // exponent of the leading bit
  // Round as if the exponent range were unbounded (for tininess after rounding), then bounded.
  const qUnb = lead - (p - 1);
  const qBnd = Math.max(lead, emin) - (p - 1);
  const rUnb = roundAt(s, m, e, sticky, qUnb);
  const tiny = rUnb.lead < emin; // after rounding, with unbounded exponent
  if (tiny && M.ftz) {
    M.fl |= UE | PE;
    return s ? -0 : 0;
  }
  // An unmasked overflow or underflow delivers no result (#XM): PE then says whether the result
  // rounded with an unbounded exponent (what the handler would see, bias-adjusted) was inexact
  // (SDM vol. 1, 4.9.1.4-5; measured on the host).
  if (rUnb.lead > emax && M.om) { M.fl |= OE | (rUnb.inexact ? PE : 0); return s ? -Infinity : Infinity; }
  if (tiny && M.um) { M.fl |= UE | (rUnb.inexact ? PE : 0); return s ? -0 : 0; }
  const r = qBnd === qUnb ? rUnb : roundAt(s, m, e, sticky, qBnd);
  if (r.inexact) M.fl |= PE;
  if (tiny && r.inexact) M.fl |= UE;
  if (r.lead > emax) {
    M.fl |= OE | PE;
    // Overflow: infinity or the largest finite value, by the rounding direction (SDM 4.9.1.4).
    const toInf = M.rc === 0 || (M.rc === 1 && s === 1) || (M.rc === 2 && s === 0);
    const v = toInf ? Infinity : MAX_FINITE[fmt];
    return s ? -v : v;
  }
  const v = scale(r.m, r.q);
  return s ? -v : v;
}

/** Round m * 2^e (+ sticky) to a multiple of 2^q with the current rounding mode. */
function roundAt(s: number, m: bigint, e: number, sticky: boolean, q: number): { m: bigint; q: number; lead: number; inexact: boolean } {
  let kept: bigint;
  let inexact: boolean;
  if (e >= q) {
    kept = m << BigInt(e - q);
    inexact = sticky;
    if (sticky) {
      // Only possible when m has fewer bits than p (callers avoid it); round as below with rem = 0.
      const up = M.rc === 1 ? s === 1 : M.rc === 2 ? s === 0 : false;
      if (up) kept += 1n;
    }
  } else {
    const sh = BigInt(q - e);
    kept = m >> sh;
    const rem = m & ((1n << sh) - 1n);
    const half = 1n << (sh - 1n);
    inexact = rem !== 0n || sticky;
    let up = false;
    if (inexact) {
      switch (M.rc) {
        case 0: up = rem > half || (rem === half && (sticky || (kept & 1n) === 1n)); break;
        case 1: up = s === 1; break;
        case 2: up = s === 0; break;
        default: up = false;
      }
    }
    if (up) kept += 1n;
  }
  const bl = bitLength(kept);
  return { m: kept, q, lead: kept === 0n ? -Infinity : q + bl - 1, inexact };
}

/** The exact sign-magnitude of a - b or a + b (finite), rounded. */
function addExact(a: number, b: number, fmt: number): number {
  const x = decompose(a), y = decompose(b);
  const e = Math.min(x.e, y.e);
  const mx = (x.m << BigInt(x.e - e)) * (x.s ? -1n : 1n);
  const my = (y.m << BigInt(y.e - e)) * (y.s ? -1n : 1n);
  const sum = mx + my;
  if (sum === 0n) {
    // Two zeros of one sign keep it; any other exact zero sum is +0, or -0 when rounding down
    // (IEEE 754 6.3).
    if (x.m === 0n && y.m === 0n && x.s === y.s) return x.s ? -0 : 0;
    return M.rc === 1 ? -0 : 0;
  }
  return roundExact(sum < 0n ? 1 : 0, sum < 0n ? -sum : sum, e, false, fmt);
}
function mulExact(a: number, b: number, fmt: number): number {
  const x = decompose(a), y = decompose(b);
  return roundExact(x.s ^ y.s, x.m * y.m, x.e + y.e, false, fmt);
}
function divExact(a: number, b: number, fmt: number): number {
  const x = decompose(a), y = decompose(b);
  const num = x.m << 128n;
  const q = num / y.m;
  const rem = num - q * y.m;
  return roundExact(x.s ^ y.s, q, x.e - y.e - 128, rem !== 0n, fmt);
}
/** floor(sqrt(n)): Newton's iteration from above (it decreases monotonically to the root). */
function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((bitLength(n) + 1) >> 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}
function sqrtExact(a: number, fmt: number): number {
  const x = decompose(a);
  let m = x.m, e = x.e;
  if (e & 1) { m <<= 1n; e -= 1; }
  const big = m << 256n;
  const r = isqrt(big);
  return roundExact(0, r, (e - 256) / 2, r * r !== big, fmt);
}

// ---------------------------------------------------------------------------------------------
// Operations on non-NaN operands (after operand()); a NaN return means "invalid": the caller
// stores the default NaN (QNaN indefinite) and IE is already raised.
// ---------------------------------------------------------------------------------------------

/** Dekker's split constant for doubles. */
const SPLIT = 134217729; // 2^27 + 1
/** The low part of a * b (the error of the rounded product), valid without overflow or underflow. */
function prodErr(a: number, b: number, p: number): number {
  let t = SPLIT * a;
  const ah = t - (t - a), al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}
/** Whether a fast-path result may be taken: round to nearest and a normal result with room. */
function fastOk(r: number, fmt: number): boolean {
  const ar = Math.abs(r);
  return M.rc === 0 && ar >= MIN_NORMAL[fmt] * 2 ** 54 && ar <= MAX_FINITE[fmt] * 2 ** -2;
}

export function add(a: number, b: number, fmt: number): number {
  if (a === Infinity || a === -Infinity || b === Infinity || b === -Infinity) {
    if (a === -b) { M.fl |= IE; return NaN; }
    return a === Infinity || a === -Infinity ? a : b;
  }
  const r = a + b;
  if (r === 0) {
    // An exact zero (a = -b, or two zeros): -0 only for two negative zeros, or rounding down
    // (IEEE 754 6.3). Never inexact: a nonzero sum of finite operands does not round to zero here.
    if (a === 0 && b === 0 && Object.is(a, b)) return a;
    return M.rc === 1 ? -0 : 0;
  }
  if (fmt === F64) {
    if (fastOk(r, fmt)) {
      const bb = r - a;
      const err = (a - (r - bb)) + (b - bb);
      if (err !== 0) M.fl |= PE;
      return r;
    }
  } else {
    const rs = Math.fround(r);
    if (fastOk(rs, fmt)) {
      const bb = r - a;
      const err = (a - (r - bb)) + (b - bb);
      if (err !== 0 || rs !== r) M.fl |= PE;
      return rs;
    }
  }
  return addExact(a, b, fmt);
}
export function sub(a: number, b: number, fmt: number): number {
  return add(a, -b, fmt);
}
export function mul(a: number, b: number, fmt: number): number {
  const ia = a === Infinity || a === -Infinity, ib = b === Infinity || b === -Infinity;
  if (ia || ib) {
    if (a === 0 || b === 0) { M.fl |= IE; return NaN; }
    return a * b;
  }
  if (a === 0 || b === 0) return a * b;
  const r = a * b;
  if (fmt === F64) {
    if (fastOk(r, fmt) && Math.abs(r) > 2 ** -900 && Math.abs(a) < 2 ** 995 && Math.abs(b) < 2 ** 995) {
      if (prodErr(a, b, r) !== 0) M.fl |= PE;
      return r;
    }
  } else {
    const rs = Math.fround(r); // the double product of two singles is exact (48 bits)
    if (fastOk(rs, fmt)) {
      if (rs !== r) M.fl |= PE;
      return rs;
    }
  }
  return mulExact(a, b, fmt);
}
export function div(a: number, b: number, fmt: number): number {
  const ia = a === Infinity || a === -Infinity, ib = b === Infinity || b === -Infinity;
  if (ia && ib) { M.fl |= IE; return NaN; }
  if (ia) return a / b;
  if (ib) return a / b;
  if (b === 0) {
    if (a === 0) { M.fl |= IE; return NaN; }
    M.fl |= ZE;
    return a / b;
  }
  if (a === 0) return a / b;
  const r = a / b;
  if (fmt === F64) {
    // Dekker's product r * b must neither overflow (|a| well below the largest double: a
    // rounded-up split of r times b could reach 2^1024) nor underflow.
    const aa = Math.abs(a);
    if (fastOk(r, fmt) && Math.abs(r) > 2 ** -900 && Math.abs(r) < 2 ** 995 && Math.abs(b) < 2 ** 995 && aa > 2 ** -900 && aa < 2 ** 995) {
      // Exact iff r * b == a exactly (the residual a - r*b is representable).
      const p = r * b;
      if (p !== a || prodErr(r, b, p) !== 0) M.fl |= PE;
      return r;
    }
  } else {
    const rs = Math.fround(r);
    if (fastOk(rs, fmt)) {
      // rs * b is a product of two singles: exact in double.
      if (rs * b !== a) M.fl |= PE;
      return rs;
    }
  }
  return divExact(a, b, fmt);
}
export function sqrt(a: number, fmt: number): number {
  if (a === 0) return a;
  if (a < 0) { M.fl |= IE; return NaN; }
  if (a === Infinity) return a;
  const r = Math.sqrt(a);
  if (fmt === F64) {
    if (M.rc === 0 && r >= 2 ** -480 && r < 2 ** 480) {
      const p = r * r;
      if (p !== a || prodErr(r, r, p) !== 0) M.fl |= PE;
      return r;
    }
  } else {
    const rs = Math.fround(r);
    if (M.rc === 0) {
      if (rs * rs !== a) M.fl |= PE; // exact in double
      return rs;
    }
  }
  return sqrtExact(a, fmt);
}

/** Convert a non-NaN value to the format (CVTSD2SS, CVTSI2SS, CVTDQ2PS...): one rounding. */
export function toFormat(a: number, fmt: number): number {
  if (a === 0 || a === Infinity || a === -Infinity) return a;
  const r = inFormat(a, fmt);
  if (r === a && !isDenormal(r, fmt)) return r;
  if (M.rc === 0 && fastOk(r, fmt)) { M.fl |= PE; return r; }
  const x = decompose(a);
  return roundExact(x.s, x.m, x.e, false, fmt);
}

/**
 * Convert to a signed 32-bit integer with the current rounding mode, or truncating; out of range,
 * NaN or infinity gives the integer indefinite 0x80000000 and IE (SDM CVTSS2SI).
 */
export function toInt32(a: number, truncate: boolean): number {
  if (a !== a || a === Infinity || a === -Infinity) { M.fl |= IE; return -0x80000000; }
  const r = roundInt(a, truncate);
  if (r > 0x7fffffff || r < -0x80000000) { M.fl |= IE; return -0x80000000; }
  if (r !== a) M.fl |= PE;
  return r | 0;
}
function roundInt(a: number, truncate: boolean): number {
  switch (truncate ? 3 : M.rc) {
    case 0: {
      const r = Math.round(a);
      // Math.round rounds halves up; IEEE rounds them to even.
      return r - a === 0.5 && (r % 2) !== 0 ? r - 1 : r;
    }
    case 1: return Math.floor(a);
    case 2: return Math.ceil(a);
    default: return Math.trunc(a);
  }
}

/** x86 comparison of two non-NaN values: -1, 0, 1. */
export function cmp(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
