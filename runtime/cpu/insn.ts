/**
 * A decoded instruction. The decoder fills it once; the interpreter executes it many times from the
 * block cache. Operands are normalised so semantics see "destination" and "source" without caring
 * which ModRM field they came from (KVM emulate.c's decoded operands, QEMU's X86DecodedInsn).
 */
import type { Cpu } from "./cpu.ts";

export type Exec = (cpu: Cpu, i: Insn) => void;

/** Operand kinds after decoding. */
export const OpKind = { NONE: 0, REG: 1, MEM: 2, IMM: 3 } as const;

export class Insn {
  /** Mnemonic, for traces and tests. */
  name = "";
  exec: Exec = () => {};
  /** Length in bytes, prefixes included. */
  len = 0;
  /** Offset of the next instruction from the block's first instruction. */
  nextOff = 0;
  /** Position in its block: the instructions before it in the block have retired when it runs. */
  pos = 0;
  /** Operand size in bytes for "v" operands (2 or 4), and address size (2 or 4). */
  osz = 4;
  asz = 4;
  /** Size in bytes of the main operand (1 for byte forms, else osz). */
  size = 4;
  /** Segment for memory operands: the override, or DS/SS by the base register. */
  seg = 3;
  /** True when a segment-override prefix was present (string sources honour it). */
  segOverride = false;
  /** 0 none, 1 REP/REPE (F3), 2 REPNE (F2). */
  rep = 0;
  lock = false;
  /** The opcode (0x0F-prefixed opcodes as 0x100 | byte). */
  opcode = 0;
  /** ModRM fields; mod = -1 when the instruction has no ModRM. */
  mod = -1;
  reg = 0;
  rm = 0;
  /** Effective-address parts: base and index register numbers (-1 none), scale shift, displacement. */
  base = -1;
  index = -1;
  scale = 0;
  disp = 0;
  /** Destination and source operands: kind, and for registers a state-view index (see regIndex). */
  dk = 0;
  dr = 0;
  sk = 0;
  sr = 0;
  /** Immediates: imm (sign-extended per the operand notation), imm2 (ENTER's level, far pointer selector). */
  imm = 0;
  imm2 = 0;
  /** Semantic sub-operation selected by the table (ALU op, condition code, shift kind ...). */
  sub = 0;
  /** Ends a block: control transfers, exits, mode changes. */
  terminal = false;
  /** Raw bytes, kept for traces and #UD exit detail. */
  bytes: number[] = [];
}

/**
 * The state-view index of a register operand: a byte index for 8-bit registers (AL..BH in ModRM
 * order), a Uint16Array index for 16-bit ones, an Int32Array index for 32-bit ones.
 */
export function regIndex(reg: number, size: number): number {
  if (size === 1) return reg < 4 ? reg * 8 : (reg - 4) * 8 + 1;
  if (size === 2) return reg * 4;
  return reg * 2;
}
