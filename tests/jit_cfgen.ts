/**
 * A generator of random control flow for differential tests of the JIT (issue 15): straight-line
 * filler between branches whose targets are chosen to hit the shapes that broke or could break
 * region building and structuring:
 *
 * - a Jcc/JMP to the next instruction (taken and fall-through equal: binaryen's Relooper asserted),
 *   and to itself (a one-instruction loop that spins until the budget);
 * - into the middle of an instruction (the filler's immediates are bytes of one-byte instructions
 *   and short jumps, so a jump into them decodes another stream that overlaps the first);
 * - to another page (the code starts 256 bytes before a page boundary and spans two to four pages);
 * - both targets of a Jcc on another page at the same address, calls forward and back, RET, LOOP,
 *   loops entered at two places (irreducible graphs), and stores into the code's own pages (bytes
 *   next to code, and now and then an immediate of an instruction that runs later).
 *
 * Programs need not end: every run has a budget, and the tiers must agree on the state wherever it
 * stops (an exit, a fault ending in shutdown, or the budget). Same seed, same program.
 */
import { rng } from "./jit_gen.ts";

/** Load address: 256 bytes before a page boundary, so the first page's code falls into the next. */
export const CF_LOAD = 0x100f00;
export const CF_PORT = 0x99;

export interface CfProgram {
  code: Uint8Array;
  regs: Record<string, number>;
  budget: number;
}

/** One-byte instructions and short-jump opcodes that the filler's immediates are made of. */
const PALETTE = [
  0x40, 0x41, 0x42, 0x43, 0x46, 0x47, // inc eax..edi (not esp)
  0x48, 0x4a, 0x4b, 0x4e, 0x4f, // dec
  0x90, 0x90, 0xf8, 0xf9, 0xf5, // nop, clc, stc, cmc
  0x74, 0x75, 0x72, 0x73, 0x7c, 0x7f, 0xeb, 0x00, 0x01, 0x02, 0xfe, 0xfc, // short jumps and small displacements
  0x3c, 0xa8, 0x04, 0x2c, // cmp al/test al/add al/sub al, imm8
];

