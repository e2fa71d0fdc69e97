/**
 * SSE state in the vCPU state block (the shared layout of the brief, runtime/cpu/state.ts
 * STATE_BYTES): MXCSR and XMM0..XMM15, and the MXCSR bits (SDM vol. 1, 10.2.3). The x87 fields
 * that FXSAVE/FXRSTOR and the MMX instructions reach are named here by byte offset too; the x87's
 * own constants live in fpu_state.ts.
 *
 * It imports only fpu_state.ts (which imports nothing), so `const { X } = sseStateMod` in another
 * module never meets a module that is still loading (DESIGN-NOTES.md, "Imported bindings are not
 * constants").
 */
import * as fpuStateMod from "./fpu_state.ts";

const { Fpu } = fpuStateMod;

/**
 * Byte offsets in the state block: the SSE registers, and the x87 fields FXSAVE/FXRSTOR and the MMX
 * instructions reach, taken from fpu_state.ts so the layout is written once.
 */
export const SseOff = {
  /** x87 control word (u16), status word (u16, TOP in bits 11-13), full tag word (u16, 2 bits per physical register). */
  FCW: Fpu.FCW,
  FSW: Fpu.FSW,
  FTW: Fpu.FTW,
  FOP: Fpu.FOP,
  FIP: Fpu.FIP,
  FCS: Fpu.FCS,
  FDP: Fpu.FDP,
  FDS: Fpu.FDS,
  /** Physical x87 register R_i at FPR + 16*i: bytes 0-7 significand, 8-9 sign and exponent; MMi is bytes 0-7. */
  FPR: Fpu.REGS,
  MXCSR: 0x4a0,
  /** XMM_i at XMM + 16*i. */
  XMM: 0x500,
} as const;

/** MXCSR bits (SDM vol. 1, figure 10-3). */
export const Mx = {
  IE: 1 << 0, DE: 1 << 1, ZE: 1 << 2, OE: 1 << 3, UE: 1 << 4, PE: 1 << 5,
  DAZ: 1 << 6,
  IM: 1 << 7, DM: 1 << 8, ZM: 1 << 9, OM: 1 << 10, UM: 1 << 11, PM: 1 << 12,
  RC_SHIFT: 13, RC: 3 << 13,
  FZ: 1 << 15,
} as const;
/** The six exception flags; each mask bit is its flag shifted left by 7. */
export const MX_FLAGS = 0x3f;
/** MXCSR after reset and FNINIT-independent: all exceptions masked, round to nearest (SDM 10.2.3). */
export const MXCSR_DEFAULT = 0x1f80;
/** Bits LDMXCSR and FXRSTOR accept (a processor with DAZ: FXSAVE stores this as MXCSR_MASK); others #GP(0). */
export const MXCSR_MASK = 0xffff;

/** Rounding control values (MXCSR.RC and the x87's FCW.RC). */
export const Rc = { NEAREST: 0, DOWN: 1, UP: 2, ZERO: 3 } as const;

/** CR4 bits for SSE (SDM vol. 3, 2.5). */
export const Cr4Sse = { OSFXSR: 1 << 9, OSXMMEXCPT: 1 << 10 } as const;

/** CLFLUSH line size in bytes (CPUID.1:EBX[15:8] is this / 8). */
export const CLFLUSH_LINE = 64;
