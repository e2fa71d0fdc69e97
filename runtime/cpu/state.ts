/**
 * Where the processor keeps its architectural state: one block in the VM's `WebAssembly.Memory`,
 * read by the interpreter through typed-array views and, later, by JIT code through direct loads.
 *
 * Offsets are in 32-bit words (byte offset / 4). Every register slot is 64 bits wide (two words,
 * little-endian) so that long mode is an addition, not a redesign; 32-bit code reads and writes
 * the low word.
 */

/** General-purpose register numbers, in the SDM's ModRM order. */
export const Gpr = {
  RAX: 0, RCX: 1, RDX: 2, RBX: 3, RSP: 4, RBP: 5, RSI: 6, RDI: 7,
  R8: 8, R9: 9, R10: 10, R11: 11, R12: 12, R13: 13, R14: 14, R15: 15,
} as const;

/** Segment register numbers, in the SDM's sreg encoding order, then LDTR and TR. */
export const Seg = { ES: 0, CS: 1, SS: 2, DS: 3, FS: 4, GS: 5, LDTR: 6, TR: 7 } as const;
export const SEG_NAMES = ["es", "cs", "ss", "ds", "fs", "gs", "ldt", "tr"] as const;

/** Word offsets of each field in the state block. */
export const St = {
  GPR: 0, // 16 registers x 2 words
  RIP: 32,
  RFLAGS: 34,
  CR0: 36,
  CR2: 38,
  CR3: 40,
  CR4: 42,
  CR8: 44,
  EFER: 46,
  DR: 48, // DR0..DR7, 2 words each
  /** 8 segment registers x 8 words: selector, access rights (VMX format), limit, -, base lo, base hi, -, - */
  SEG: 64,
  GDTR_BASE: 128,
  GDTR_LIMIT: 130,
  IDTR_BASE: 132,
  IDTR_LIMIT: 134,
  /** Lazy flags: the last flag-setting operation, its result and operands (see flags.ts). */
  LAZY_OP: 136,
  LAZY_RES: 137,
  LAZY_DST: 138,
  LAZY_SRC: 139,
  LAZY_MASK: 140,
  /** Interruptibility: 1 = blocking by STI, 2 = blocking by MOV SS (SDM 24.4.2). */
  INTERRUPTIBILITY: 141,
  /** Activity state: 0 active, 1 HLT (SDM 24.4.2). */
  ACTIVITY: 142,
  CPL: 143,
  /** Retired-instruction count, a float64 at word 144 (byte 576). */
  ICOUNT_F64: 72, // index in a Float64Array view
  SYSENTER_CS: 146,
  SYSENTER_ESP: 148,
  SYSENTER_EIP: 150,
  TSC_AUX: 152,
  PAT: 154,
} as const;

/** Words per segment register in the state block. */
export const SEG_WORDS = 8;
export const SEG_SEL = 0;
export const SEG_ATTR = 1;
export const SEG_LIMIT = 2;
export const SEG_BASE = 4;

/** Size of one vCPU's state area in the VM memory: the state block, then the TLB arrays. */
export const STATE_BYTES = 0x1000;
export const TLB_ENTRIES = 4096;
/** Byte offsets, relative to the vCPU area, of the software TLB (see cpu.ts). */
export const TLB_TAG_R = 0x1000;
export const TLB_TAG_W = TLB_TAG_R + TLB_ENTRIES * 4;
export const TLB_HOST = TLB_TAG_W + TLB_ENTRIES * 4;
export const VCPU_AREA_BYTES = TLB_HOST + TLB_ENTRIES * 4;

/** EFLAGS bits (SDM 3.4.3). */
export const Fl = {
  CF: 1 << 0, FIXED1: 1 << 1, PF: 1 << 2, AF: 1 << 4, ZF: 1 << 6, SF: 1 << 7, TF: 1 << 8, IF: 1 << 9,
  DF: 1 << 10, OF: 1 << 11, IOPL: 3 << 12, NT: 1 << 14, RF: 1 << 16, VM: 1 << 17, AC: 1 << 18,
  VIF: 1 << 19, VIP: 1 << 20, ID: 1 << 21,
} as const;
export const ARITH_FLAGS = Fl.CF | Fl.PF | Fl.AF | Fl.ZF | Fl.SF | Fl.OF;

/** CR0 and CR4 bits used by the processor. */
export const Cr0 = { PE: 1, MP: 2, EM: 4, TS: 8, ET: 16, NE: 32, WP: 1 << 16, AM: 1 << 18, NW: 1 << 29, CD: 1 << 30, PG: 1 << 31 } as const;
export const Cr4 = { VME: 1, PVI: 2, TSD: 4, DE: 8, PSE: 16, PAE: 32, MCE: 64, PGE: 128, VMXE: 1 << 13 } as const;

/** Segment access rights in the VMX guest-state format (SDM 24.4.1, table 24-2). */
export const Ar = {
  TYPE_MASK: 0xf, ACCESSED: 1, WRITABLE: 2, READABLE: 2, EXPAND_DOWN: 4, CONFORMING: 4, CODE: 8,
  S: 1 << 4, DPL_SHIFT: 5, P: 1 << 7, AVL: 1 << 12, L: 1 << 13, DB: 1 << 14, G: 1 << 15, UNUSABLE: 1 << 16,
} as const;

/** Exception vectors (SDM 6.3.1). */
export const Vec = {
  DE: 0, DB: 1, NMI: 2, BP: 3, OF: 4, BR: 5, UD: 6, NM: 7, DF: 8, TS: 10, NP: 11, SS: 12, GP: 13, PF: 14,
  MF: 16, AC: 17, MC: 18, XM: 19,
} as const;
export const VECTOR_NAMES: Record<number, string> = {
  0: "#DE", 1: "#DB", 2: "NMI", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF", 10: "#TS",
  11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 18: "#MC", 19: "#XM",
};
