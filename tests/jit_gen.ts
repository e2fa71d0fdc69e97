/**
 * A generator of random valid 32-bit guest programs for differential tests of the JIT against the
 * interpreter: ALU ops of every width and operand form, INC/DEC/NOT/NEG/TEST, shifts and rotates
 * (counts 0..33, immediate, 1 and CL), IMUL, MUL/IMUL/DIV/IDIV of every size (mostly guarded), MOVZX/MOVSX, LEA,
 * XCHG, CMOVcc/SETcc on every condition, CBW family, PUSH/POP, PUSHF (flags recorded), flag ops,
 * STOS/MOVS/LODS without REP in both directions, forward Jcc, bounded loops, calls, and OUTs to a
 * recording port. Same seed, same program.
 *
 * Register use: EBX holds the data area's base and ESP the stack; EBP counts loops; EAX, ECX, EDX,
 * ESI and EDI are free. Memory operands stay inside the data area ([EBX+disp8] and [disp32]).
 */

/** Load address, data area and stack of generated programs (protected mode, flat segments). */
export const GEN_LOAD = 0x100000;
export const GEN_DATA = 0x200000;
export const GEN_STACK = 0x300000;
export const GEN_PORT = 0x99;

/** A small seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FREE = [0, 1, 2, 6, 7];
const FREE8 = [0, 1, 2, 4, 5, 6]; // AL CL DL AH CH DH

export interface GenProgram {
  code: Uint8Array;
  regs: Record<string, number>;
}

/** Generate program number `seed` split into main-line pieces (see SplitProgram). */
export function splitProgram(seed: number, size = 40): SplitProgram {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const imm32 = () => [int(256), int(256), int(256), int(256)];
  const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  const modrm = (mod: number, reg: number, rm: number) => (mod << 6) | (reg << 3) | rm;
  /** A ModRM r/m operand: a register (from `regs`) or memory in the data area; returns its bytes. */
  const rmOp = (reg: number, regs: number[], memOk = true): number[] => {
    const k = int(3);
    if (!memOk || k === 0) return [modrm(3, reg, pick(regs))];
    if (k === 1) return [modrm(1, reg, 3), int(124)]; // [ebx+disp8]
    return [modrm(0, reg, 5), ...le32(GEN_DATA + 128 + int(120))]; // [disp32]
  };
  const sizePrefix = (): { pre: number[]; w: 0 | 1; regs: number[] } => {
    const s = int(3);
    if (s === 0) return { pre: [], w: 0, regs: FREE8 };
    if (s === 1) return { pre: [0x66], w: 1, regs: FREE };
    return { pre: [], w: 1, regs: FREE };
  };

  /** One straight-line instruction (no control flow). */
  const simple = (): number[] => {
    const k = int(26);
    const { pre, w, regs } = sizePrefix();
    const immFor = () => (pre.length ? [int(256), int(256)] : w ? imm32() : [int(256)]);
    switch (k) {
      case 0: case 1: case 2: { // ALU Ev,Gv / Gv,Ev
        const a = int(8), dir = int(2);
        return [...pre, a * 8 + dir * 2 + w, ...rmOp(pick(regs), regs)];
      }
      case 3: case 4: { // ALU Ev,imm
        const a = int(8);
        if (w && int(2)) return [...pre, 0x83, ...rmOp(a, regs), int(256)];
        return [...pre, 0x80 + w, ...rmOp(a, regs), ...immFor()];
      }
      case 5: return [...pre, int(8) * 8 + 4 + w, ...immFor()]; // ALU AL/eAX, imm
      case 6: { // INC/DEC
        if (w && int(2)) return [...pre, (int(2) ? 0x40 : 0x48) + pick(FREE)];
        return [...pre, 0xfe + w, ...rmOp(int(2), regs)];
      }
      case 7: return [...pre, 0xf6 + w, ...rmOp(2 + int(2), regs)]; // NOT/NEG
      case 8: { // TEST
        const f = int(3);
        if (f === 0) return [...pre, 0x84 + w, ...rmOp(pick(regs), regs)];
        if (f === 1) return [...pre, 0xa8 + w, ...immFor()];
        return [...pre, 0xf6 + w, ...rmOp(0, regs), ...immFor()];
      }
      case 9: case 10: { // shifts and rotates
        const sub = int(8), f = int(3);
        if (f === 0) return [...pre, 0xc0 + w, ...rmOp(sub, regs), int(34)];
        if (f === 1) return [...pre, 0xd0 + w, ...rmOp(sub, regs)];
        return [...pre, 0xd2 + w, ...rmOp(sub, regs)];
      }
      case 11: { // IMUL
        const p = int(2) ? [0x66] : [];
        const f = int(3);
        if (f === 0) return [...p, 0x0f, 0xaf, ...rmOp(pick(FREE), FREE)];
        if (f === 1) return [...p, 0x6b, ...rmOp(pick(FREE), FREE), int(256)];
        return [...p, 0x69, ...rmOp(pick(FREE), FREE), ...(p.length ? [int(256), int(256)] : imm32())];
      }
      case 12: { // MOVZX/MOVSX
        const p = int(2) ? [0x66] : [];
        const op = pick([0xb6, 0xb7, 0xbe, 0xbf]);
        return [...p, 0x0f, op, ...rmOp(pick(FREE), op & 1 ? FREE : FREE8)];
      }
      case 13: { // LEA
        if (int(2)) return [0x8d, modrm(1, pick(FREE), 3), int(256)];
        return [0x8d, modrm(2, pick(FREE), 4), (int(4) << 6) | (pick(FREE) << 3) | pick(FREE), ...imm32()];
      }
      case 14: { // XCHG
        if (int(3) === 0) return [0x90 + pick(FREE)];
        return [...pre, 0x86 + w, ...rmOp(pick(regs), regs)];
      }
      case 15: return [...(int(2) ? [0x66] : []), 0x0f, 0x40 + int(16), ...rmOp(pick(FREE), FREE)]; // CMOVcc
      case 16: return [0x0f, 0x90 + int(16), ...rmOp(0, FREE8)]; // SETcc
      case 17: return [...(int(2) ? [0x66] : []), 0x98 + int(2)]; // CBW/CWDE/CWD/CDQ
      case 18: { // MOV
        const f = int(4);
        if (f === 0) return [...pre, 0x88 + w + 2 * int(2), ...rmOp(pick(regs), regs)];
        if (f === 1) return w ? [...pre, 0xb8 + pick(FREE), ...immFor()] : [0xb0 + pick(FREE8), int(256)];
        if (f === 2) return [...pre, 0xc6 + w, ...rmOp(0, regs), ...immFor()];
        return [0x89, modrm(1, pick(FREE), 3), int(124)];
      }
      case 19: { // PUSH/POP pair
        const f = int(3);
        const push = f === 0 ? [0x50 + pick(FREE)] : f === 1 ? [0x6a, int(256)] : [0x68, ...imm32()];
        return [...push, 0x58 + pick(FREE)];
      }
      case 20: return [0x9c, 0x58 + pick(FREE)]; // PUSHF; POP r: flags into a register
      case 21: return [pick([0xf8, 0xf9, 0xf5])]; // CLC/STC/CMC
      case 22: { // MUL/IMUL (one operand, every size and form) or a guarded DIV/IDIV of every size
        const f = int(8);
        if (f < 3) return [...pre, 0xf6 + w, ...rmOp(4 + int(2), regs)];
        if (f === 3) return [0x31, 0xd2, 0x83, 0xc9, 0x01, 0xf7, 0xf1]; // xor edx,edx; or ecx,1; div ecx
        if (f === 4) return [0x99, 0x83, 0xc9, 0x01, 0xf7, 0xf9]; // cdq; or ecx,1; idiv ecx
        if (f === 5) return int(2) ? [0x66, 0x31, 0xd2, 0x66, 0x83, 0xc9, 0x01, 0x66, 0xf7, 0xf1] // xor dx,dx; or cx,1; div cx
          : [0x66, 0x99, 0x66, 0x83, 0xc9, 0x01, 0x66, 0xf7, 0xf9]; // cwd; or cx,1; idiv cx
        if (f === 6) return int(2) ? [0xb4, 0x00, 0x80, 0xc9, 0x80, 0xf6, 0xf1] // mov ah,0; or cl,0x80; div cl
          : [0x66, 0x98, 0x80, 0xc9, 0x01, 0xf6, 0xf9]; // cbw; or cl,1; idiv cl
        return [...pre, 0xf6 + w, ...rmOp(6 + int(2), regs)]; // unguarded: #DE now and then
      }
      case 23: case 24: { // STOS/MOVS/LODS without REP, (E)SI/(E)DI pointed into the data area, either direction
        const op = pick([0xaa, 0xab, 0xa4, 0xa5, 0xac, 0xad]);
        const p = (op & 1) && int(2) ? [0x66] : [];
        const std = int(3) === 0;
        return [
          0x8d, modrm(1, 6, 3), 8 + int(100), // lea esi, [ebx+disp8]
          0x8d, modrm(1, 7, 3), 8 + int(100), // lea edi, [ebx+disp8]
          ...(std ? [0xfd] : []), ...p, op, ...(std ? [0xfc] : []),
        ];
      }
      default: return [0xe7, GEN_PORT]; // OUT imm8, EAX
    }
  };

  const head: number[] = [];
  head.push(0xe9, 0, 0, 0, 0); // jmp main (patched)
  const subs: number[] = [];
  const nSubs = 1 + int(3);
  for (let s = 0; s < nSubs; s++) {
    subs.push(GEN_LOAD + head.length);
    const n = 1 + int(6);
    for (let k = 0; k < n; k++) head.push(...simple());
    head.push(0xc3);
  }
  const main = head.length;
  head.splice(1, 4, ...le32(main - 5));
  // The main line as pieces, each its bytes at a given address (a CALL is relative), so that a
  // shrinker can drop pieces and rebuild.
  const pieces: ((at: number) => number[])[] = [];
  for (let k = 0; k < size; k++) {
    const f = int(10);
    if (f === 0) {
      // forward Jcc over a few instructions
      const body: number[] = [];
      const n = 1 + int(4);
      for (let j = 0; j < n; j++) body.push(...simple());
      const bytes = [0x70 + int(16), body.length, ...body];
      pieces.push(() => bytes);
    } else if (f === 1) {
      // bounded loop on EBP
      const body: number[] = [];
      const n = 1 + int(6);
      for (let j = 0; j < n; j++) body.push(...simple());
      let bytes = [0xbd, ...le32(2 + int(20))];
      const top = bytes.length;
      bytes.push(...body, 0x4d); // dec ebp
      bytes.push(0x75, (top - (bytes.length + 2)) & 0xff);
      if (bytes.length - top > 120) bytes = []; // too long for rel8: drop the loop
      pieces.push(() => bytes);
    } else if (f === 2) {
      const target = pick(subs);
      pieces.push((at) => [0xe8, ...le32(target - (at + 5))]);
    } else {
      const bytes = simple();
      pieces.push(() => bytes);
    }
  }
  const tail = [0xe7, GEN_PORT, 0xf4]; // out 0x99, eax; hlt
  const regs: Record<string, number> = {
    rax: (r() * 2 ** 32) >>> 0, rcx: (r() * 2 ** 32) >>> 0, rdx: (r() * 2 ** 32) >>> 0,
    rsi: (r() * 2 ** 32) >>> 0, rdi: (r() * 2 ** 32) >>> 0, rbx: GEN_DATA, rsp: GEN_STACK, rbp: 0,
    rflags: 0x2 | (int(2) ? 1 : 0) | (int(2) ? 0x40 : 0) | (int(2) ? 0x80 : 0) | (int(2) ? 0x800 : 0),
  };
  const build = (keep: readonly number[]): Uint8Array => {
    const code = [...head];
    for (const k of keep) code.push(...pieces[k](GEN_LOAD + code.length));
    code.push(...tail);
    return new Uint8Array(code);
  };
  return { pieces, build, regs };
}

/** A generated program split for shrinking: its main-line pieces and a builder over a subset of them. */
export interface SplitProgram {
  pieces: readonly ((at: number) => number[])[];
  /** The program with only the pieces listed in `keep` (ascending indices) in its main line. */
  build(keep: readonly number[]): Uint8Array;
  regs: Record<string, number>;
}

/** Generate program number `seed`, about `size` instructions in the main line. */
export function genProgram(seed: number, size = 40): GenProgram {
  const sp = splitProgram(seed, size);
  return { code: sp.build(sp.pieces.map((_, k) => k)), regs: sp.regs };
}
