/**
 * The arithmetic flags, written once for both tiers. The processor keeps the last flag-setting
 * operation (its kind, width, result and operands: the "lazy" record in the state block) and
 * computes CF and OF only when they are read. The formulas below are generic over the value type:
 * the interpreter evaluates them over numbers (`NUMBER_ALU`), the JIT over binaryen expressions
 * (jit/translate.ts), so the two cannot drift.
 */
import * as stateMod from "./state.ts";

const { ARITH_FLAGS, Fl } = stateMod;

/** Kinds of lazy-flag record: the operation that produced the result (ADC1/SBB1: with a carry in). */
export const LF = { NONE: 0, ADD: 1, ADC1: 2, SUB: 3, SBB1: 4, RES: 5 } as const;
/** Which arithmetic flags a record leaves pending: all, all but CF (INC, DEC), or those of the result alone. */
export const LAZY_ALL = ARITH_FLAGS;
export const LAZY_NO_CF = ARITH_FLAGS & ~Fl.CF;
export const LAZY_RES = Fl.ZF | Fl.SF | Fl.PF;

/** EFLAGS bits software can change (SDM 3.4.3: up to ID, without the reserved 1, 3, 5, 15 and 22+). */
export const EFLAGS_WRITABLE = 0x3f7fd7;
/** Reserved EFLAGS bits that read as zero. */
export const EFLAGS_RESERVED_ZERO = 0x8 | 0x20 | 0x8000;
/** An EFLAGS image as the processor stores it: bit 1 set, the reserved bits clear. */
export function eflagsImage(v: number): number {
  return (v | Fl.FIXED1) & ~EFLAGS_RESERVED_ZERO & EFLAGS_WRITABLE;
}

/** The operations the flag formulas need, over some value type (numbers, wasm expressions). */
export interface FlagAlu<V> {
  /** 1 when a < b as unsigned numbers, else 0. */
  ltU(a: V, b: V): V;
  /** 1 when a <= b as unsigned numbers, else 0. */
  leU(a: V, b: V): V;
  and(a: V, b: V): V;
  xor(a: V, b: V): V;
  zero(): V;
}

/**
 * CF of a record of kind `kind`, from its result and operands masked to the operation's width: an
 * add carried when the result is below the destination (at or below it, with a carry in); a
 * subtract borrowed when the destination is below the source (at or below it, with a borrow in).
 */
export function carryOf<V>(alu: FlagAlu<V>, kind: number, res: V, dst: V, src: V): V {
  switch (kind) {
    case LF.ADD: return alu.ltU(res, dst);
    case LF.ADC1: return alu.leU(res, dst);
    case LF.SUB: return alu.ltU(dst, src);
    case LF.SBB1: return alu.leU(dst, src);
  }
  return alu.zero();
}

/**
 * The word whose sign bit (bit width-1) is OF: an add overflowed when both operands' signs differ
 * from the result's; a subtract when the operands' signs differ and the result's differs from the
 * destination's.
 */
export function overflowWord<V>(alu: FlagAlu<V>, kind: number, res: V, dst: V, src: V): V {
  if (kind === LF.ADD || kind === LF.ADC1) return alu.and(alu.xor(dst, res), alu.xor(src, res));
  if (kind === LF.SUB || kind === LF.SBB1) return alu.and(alu.xor(dst, src), alu.xor(dst, res));
  return alu.zero();
}

/** The kinds whose CF and OF come from the formulas above (for code that selects among them at run time). */
export const CARRY_KINDS = [LF.ADD, LF.ADC1, LF.SUB, LF.SBB1] as const;
/** The kinds that share one OF formula (a carry in does not change how overflow is read). */
export const OVERFLOW_CLASSES = [[LF.ADD, LF.ADC1], [LF.SUB, LF.SBB1]] as const;

/** The formulas over 32-bit numbers: the interpreter's instance. */
export const NUMBER_ALU: FlagAlu<number> = {
  ltU: (a, b) => (a >>> 0) < (b >>> 0) ? 1 : 0,
  leU: (a, b) => (a >>> 0) <= (b >>> 0) ? 1 : 0,
  and: (a, b) => a & b,
  xor: (a, b) => a ^ b,
  zero: () => 0,
};