/** Generate program number `seed` (about `size` slots: instructions or branches). */
export function genCfProgram(seed: number, size = 60): CfProgram {
  const r = rng(seed ^ 0x5bd1e995);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const pal = () => pick(PALETTE);
  const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

  /** A slot: its bytes, and for a branch the byte offset of its displacement, its width and its target kind. */
  interface Slot {
    bytes: number[];
    disp?: { at: number; width: 1 | 4; target: Target };
  }
  type Target =
    | { kind: "next" } | { kind: "self" } | { kind: "slot"; slot: number } | { kind: "byte"; off: number };

  const n = Math.max(4, size + int(size));
  const slots: Slot[] = [];
  const target = (): Target => {
    const k = int(10);
    if (k < 2) return { kind: "next" };
    if (k < 3) return { kind: "self" };
    if (k < 5) return { kind: "byte", off: -1 }; // filled once the code's length is known
    return { kind: "slot", slot: int(n + 1) }; // slot n is the final HLT
  };
  const filler = (): number[] => {
    switch (int(14)) {
      case 0: return [0x40 + pick([0, 2, 3, 6, 7])]; // inc
      case 1: return [0x48 + pick([0, 1, 2, 3, 6])]; // dec (ecx too)
      case 2: return [pick([0x01, 0x29, 0x31, 0x21, 0x09, 0x39]), 0xc0 | (pick([0, 2, 3, 6]) << 3) | pick([0, 2, 3, 6, 7])]; // alu r, r
      case 3: return [0x83, 0xf8 | pick([0, 2, 3]), int(256)]; // cmp r, imm8
      case 4: return [0xa8, int(256)]; // test al, imm8
      case 5: return [0x05, pal(), pal(), pal(), pal()]; // add eax, imm32 made of instructions
      case 6: return [0xba, pal(), pal(), pal(), pal()]; // mov edx, imm32 made of instructions
      case 7: return [0xd1, 0xc0 | pick([0, 1, 5, 7]) << 3 | pick([0, 2, 3])]; // rol/ror/shr/sar r, 1
      case 8: return [0xe6, CF_PORT]; // out CF_PORT, al
      case 9: return [0x88, 0x83, ...le32(0x200000 + int(64))]; // mov [ebx + data], al (ebx is 0)
      case 10: return [0x89, 0x05, ...le32(CF_LOAD - 64 + int(48))]; // mov [bytes before the code], eax: a store to a code page
      case 11: return [0xc6, 0x05, ...le32(0x1000_0000), 0x90]; // placeholder: a store into the code (below)
      case 12: return [0x0f, 0x4f, 0xc2]; // cmovg eax, edx
      default: return [0x90];
    }
  };
  const storesIntoCode: number[] = [];
  for (let k = 0; k < n; k++) {
    const c = int(20);
    if (c < 9) {
      const f = filler();
      if (f[0] === 0xc6) storesIntoCode.push(k);
      slots.push({ bytes: f });
    } else if (c < 13) { // Jcc, short or near
      const cc = int(16);
      if (int(2)) slots.push({ bytes: [0x70 + cc, 0], disp: { at: 1, width: 1, target: target() } });
      else slots.push({ bytes: [0x0f, 0x80 + cc, 0, 0, 0, 0], disp: { at: 2, width: 4, target: target() } });
    } else if (c < 15) { // JMP
      if (int(2)) slots.push({ bytes: [0xeb, 0], disp: { at: 1, width: 1, target: target() } });
      else slots.push({ bytes: [0xe9, 0, 0, 0, 0], disp: { at: 1, width: 4, target: target() } });
    } else if (c < 16) { // CALL
      slots.push({ bytes: [0xe8, 0, 0, 0, 0], disp: { at: 1, width: 4, target: target() } });
    } else if (c < 17) { // RET, or LOOP
      if (int(3) === 0) slots.push({ bytes: [0xc3] });
      else slots.push({ bytes: [0xe2, 0], disp: { at: 1, width: 1, target: target() } });
    } else if (c < 18 && int(8) === 0) { // jump over 0.5-2.5 KiB of never-run bytes: the code spans more pages
      const gap = 512 + int(2048);
      slots.push({ bytes: [0xe9, ...le32(gap), ...Array.from({ length: gap }, pal)] });
    } else if (c < 18) { // dec ecx; jnz back to an earlier slot (a counted loop)
      slots.push({ bytes: [0x49, 0x75, 0], disp: { at: 2, width: 1, target: { kind: "slot", slot: int(k + 1) } } });
    } else {
      slots.push({ bytes: [0x90] });
    }
  }
  slots.push({ bytes: [0xf4] }); // hlt
  slots.push({ bytes: [0xeb, 0xfd] }); // jmp back to the hlt

  // Lay out, then fill in displacements (a short one that cannot reach becomes a jump to next).
  const offs: number[] = [];
  let len = 0;
  for (const s of slots) { offs.push(len); len += s.bytes.length; }
  const code: number[] = [];
  for (let k = 0; k < slots.length; k++) {
    const s = slots[k];
    const bytes = [...s.bytes];
    if (s.disp !== undefined) {
      const t = s.disp.target, end = offs[k] + bytes.length;
      let to: number;
      if (t.kind === "next") to = end;
      else if (t.kind === "self") to = offs[k];
      else if (t.kind === "slot") to = offs[Math.min(t.slot, slots.length - 1)];
      else to = int(len);
      let d = to - end;
      if (s.disp.width === 1 && (d < -128 || d > 127)) d = 0;
      if (s.disp.width === 1) bytes[s.disp.at] = d & 0xff;
      else bytes.splice(s.disp.at, 4, ...le32(d));
    }
    code.push(...bytes);
  }
  // Stores into the code: the byte written is an immediate of a later filler, or a byte of a NOP
  // slot (turned into another one-byte instruction).
  for (const k of storesIntoCode) {
    const at = offs[k] + 2;
    const victim = int(len);
    const v = CF_LOAD + victim;
    code.splice(at, 4, ...le32(v));
    code[at + 4] = pal();
  }
  const regs = {
    rax: int(2 ** 32), rbx: 0, rcx: 1 + int(40), rdx: int(2 ** 32), rsi: int(2 ** 32), rdi: int(2 ** 32),
    rbp: int(2 ** 32), rsp: 0x80000, rip: CF_LOAD, rflags: 2 | (int(2) ? 1 : 0) | (int(2) ? 0x40 : 0),
  };
  return { code: new Uint8Array(code), regs, budget: 2_000 + int(40_000) };
}
