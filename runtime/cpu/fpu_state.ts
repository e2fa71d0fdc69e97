/**
 * Where the x87 FPU (and the MMX registers it shares) lives in the vCPU state block
 * (state.ts, STATE_BYTES), and the bits of its control, status and tag words (SDM vol. 1, 8.1).
 * Byte offsets are relative to the state block. The SSE state (MXCSR at 0x4A0, XMM0–15 at 0x500)
 * is described in `sse_state.ts`.
 *
 * The physical registers R0–R7 are 16 bytes apart: bytes 0–7 hold the 64-bit significand
 * (little-endian, bit 63 the explicit integer bit), bytes 8–9 the sign (bit 15) and the 15-bit
 * biased exponent. ST(i) is R((TOP + i) mod 8). MMi is bytes 0–7 of Ri (SDM vol. 1, 9.5): an MMX
 * write sets bytes 8–9 to 0xFFFF, TOP to 0 and every tag to valid; EMMS sets every tag to empty.
 *
 * This module imports nothing, so other modules may take its tables module-locally
 * (`const { Fpu, Fsw } = fpuStateMod;`, see DESIGN-NOTES.md on V8 and imported bindings).
 */

/** Byte offsets in the state block. */
export const Fpu = {
  FCW: 0x400,
  FSW: 0x402,
  /** The full tag word: two bits per physical register (R0 in bits 0–1), see `Tag`. */
  FTW: 0x404,
  /** The last non-control instruction's opcode: (first byte & 7) << 8 | ModRM (11 bits). */
  FOP: 0x406,
  FIP: 0x408,
  FCS: 0x40c,
  FDP: 0x410,
  FDS: 0x414,
  /** Physical register R0; Ri is at REGS + 16 * i. */
  REGS: 0x420,
  REG_STRIDE: 16,
} as const;

/** FPU status word bits (SDM vol. 1, 8.1.3). */
export const Fsw = {
  IE: 1 << 0, DE: 1 << 1, ZE: 1 << 2, OE: 1 << 3, UE: 1 << 4, PE: 1 << 5,
  /** Stack fault (with IE; C1 tells overflow 1 from underflow 0). */
  SF: 1 << 6,
  /** Error summary: some unmasked exception flag is set. */
  ES: 1 << 7,
  C0: 1 << 8, C1: 1 << 9, C2: 1 << 10,
  TOP_SHIFT: 11, TOP_MASK: 7 << 11,
  C3: 1 << 14,
  /** Busy: mirrors ES on the 387 and later. */
  B: 1 << 15,
  /** The six exception flags. */
  EXC: 0x3f,
  /** C0–C3. */
  CC: (1 << 8) | (1 << 9) | (1 << 10) | (1 << 14),
} as const;

/** FPU control word fields (SDM vol. 1, 8.1.5). */
export const Fcw = {
  IM: 1 << 0, DM: 1 << 1, ZM: 1 << 2, OM: 1 << 3, UM: 1 << 4, PM: 1 << 5,
  /** The six exception masks. */
  MASKS: 0x3f,
  PC_SHIFT: 8, PC_MASK: 3 << 8,
  RC_SHIFT: 10, RC_MASK: 3 << 10,
  /** Infinity control: a 287 bit, kept but without effect on the 387 and later. */
  X: 1 << 12,
  /** FNINIT's value: all exceptions masked, 64-bit precision, round to nearest. */
  INIT: 0x037f,
} as const;

/** Rounding control (FCW.RC, MXCSR.RC): SDM vol. 1, table 4-8. */
export const Rc = { NEAREST: 0, DOWN: 1, UP: 2, ZERO: 3 } as const;

/** Precision control (FCW.PC): 00 single (24 bits), 10 double (53), 11 extended (64); 01 reserved. */
export const Pc = { SINGLE: 0, RESERVED: 1, DOUBLE: 2, EXTENDED: 3 } as const;

/** Two-bit tags (SDM vol. 1, 8.1.7). */
export const Tag = { VALID: 0, ZERO: 1, SPECIAL: 2, EMPTY: 3 } as const;

/** The sign-and-exponent word an MMX write leaves in a register (SDM vol. 1, 9.5.1). */
export const MMX_EXP_WORD = 0xffff;
