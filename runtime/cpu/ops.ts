/**
 * Instruction semantics, one function per semantic name in the opcode table (decoder.ts). Each
 * sees a decoded instruction with normalised operands (`dk`/`dr` destination, `sk`/`sr` source,
 * `imm`), and follows the restart rule of cpu.ts: check and read first, write memory next,
 * commit registers last, so that a fault or an exit leaves the instruction not executed.
 *
 * Section numbers cite the Intel SDM volume 2 instruction pages unless said otherwise.
 */
import type { Cpu } from "./cpu.ts";
import * as addressMod from "./address.ts";
import { descAttr, descBase, descLimit } from "./descriptor.ts";
import { farCall, farJump, farReturn, iretProtected, iretV86 } from "./far.ts";
import { emms as x87Emms, fwait, x87Escape } from "./x87/x87.ts";
import type { Insn } from "./insn.ts";
import * as insnMod from "./insn.ts";
import { CpuFault } from "./fault.ts";
import * as stateMod from "./state.ts";
import * as vmcsMod from "./vmcs.ts";
import { fpSemantics } from "./sse/fp_ops.ts";
import { intSemantics } from "./sse/int_ops.ts";
import { moveSemantics } from "./sse/move_ops.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { OpKind, regIndex } = insnMod;
const { Ar, Cr0, Cr4, Fl, Seg, St, Vec } = stateMod;
const { CpuBased, CpuBased2, ExitReason, ioQualBits, VmcsField } = vmcsMod;
const { ea } = addressMod;

const REG = OpKind.REG, MEM = OpKind.MEM, IMM = OpKind.IMM;
const EAX = 0, ECX = 2, EDX = 4, EBX = 6, ESP = 8, EBP = 10, ESI = 12, EDI = 14; // Int32Array indices

/** Effective address (offset within the segment) of the memory operand (SDM vol. 1, 3.7.5). */
function ipMask(i: Insn): number {
  return i.osz === 4 ? -1 : 0xffff;
}
function readDst(c: Cpu, i: Insn, size: number): number {
  return i.dk === MEM ? c.rd(i.seg, ea(c, i), size) : c.getReg(i.dr, size);
}
function readSrc(c: Cpu, i: Insn, size: number): number {
  if (i.sk === IMM) return i.imm;
  if (i.sk === REG) return c.getReg(i.sr, size);
  return c.rd(i.seg, ea(c, i), size);
}
function writeDst(c: Cpu, i: Insn, size: number, v: number, off: number): void {
  if (i.dk === MEM) c.wr(i.seg, off, size, v);
  else c.setReg(i.dr, size, v);
}
function signExt(v: number, size: number): number {
  return size === 4 ? v | 0 : size === 2 ? (v << 16) >> 16 : (v << 24) >> 24;
}
function mask(size: number): number {
  return size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
}
/** Set CF and OF, keeping the other flags (rotates). */
function setCfOf(c: Cpu, cf: number, of: number): void {
  const f = c.getFlags();
  c.setFlags((f & ~(Fl.CF | Fl.OF)) | (cf ? Fl.CF : 0) | (of ? Fl.OF : 0));
}
function setCf(c: Cpu, cf: number): void {
  const f = c.getFlags();
  c.setFlags((f & ~Fl.CF) | (cf ? Fl.CF : 0));
}
function requireCpl0(c: Cpu): void {
  if (c.protectedMode && c.cpl !== 0) throw new CpuFault(Vec.GP, 0);
}
function iopl(c: Cpu): number {
  return (c.st[St.RFLAGS] >> 12) & 3;
}
function branch(c: Cpu, i: Insn, target: number): void {
  target = target & ipMask(i);
  if ((target >>> 0) > c.segHi[Seg.CS]) throw new CpuFault(Vec.GP, 0);
  c.st[St.RIP] = target;
}
function cxMask(i: Insn): number {
  return i.asz === 4 ? -1 : 0xffff;
}
function getCount(c: Cpu, i: Insn): number {
  return i.asz === 4 ? c.st[ECX] >>> 0 : c.st16[ECX * 2];
}
function setCount(c: Cpu, i: Insn, v: number): void {
  if (i.asz === 4) c.st[ECX] = v;
  else c.st16[ECX * 2] = v;
}
function getIdx(c: Cpu, i: Insn, r: number): number {
  return i.asz === 4 ? c.st[r] : c.st16[r * 2];
}
function setIdx(c: Cpu, i: Insn, r: number, v: number): void {
  if (i.asz === 4) c.st[r] = v;
  else c.st16[r * 2] = v;
}

/** 32x32 → 64 unsigned multiply, as [low, high] unsigned 32-bit halves. */
function mulU32(a: number, b: number): [number, number] {
  a >>>= 0; b >>>= 0;
  const aL = a & 0xffff, aH = a >>> 16, bL = b & 0xffff, bH = b >>> 16;
  const ll = aL * bL, lh = aL * bH, hl = aH * bL, hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const lo = (((mid & 0xffff) << 16) | (ll & 0xffff)) >>> 0;
  const hi = (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
  return [lo, hi];
}

function alu(c: Cpu, i: Insn): void {
  const size = i.size;
  let off = 0, a: number;
  if (i.dk === MEM) {
    off = ea(c, i);
    if (i.sub !== 7) c.checkWritable(i.seg);
    a = c.rd(i.seg, off, size);
  } else a = c.getReg(i.dr, size);
  const b = readSrc(c, i, size);
  let r: number;
  switch (i.sub) {
    case 0: r = a + b; c.flagsAdd(size, a, b, r); break;
    case 1: r = a | b; c.flagsLogic(size, r); break;
    case 2: { const cin = c.getCF(); r = a + b + cin; c.flagsAdc(size, a, b, r, cin); break; }
    case 3: { const cin = c.getCF(); r = a - b - cin; c.flagsSbb(size, a, b, r, cin); break; }
    case 4: r = a & b; c.flagsLogic(size, r); break;
    case 5: r = a - b; c.flagsSub(size, a, b, r); break;
    case 6: r = a ^ b; c.flagsLogic(size, r); break;
    default: r = a - b; c.flagsSub(size, a, b, r); return;
  }
  writeDst(c, i, size, r, off);
}
function test(c: Cpu, i: Insn): void {
  const size = i.size;
  const a = readDst(c, i, size);
  const b = i.sk === IMM ? i.imm : i.sk === REG ? c.getReg(i.sr, size) : 0;
  c.flagsLogic(size, a & b);
}
function incdec(c: Cpu, i: Insn): void {
  const size = i.size;
  let off = 0, a: number;
  if (i.dk === MEM) { off = ea(c, i); c.checkWritable(i.seg); a = c.rd(i.seg, off, size); } else a = c.getReg(i.dr, size);
  const r = i.sub ? a - 1 : a + 1;
  writeDst(c, i, size, r, off);
  c.flagsIncDec(size, a, r, i.sub === 1);
}
function not(c: Cpu, i: Insn): void {
  const size = i.size;
  let off = 0;
  if (i.dk === MEM) { off = ea(c, i); c.checkWritable(i.seg); }
  const a = i.dk === MEM ? c.rd(i.seg, off, size) : c.getReg(i.dr, size);
  writeDst(c, i, size, ~a, off);
}
function neg(c: Cpu, i: Insn): void {
  const size = i.size;
  let off = 0;
  if (i.dk === MEM) { off = ea(c, i); c.checkWritable(i.seg); }
  const a = i.dk === MEM ? c.rd(i.seg, off, size) : c.getReg(i.dr, size);
  const r = 0 - a;
  writeDst(c, i, size, r, off);
  c.flagsSub(size, 0, a, r);
}
function mov(c: Cpu, i: Insn): void {
  const size = i.size;
  if (i.dk === MEM) {
    const off = ea(c, i);
    c.checkWritable(i.seg);
    c.wr(i.seg, off, size, i.sk === IMM ? i.imm : c.getReg(i.sr, size));
  } else {
    c.setReg(i.dr, size, readSrc(c, i, size));
  }
}
function movzx(c: Cpu, i: Insn): void {
  const ssize = i.opcode === 0x1b6 ? 1 : 2;
  const v = i.sk === REG ? c.getReg(i.sr, ssize) : c.rd(i.seg, ea(c, i), ssize);
  c.setReg(i.dr, i.osz, v);
}
function movsx(c: Cpu, i: Insn): void {
  const ssize = i.opcode === 0x1be ? 1 : 2;
  const v = i.sk === REG ? c.getReg(i.sr, ssize) : c.rd(i.seg, ea(c, i), ssize);
  c.setReg(i.dr, i.osz, signExt(v, ssize));
}
function lea(c: Cpu, i: Insn): void {
  c.setReg(i.dr, i.osz, ea(c, i));
}
function xchg(c: Cpu, i: Insn): void {
  const size = i.size;
  const b = c.getReg(i.sr, size);
  if (i.dk === MEM) {
    const off = ea(c, i);
    c.checkWritable(i.seg);
    const a = c.rd(i.seg, off, size);
    c.wr(i.seg, off, size, b);
    c.setReg(i.sr, size, a);
  } else {
    const a = c.getReg(i.dr, size);
    c.setReg(i.dr, size, b);
    c.setReg(i.sr, size, a);
  }
}
function push(c: Cpu, i: Insn): void {
  const v = i.dk === IMM ? i.imm : readDst(c, i, i.osz);
  c.push(v, i.osz);
}
function pop(c: Cpu, i: Insn): void {
  const size = i.osz;
  const v = c.peek(size);
  if (i.dk === MEM) {
    // The address is computed after ESP is incremented (SDM POP).
    const saved = c.st[ESP];
    c.adjustSp(size);
    try {
      c.wr(i.seg, ea(c, i), size, v);
    } catch (e) {
      c.st[ESP] = saved;
      throw e;
    }
  } else {
    c.adjustSp(size);
    c.setReg(i.dr, size, v);
  }
}
function pushSeg(c: Cpu, i: Insn): void {
  c.push(c.getSegSel(i.dr), i.osz);
}
function popSeg(c: Cpu, i: Insn): void {
  const sel = c.peek(i.osz) & 0xffff;
  // POP SS moves the stack pointer by the width of the stack the value came from (SDM POP: the
  // old SS.B), not of the segment it loads.
  const s32 = c.stack32;
  c.loadSeg(i.dr, sel);
  if (s32) c.st[ESP] = (c.st[ESP] + i.osz) | 0;
  else c.st16[ESP * 2] = (c.st16[ESP * 2] + i.osz) & 0xffff;
  if (i.dr === Seg.SS) c.st[St.INTERRUPTIBILITY] |= 2;
}
function pusha(c: Cpu, i: Insn): void {
  const size = i.osz;
  const sp0 = c.stack32 ? c.st[ESP] : c.st16[ESP * 2];
  // Check every slot first so a fault leaves nothing half-pushed. Each slot is checked on its own:
  // the stack pointer wraps within the segment (SP=8 pushes down to FFF8), and only a slot that
  // straddles the limit faults (SDM PUSHA: #GP in real mode when SP is 7, 9, 11, 13 or 15).
  for (let k = 1; k <= 8; k++) c.lin(Seg.SS, c.stack32 ? (sp0 - k * size) | 0 : (sp0 - k * size) & 0xffff, size);
  // The ESP image is the register at the operand size (SDM PUSHA/PUSHAD: Temp ← ESP), whatever
  // the stack's width: PUSHAD on a 16-bit stack stores the whole ESP.
  const vals: number[] = [];
  for (let r = 0; r < 8; r++) vals.push(c.getReg(size === 4 ? r * 2 : r * 4, size));
  for (let r = 0; r < 8; r++) c.push(vals[r], size);
}
function popa(c: Cpu, i: Insn): void {
  const size = i.osz;
  const vals: number[] = [];
  for (let r = 0; r < 8; r++) vals.push(c.peek(size, r * size));
  for (let r = 7; r >= 0; r--) {
    if (r === 4) continue; // the saved ESP is discarded
    c.setReg(size === 4 ? r * 2 : r * 4, size, vals[7 - r]);
  }
  c.adjustSp(8 * size);
}
function cbw(c: Cpu, i: Insn): void {
  if (i.osz === 4) c.st[EAX] = (c.st[EAX] << 16) >> 16;
  else c.st16[0] = (c.st8[0] << 24) >> 24;
}
function cwd(c: Cpu, i: Insn): void {
  if (i.osz === 4) c.st[EDX] = c.st[EAX] >> 31;
  else c.st16[EDX * 2] = (c.st16[0] & 0x8000) ? 0xffff : 0;
}
function jcc(c: Cpu, i: Insn): void {
  if (c.cond(i.sub)) branch(c, i, c.st[St.RIP] + i.imm);
}
function setcc(c: Cpu, i: Insn): void {
  const v = c.cond(i.sub) ? 1 : 0;
  if (i.dk === MEM) { const off = ea(c, i); c.checkWritable(i.seg); c.wr8(i.seg, off, v); } else c.setReg(i.dr, 1, v);
}
function cmovcc(c: Cpu, i: Insn): void {
  const v = readSrc(c, i, i.osz);
  if (c.cond(i.sub)) c.setReg(i.dr, i.osz, v);
}
function jmp(c: Cpu, i: Insn): void {
  branch(c, i, c.st[St.RIP] + i.imm);
}
function jmpNear(c: Cpu, i: Insn): void {
  branch(c, i, readDst(c, i, i.osz));
}
function call(c: Cpu, i: Insn): void {
  const ret = c.st[St.RIP];
  const target = (ret + i.imm) & ipMask(i);
  if ((target >>> 0) > c.segHi[Seg.CS]) throw new CpuFault(Vec.GP, 0);
  c.push(ret, i.osz);
  c.st[St.RIP] = target;
}
function callNear(c: Cpu, i: Insn): void {
  const ret = c.st[St.RIP];
  const target = readDst(c, i, i.osz) & ipMask(i);
  if ((target >>> 0) > c.segHi[Seg.CS]) throw new CpuFault(Vec.GP, 0);
  c.push(ret, i.osz);
  c.st[St.RIP] = target;
}
function ret(c: Cpu, i: Insn): void {
  const target = c.peek(i.osz) & ipMask(i);
  if ((target >>> 0) > c.segHi[Seg.CS]) throw new CpuFault(Vec.GP, 0);
  c.adjustSp(i.osz + (i.dk === IMM ? i.imm & 0xffff : 0));
  c.st[St.RIP] = target;
}
/** Far transfers in protected mode (not virtual-8086) go through far.ts: gates, tasks, privilege changes. */
function pmFar(c: Cpu): boolean {
  return c.protectedMode && !c.v86;
}
function jmpFar(c: Cpu, i: Insn): void {
  if (pmFar(c)) farJump(c, i.imm2, i.imm & ipMask(i));
  else c.loadCs(i.imm2, i.imm & ipMask(i));
}
function jmpFarIndirect(c: Cpu, i: Insn): void {
  const off = ea(c, i);
  const eip = c.rd(i.seg, off, i.osz) & ipMask(i);
  const sel = c.rd16(i.seg, (off + i.osz) & (i.asz === 4 ? -1 : 0xffff));
  if (pmFar(c)) farJump(c, sel, eip);
  else c.loadCs(sel, eip);
}
/** Far CALL in real and virtual-8086 mode: push CS:IP, load CS as a real-mode selector. */
function realFarCall(c: Cpu, i: Insn, sel: number, eip: number): void {
  const size = i.osz;
  const oldCs = c.getSegSel(Seg.CS), oldEip = c.st[St.RIP];
  // Check the stack frame before changing CS (restartable on #SS).
  const sp = c.stack32 ? (c.st[ESP] - 2 * size) | 0 : (c.st16[ESP * 2] - 2 * size) & 0xffff;
  c.lin(Seg.SS, sp, 2 * size);
  const saveCs = [c.getSegSel(Seg.CS), c.getSegBase(Seg.CS), c.getSegLimit(Seg.CS), c.getSegAttr(Seg.CS)];
  c.loadCs(sel, eip);
  try {
    c.push(oldCs, size);
    c.push(oldEip, size);
  } catch (e) {
    c.setSeg(Seg.CS, saveCs[0], saveCs[1], saveCs[2], saveCs[3]);
    c.st[St.RIP] = oldEip;
    throw e;
  }
}
function callFar(c: Cpu, i: Insn): void {
  if (pmFar(c)) farCall(c, i.imm2, i.imm & ipMask(i), i.osz);
  else realFarCall(c, i, i.imm2, i.imm & ipMask(i));
}
function callFarIndirect(c: Cpu, i: Insn): void {
  const off = ea(c, i);
  const eip = c.rd(i.seg, off, i.osz) & ipMask(i);
  const sel = c.rd16(i.seg, (off + i.osz) & (i.asz === 4 ? -1 : 0xffff));
  if (pmFar(c)) farCall(c, sel, eip, i.osz);
  else realFarCall(c, i, sel, eip);
}
function retFar(c: Cpu, i: Insn): void {
  const size = i.osz;
  const extra = i.dk === IMM ? i.imm & 0xffff : 0;
  if (pmFar(c)) { farReturn(c, size, extra); return; }
  const eip = c.peek(size) & ipMask(i);
  const sel = c.peek(size, size) & 0xffff;
  c.loadCs(sel, eip);
  c.adjustSp(2 * size + extra);
}
function loop(c: Cpu, i: Insn): void {
  const n = (getCount(c, i) - 1) & cxMask(i);
  let take = n !== 0;
  if (i.sub === 1) take = take && c.getZF() === 1;
  else if (i.sub === 2) take = take && c.getZF() === 0;
  const next = c.st[St.RIP];
  if (take) branch(c, i, next + i.imm);
  setCount(c, i, n);
}
function jcxz(c: Cpu, i: Insn): void {
  if (getCount(c, i) === 0) branch(c, i, c.st[St.RIP] + i.imm);
}
function enter(c: Cpu, i: Insn): void {
  const size = i.osz;
  const alloc = i.imm & 0xffff;
  const level = i.imm2 & 31;
  const s32 = c.stack32;
  const bp = s32 ? c.st[EBP] : c.st16[EBP * 2];
  const spStart = s32 ? c.st[ESP] : c.st16[ESP * 2];
  // Compute the frame on copies, then commit (restartable).
  let sp = spStart;
  const wr = (v: number) => {
    sp = s32 ? (sp - size) | 0 : (sp - size) & 0xffff;
    c.wr(Seg.SS, sp, size, v);
  };
  wr(size === 4 ? c.st[EBP] : bp);
  // The frame pointer is ESP minus the operand size, at the operand size: o32 ENTER on a 16-bit
  // stack keeps the upper half of ESP in EBP (as the 386 does), while the stack accesses and the
  // new stack pointer use SP only.
  const frame = size === 4 && !s32 ? (c.st[ESP] - size) | 0 : sp;
  let tbp = bp;
  if (level > 0) {
    for (let k = 1; k < level; k++) {
      tbp = s32 ? (tbp - size) | 0 : (tbp - size) & 0xffff;
      wr(c.rd(Seg.SS, tbp, size));
    }
    wr(frame);
  }
  const newSp = s32 ? (sp - alloc) | 0 : (sp - alloc) & 0xffff;
  // The final stack pointer must be writable even when nothing is stored there (SDM ENTER: #SS or
  // #PF for the allocated frame).
  c.gpaOf(Seg.SS, newSp, size, true, true);
  if (s32) c.st[ESP] = newSp; else c.st16[ESP * 2] = newSp;
  c.setReg(size === 4 ? EBP : EBP * 2, size, frame);
}
function leave(c: Cpu, i: Insn): void {
  const size = i.osz;
  const bp = c.stack32 ? c.st[EBP] : c.st16[EBP * 2];
  const v = c.rd(Seg.SS, bp, size);
  if (c.stack32) c.st[ESP] = (bp + size) | 0; else c.st16[ESP * 2] = (bp + size) & 0xffff;
  c.setReg(size === 4 ? EBP : EBP * 2, size, v);
}
function pushf(c: Cpu, i: Insn): void {
  if (c.v86 && iopl(c) < 3) throw new CpuFault(Vec.GP, 0);
  // VM and RF are cleared in the pushed image (SDM PUSHF).
  c.push(c.getFlags() & ~(Fl.VM | Fl.RF), i.osz);
}
function popf(c: Cpu, i: Insn): void {
  if (c.v86 && iopl(c) < 3) throw new CpuFault(Vec.GP, 0);
  const v = c.peek(i.osz);
  c.adjustSp(i.osz);
  writeFlagsChecked(c, v, i.osz);
}
/** The POPF/IRET flag-writing rules by CPL and IOPL (SDM POPF, table 4-15). */
function writeFlagsChecked(c: Cpu, v: number, size: number): void {
  const old = c.getFlags();
  let changeable = Fl.CF | Fl.PF | Fl.AF | Fl.ZF | Fl.SF | Fl.TF | Fl.DF | Fl.OF | Fl.NT | Fl.IF | Fl.IOPL;
  if (size === 4) changeable |= Fl.AC | Fl.ID;
  if (c.protectedMode) {
    if (c.cpl > 0) changeable &= ~Fl.IOPL;
    if (c.cpl > iopl(c)) changeable &= ~Fl.IF;
  }
  if (size === 2) changeable &= 0xffff;
  c.setFlags((old & ~changeable) | (v & changeable));
}
function sahf(c: Cpu): void {
  const f = c.getFlags();
  const ah = c.st8[1];
  c.setFlags((f & ~0xd5) | (ah & 0xd5));
}
function lahf(c: Cpu): void {
  c.st8[1] = c.getFlags() & 0xff;
}
function flagOp(c: Cpu, i: Insn): void {
  const f = c.getFlags();
  switch (i.sub) {
    case 0: c.setFlags(f ^ Fl.CF); break;
    case 1: c.setFlags(f & ~Fl.CF); break;
    case 2: c.setFlags(f | Fl.CF); break;
    case 3: c.st[St.RFLAGS] &= ~Fl.DF; break;
    default: c.st[St.RFLAGS] |= Fl.DF; break;
  }
}
function cli(c: Cpu): void {
  if ((c.protectedMode || c.v86) && c.cpl > iopl(c)) throw new CpuFault(Vec.GP, 0);
  c.st[St.RFLAGS] &= ~Fl.IF;
}
function sti(c: Cpu): void {
  if ((c.protectedMode || c.v86) && c.cpl > iopl(c)) throw new CpuFault(Vec.GP, 0);
  if (!(c.st[St.RFLAGS] & Fl.IF)) c.st[St.INTERRUPTIBILITY] |= 1; // blocking by STI (SDM 24.4.2)
  c.st[St.RFLAGS] |= Fl.IF;
}

// ---------------------------------------------------------------------------------------------
// Multiply and divide
// ---------------------------------------------------------------------------------------------
function mul(c: Cpu, i: Insn): void {
  const size = i.size;
  const b = readDst(c, i, size);
  if (size === 1) {
    const r = c.st8[0] * b;
    c.st16[0] = r;
    const hi = r >> 8;
    c.flagsResult(1, r, hi !== 0 ? 1 : 0, hi !== 0 ? 1 : 0);
  } else if (size === 2) {
    const r = c.st16[0] * b;
    c.st16[0] = r;
    c.st16[EDX * 2] = r >>> 16;
    const of = (r >>> 16) !== 0 ? 1 : 0;
    c.flagsResult(2, r, of, of);
  } else {
    const [lo, hi] = mulU32(c.st[EAX], b);
    c.st[EAX] = lo;
    c.st[EDX] = hi;
    const of = hi !== 0 ? 1 : 0;
    c.flagsResult(4, lo, of, of);
  }
}
function imul1(c: Cpu, i: Insn): void {
  const size = i.size;
  const b = signExt(readDst(c, i, size), size);
  if (size === 1) {
    const r = ((c.st8[0] << 24) >> 24) * b;
    c.st16[0] = r;
    const of = r !== ((r << 24) >> 24) ? 1 : 0;
    c.flagsResult(1, r, of, of);
  } else if (size === 2) {
    const r = ((c.st16[0] << 16) >> 16) * b;
    c.st16[0] = r;
    c.st16[EDX * 2] = r >> 16;
    const of = r !== ((r << 16) >> 16) ? 1 : 0;
    c.flagsResult(2, r, of, of);
  } else {
    const a = c.st[EAX];
    let [lo, hi] = mulU32(a, b);
    if (a < 0) hi = (hi - (b >>> 0)) >>> 0;
    if (b < 0) hi = (hi - (a >>> 0)) >>> 0;
    c.st[EAX] = lo;
    c.st[EDX] = hi;
    const of = (hi | 0) !== ((lo | 0) >> 31) ? 1 : 0;
    c.flagsResult(4, lo, of, of);
  }
}
function imulTrunc(c: Cpu, size: number, a: number, b: number): number {
  let r: number, of: number;
  if (size === 4) {
    r = Math.imul(a, b);
    const p = (a | 0) * (b | 0);
    of = p < -2147483648 || p > 2147483647 ? 1 : 0;
  } else {
    const p = signExt(a, 2) * signExt(b, 2);
    r = p;
    of = p !== ((p << 16) >> 16) ? 1 : 0;
  }
  c.flagsResult(size, r, of, of);
  return r;
}
function imul2(c: Cpu, i: Insn): void {
  const size = i.osz;
  const a = c.getReg(i.dr, size);
  const b = readSrc(c, i, size);
  c.setReg(i.dr, size, imulTrunc(c, size, a, b));
}
function imul3(c: Cpu, i: Insn): void {
  const size = i.osz;
  const a = readSrc(c, i, size === 4 ? 4 : 2);
  // The third operand (the immediate) was decoded into imm; readSrc used sk (the E operand).
  c.setReg(i.dr, size, imulTrunc(c, size, a, i.imm));
}
function div(c: Cpu, i: Insn): void {
  const size = i.size;
  const d = readDst(c, i, size) >>> 0;
  if (d === 0) throw new CpuFault(Vec.DE);
  if (size === 1) {
    const n = c.st16[0];
    const q = Math.floor(n / d);
    if (q > 0xff) throw new CpuFault(Vec.DE);
    c.st8[0] = q;
    c.st8[1] = n % d;
  } else if (size === 2) {
    const n = ((c.st16[EDX * 2] << 16) | c.st16[0]) >>> 0;
    const q = Math.floor(n / d);
    if (q > 0xffff) throw new CpuFault(Vec.DE);
    c.st16[0] = q;
    c.st16[EDX * 2] = n % d;
  } else {
    const hi = c.st[EDX] >>> 0, lo = c.st[EAX] >>> 0;
    if (hi >= d) throw new CpuFault(Vec.DE);
    let q: number, r: number;
    if (hi === 0) {
      q = Math.floor(lo / d);
      r = lo % d;
    } else {
      const n = (BigInt(hi) << 32n) | BigInt(lo);
      const bd = BigInt(d);
      q = Number(n / bd);
      r = Number(n % bd);
    }
    c.st[EAX] = q;
    c.st[EDX] = r;
  }
}
function idiv(c: Cpu, i: Insn): void {
  const size = i.size;
  const d = signExt(readDst(c, i, size), size);
  if (d === 0) throw new CpuFault(Vec.DE);
  if (size === 1) {
    const n = (c.st16[0] << 16) >> 16;
    const q = Math.trunc(n / d);
    if (q > 127 || q < -128) throw new CpuFault(Vec.DE);
    c.st8[0] = q;
    c.st8[1] = n % d;
  } else if (size === 2) {
    const n = (c.st16[EDX * 2] << 16) | c.st16[0];
    const q = Math.trunc(n / d);
    if (q > 32767 || q < -32768) throw new CpuFault(Vec.DE);
    c.st16[0] = q;
    c.st16[EDX * 2] = n % d;
  } else {
    const n = (BigInt(c.st[EDX]) << 32n) | BigInt(c.st[EAX] >>> 0);
    const bd = BigInt(d);
    const q = n / bd;
    if (q > 2147483647n || q < -2147483648n) throw new CpuFault(Vec.DE);
    c.st[EAX] = Number(q);
    c.st[EDX] = Number(n % bd);
  }
}

// ---------------------------------------------------------------------------------------------
// Shifts and rotates (SDM SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR)
// ---------------------------------------------------------------------------------------------
function shift(c: Cpu, i: Insn): void {
  const size = i.size, bits = size * 8;
  let off = 0;
  if (i.dk === MEM) { off = ea(c, i); c.checkWritable(i.seg); }
  const a = (i.dk === MEM ? c.rd(i.seg, off, size) : c.getReg(i.dr, size)) & mask(size);
  const cnt = (i.sk === IMM ? i.imm : c.st8[ECX * 4]) & 0x1f;
  if (cnt === 0) return;
  const m = mask(size);
  const msb = (v: number) => (v >>> (bits - 1)) & 1;
  let r: number;
  switch (i.sub) {
    case 0: { // ROL
      const k = cnt % bits;
      r = k ? ((a << k) | (a >>> (bits - k))) & m : a;
      writeDst(c, i, size, r, off);
      const cf = r & 1;
      setCfOf(c, cf, msb(r) ^ cf);
      return;
    }
    case 1: { // ROR
      const k = cnt % bits;
      r = k ? ((a >>> k) | (a << (bits - k))) & m : a;
      writeDst(c, i, size, r, off);
      setCfOf(c, msb(r), msb(r) ^ ((r >>> (bits - 2)) & 1));
      return;
    }
    case 2: { // RCL
      const k = size === 4 ? cnt : cnt % (bits + 1);
      let cf = c.getCF();
      r = a;
      for (let n = 0; n < k; n++) {
        const out = msb(r);
        r = ((r << 1) | cf) & m;
        cf = out;
      }
      writeDst(c, i, size, r, off);
      setCfOf(c, cf, msb(r) ^ cf);
      return;
    }
    case 3: { // RCR
      const k = size === 4 ? cnt : cnt % (bits + 1);
      let cf = c.getCF();
      r = a;
      for (let n = 0; n < k; n++) {
        const out = r & 1;
        r = ((r >>> 1) | (cf << (bits - 1))) & m;
        cf = out;
      }
      writeDst(c, i, size, r, off);
      setCfOf(c, cf, msb(r) ^ ((r >>> (bits - 2)) & 1));
      return;
    }
    case 4: case 6: { // SHL/SAL
      r = cnt >= 32 ? 0 : (a << cnt) & m;
      const cf = cnt <= bits ? ((a << (cnt - 1)) >>> (bits - 1)) & 1 : 0;
      writeDst(c, i, size, r, off);
      c.flagsResult(size, r, cf, msb(r) ^ cf);
      return;
    }
    case 5: { // SHR
      r = a >>> cnt;
      const cf = (a >>> (cnt - 1)) & 1;
      writeDst(c, i, size, r, off);
      // OF is the original MSB for a 1-bit shift (SDM SHR) and undefined otherwise; silicon gives
      // MSB(r) XOR bit n-2 of r, which is 0 for counts of 2 and more (80286 vectors, C0 /5).
      c.flagsResult(size, r, cf, msb(r) ^ ((r >>> (bits - 2)) & 1));
      return;
    }
    default: { // SAR
      const sa = signExt(a, size);
      r = (sa >> cnt) & m;
      const cf = (sa >> (cnt - 1)) & 1;
      writeDst(c, i, size, r, off);
      c.flagsResult(size, r, cf, 0);
      return;
    }
  }
}
function shd(c: Cpu, i: Insn): void {
  const size = i.osz, bits = size * 8;
  let off = 0;
  if (i.dk === MEM) { off = ea(c, i); c.checkWritable(i.seg); }
  const a = (i.dk === MEM ? c.rd(i.seg, off, size) : c.getReg(i.dr, size)) >>> 0;
  const b = c.getReg(i.sr, size) >>> 0;
  const cnt = (i.imm === -1 ? c.st8[ECX * 4] : i.imm) & 0x1f;
  if (cnt === 0) return;
  let r: number, cf: number;
  if (size === 4) {
    if (i.sub === 0) { r = (a << cnt) | (b >>> (32 - cnt)); cf = (a >>> (32 - cnt)) & 1; }
    else { r = (a >>> cnt) | (b << (32 - cnt)); cf = (a >>> (cnt - 1)) & 1; }
  } else {
    // 16-bit: the operands form a 32-bit (shld: a:b, shrd: b:a) value; counts over 16 are
    // undefined by the SDM and give what this wider shift gives.
    if (i.sub === 0) {
      const v = ((a << 16) | b) >>> 0;
      const w = cnt < 32 ? v << cnt : 0;
      r = (w >>> 16) & 0xffff;
      cf = ((v << (cnt - 1)) >>> 31) & 1;
    } else {
      const v = ((b << 16) | a) >>> 0;
      r = (v >>> cnt) & 0xffff;
      cf = (v >>> (cnt - 1)) & 1;
    }
  }
  writeDst(c, i, size, r, off);
  const of = ((r >>> (bits - 1)) ^ (a >>> (bits - 1))) & 1;
  c.flagsResult(size, r, cf, of);
}

// ---------------------------------------------------------------------------------------------
// Bit operations
// ---------------------------------------------------------------------------------------------
function bt(c: Cpu, i: Insn): void {
  const size = i.osz, bits = size * 8;
  let bitOff = i.sk === IMM ? i.imm & (bits - 1) : c.getReg(i.sr, size);
  let v: number, off = 0;
  if (i.dk === MEM) {
    off = ea(c, i);
    if (i.sk !== IMM) {
      // A register bit offset addresses memory beyond the operand (SDM BT: signed offset).
      const sOff = signExt(bitOff, size);
      off = (off + (sOff >> (size === 4 ? 5 : 4)) * size) & (i.asz === 4 ? -1 : 0xffff);
      bitOff = sOff & (bits - 1);
    }
    if (i.sub !== 0) c.checkWritable(i.seg);
    v = c.rd(i.seg, off, size);
  } else {
    bitOff &= bits - 1;
    v = c.getReg(i.dr, size);
  }
  const cf = (v >>> bitOff) & 1;
  if (i.sub !== 0) {
    const m = 1 << bitOff;
    const r = i.sub === 1 ? v | m : i.sub === 2 ? v & ~m : v ^ m;
    writeDst(c, i, size, r, off);
  }
  setCf(c, cf);
}
function bsf(c: Cpu, i: Insn): void {
  const v = readSrc(c, i, i.osz) & mask(i.osz);
  const f = c.getFlags();
  if (v === 0) { c.setFlags(f | Fl.ZF); return; }
  c.setReg(i.dr, i.osz, 31 - Math.clz32(v & -v));
  c.setFlags(f & ~Fl.ZF);
}
function bsr(c: Cpu, i: Insn): void {
  const v = readSrc(c, i, i.osz) & mask(i.osz);
  const f = c.getFlags();
  if (v === 0) { c.setFlags(f | Fl.ZF); return; }
  c.setReg(i.dr, i.osz, 31 - Math.clz32(v));
  c.setFlags(f & ~Fl.ZF);
}
function bswap(c: Cpu, i: Insn): void {
  const v = c.st[i.dr];
  c.st[i.dr] = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}
function xadd(c: Cpu, i: Insn): void {
  const size = i.size;
  let off = 0;
  if (i.dk === MEM) { off = ea(c, i); c.checkWritable(i.seg); }
  const a = i.dk === MEM ? c.rd(i.seg, off, size) : c.getReg(i.dr, size);
  const b = c.getReg(i.sr, size);
  const r = a + b;
  writeDst(c, i, size, r, off);
  c.setReg(i.sr, size, a);
  if (i.dk === REG) c.setReg(i.dr, size, r);
  c.flagsAdd(size, a, b, r);
}
function cmpxchg(c: Cpu, i: Insn): void {
  const size = i.size;
  let off = 0;
  if (i.dk === MEM) { off = ea(c, i); c.checkWritable(i.seg); }
  const d = i.dk === MEM ? c.rd(i.seg, off, size) : c.getReg(i.dr, size);
  const acc = c.getReg(size === 1 ? 0 : size === 2 ? 0 : 0, size);
  const r = acc - d;
  if (((acc ^ d) & mask(size)) === 0) {
    writeDst(c, i, size, c.getReg(i.sr, size), off);
  } else {
    // The destination is written back with its own value (SDM CMPXCHG: the processor always writes).
    if (i.dk === MEM) c.wr(i.seg, off, size, d);
    c.setReg(0, size, d);
  }
  c.flagsSub(size, acc, d, r);
}
function cmpxchg8b(c: Cpu, i: Insn): void {
  const off = ea(c, i);
  c.checkWritable(i.seg);
  const lo = c.rd32(i.seg, off), hi = c.rd32(i.seg, (off + 4) | 0);
  const f = c.getFlags();
  if (lo === c.st[EAX] && hi === c.st[EDX]) {
    c.wr32(i.seg, off, c.st[EBX]);
    c.wr32(i.seg, (off + 4) | 0, c.st[ECX]);
    c.setFlags(f | Fl.ZF);
  } else {
    c.wr32(i.seg, off, lo);
    c.wr32(i.seg, (off + 4) | 0, hi);
    c.st[EAX] = lo;
    c.st[EDX] = hi;
    c.setFlags(f & ~Fl.ZF);
  }
}

// ---------------------------------------------------------------------------------------------
// String instructions. With a REP prefix, each iteration counts as one retired instruction and the
// preemption timer may stop between iterations, with RIP still at the instruction (as an
// interrupt between iterations does, SDM REP).
// ---------------------------------------------------------------------------------------------
function dfDelta(c: Cpu, size: number): number {
  return c.st[St.RFLAGS] & Fl.DF ? -size : size;
}
type StringBody = (c: Cpu, i: Insn, size: number, d: number, v: number) => boolean;
/** Run a string instruction's body once, or per REP iteration (module-level bodies: no allocation). */
function repRun(c: Cpu, i: Insn, size: number, d: number, v: number, body: StringBody): void {
  if (!i.rep) { body(c, i, size, d, v); return; }
  let n = getCount(c, i);
  if (n === 0) return;
  const limit = c.repLimit;
  const m = cxMask(i);
  let done = 0;
  for (;;) {
    const cont = body(c, i, size, d, v);
    n = (n - 1) & m;
    setCount(c, i, n);
    done++;
    c.repExtra++;
    if (n === 0 || !cont) break;
    if (done >= limit) {
      // The budget share is used up: resume this instruction on the next entry.
      c.st[St.RIP] = (c.st[St.RIP] - i.len) & ipMask(i);
      c.stop = true;
      break;
    }
  }
  c.repExtra--; // the run loop counts the instruction itself once
}
function movsBody(c: Cpu, i: Insn, size: number, d: number): boolean {
  const si = getIdx(c, i, ESI), di = getIdx(c, i, EDI);
  c.wr(Seg.ES, di, size, c.rd(i.seg, si, size));
  setIdx(c, i, ESI, si + d);
  setIdx(c, i, EDI, di + d);
  return true;
}
function stosBody(c: Cpu, i: Insn, size: number, d: number, v: number): boolean {
  const di = getIdx(c, i, EDI);
  c.wr(Seg.ES, di, size, v);
  setIdx(c, i, EDI, di + d);
  return true;
}
function lodsBody(c: Cpu, i: Insn, size: number, d: number): boolean {
  const si = getIdx(c, i, ESI);
  c.setReg(0, size, c.rd(i.seg, si, size));
  setIdx(c, i, ESI, si + d);
  return true;
}
function cmpsBody(c: Cpu, i: Insn, size: number, d: number): boolean {
  const si = getIdx(c, i, ESI), di = getIdx(c, i, EDI);
  const a = c.rd(i.seg, si, size), b = c.rd(Seg.ES, di, size);
  setIdx(c, i, ESI, si + d);
  setIdx(c, i, EDI, di + d);
  c.flagsSub(size, a, b, a - b);
  const eq = ((a ^ b) & mask(size)) === 0;
  return i.rep === 1 ? eq : !eq;
}
function scasBody(c: Cpu, i: Insn, size: number, d: number, a: number): boolean {
  const di = getIdx(c, i, EDI);
  const b = c.rd(Seg.ES, di, size);
  setIdx(c, i, EDI, di + d);
  c.flagsSub(size, a, b, a - b);
  const eq = ((a ^ b) & mask(size)) === 0;
  return i.rep === 1 ? eq : !eq;
}
function movs(c: Cpu, i: Insn): void {
  c.checkWritable(Seg.ES);
  if (i.rep && !(c.st[St.RFLAGS] & Fl.DF) && repBulk(c, i, i.size, true, 0)) return;
  repRun(c, i, i.size, dfDelta(c, i.size), 0, movsBody);
}
function stos(c: Cpu, i: Insn): void {
  c.checkWritable(Seg.ES);
  const v = c.getReg(0, i.size);
  if (i.rep && !(c.st[St.RFLAGS] & Fl.DF) && repBulk(c, i, i.size, false, v)) return;
  repRun(c, i, i.size, dfDelta(c, i.size), v, stosBody);
}

/**
 * REP MOVS / REP STOS going forward, a page-bounded chunk at a time with one host copy or fill.
 * The result is the element-by-element one: chunks never cross a page of either operand, every
 * element still counts as one retired instruction, and the budget stops between elements. Gives
 * up (returns false, the element loop finishes) on MMIO or an overlap where a forward copy
 * differs from memmove.
 * @returns true when the instruction is done or stopped by the budget
 */
function repBulk(c: Cpu, i: Insn, size: number, isMovs: boolean, v: number): boolean {
  let n = getCount(c, i);
  if (n === 0) return false;
  let limit = c.repLimit;
  const a32 = i.asz === 4;
  const m8 = c.m8;
  for (;;) {
    const si = a32 ? c.st[ESI] >>> 0 : c.st16[ESI * 2];
    const di = a32 ? c.st[EDI] >>> 0 : c.st16[EDI * 2];
    const laD = (c.segBase[Seg.ES] + di) | 0;
    let chunk = Math.min(n, limit, (0x1000 - (laD & 0xfff)) >>> Math.log2(size) | 0);
    let laS = 0;
    if (isMovs) {
      laS = (c.segBase[i.seg] + si) | 0;
      chunk = Math.min(chunk, (0x1000 - (laS & 0xfff)) >>> Math.log2(size) | 0);
    }
    if (!a32) {
      chunk = Math.min(chunk, (0x10000 - di) / size | 0);
      if (isMovs) chunk = Math.min(chunk, (0x10000 - si) / size | 0);
    }
    // Stay inside the segment limits, so a limit fault comes at the element that crosses it.
    if (di < c.segLo[Seg.ES]) chunk = 0;
    else chunk = Math.min(chunk, Math.floor((c.segHi[Seg.ES] - di + 1) / size));
    if (isMovs) {
      if (si < c.segLo[i.seg]) chunk = 0;
      else chunk = Math.min(chunk, Math.floor((c.segHi[i.seg] - si + 1) / size));
    }
    if (chunk <= 0) {
      // An element straddles a page or the 64 KiB wrap: one element the ordinary way.
      if (isMovs) movsBody(c, i, size, size); else stosBody(c, i, size, size, v);
      chunk = 1;
    } else {
      const bytes = chunk * size;
      let hS = 0;
      if (isMovs) {
        c.lin(i.seg, si, bytes);
        hS = c.translate(laS, 0);
      }
      c.lin(Seg.ES, di, bytes);
      const hD = c.translate(laD, 1, false, bytes);
      if (hD < 0 || hS < 0 || (isMovs && hD > hS && hD < hS + bytes)) {
        c.repLimit = limit;
        return false;
      }
      if (isMovs) m8.copyWithin(hD, hS, hS + bytes);
      else if (size === 1 || ((v & 0xff) * 0x01010101) === (v >>> 0) || (size === 2 && (v & 0xff) === ((v >> 8) & 0xff))) {
        m8.fill(v & 0xff, hD, hD + bytes);
      } else if (size === 4 && (hD & 3) === 0) {
        c.m32.fill(v, hD >> 2, (hD >> 2) + chunk);
      } else {
        for (let k = 0; k < bytes; k++) m8[hD + k] = v >> (8 * (k & (size - 1)));
      }
      if (isMovs) setIdx(c, i, ESI, si + bytes);
      setIdx(c, i, EDI, di + bytes);
    }
    n -= chunk;
    setCount(c, i, n);
    limit -= chunk;
    c.repExtra += chunk;
    if (n === 0) break;
    if (limit <= 0) {
      c.st[St.RIP] = (c.st[St.RIP] - i.len) & ipMask(i);
      c.stop = true;
      break;
    }
  }
  c.repExtra--; // the run loop counts the instruction itself once
  return true;
}
function lods(c: Cpu, i: Insn): void {
  repRun(c, i, i.size, dfDelta(c, i.size), 0, lodsBody);
}
function cmps(c: Cpu, i: Insn): void {
  repRun(c, i, i.size, dfDelta(c, i.size), 0, cmpsBody);
}
function scas(c: Cpu, i: Insn): void {
  repRun(c, i, i.size, dfDelta(c, i.size), c.getReg(0, i.size), scasBody);
}

// ---------------------------------------------------------------------------------------------
// I/O (SDM vol. 3, 25.1.3: IN/OUT/INS/OUTS exit under unconditional I/O exiting or the bitmaps)
// ---------------------------------------------------------------------------------------------
function ioAllowed(c: Cpu, port: number, size: number): void {
  if (c.ioNeedsBitmap()) {
    // The I/O permission bitmap in the TSS (SDM vol. 1, 19.5.2).
    const trBase = c.getSegBase(Seg.TR), trLimit = c.getSegLimit(Seg.TR);
    if (trLimit < 0x67) throw new CpuFault(Vec.GP, 0);
    const mapBase = c.rdLinSys32((trBase + 0x64) | 0) >>> 16;
    const byteOff = mapBase + (port >>> 3);
    if (byteOff + 1 > trLimit) throw new CpuFault(Vec.GP, 0);
    const la = (trBase + byteOff) | 0;
    const bitsWord = c.rdLinSys32(la) & 0xffff;
    const m = ((1 << size) - 1) << (port & 7);
    if (bitsWord & m) throw new CpuFault(Vec.GP, 0);
  }
}
/** The operand size of IN (AL/AX/EAX as destination) and OUT (as source). */
function inSize(i: Insn): number {
  return i.dk === REG ? (i.dr === 0 && i.opcode !== 0xe5 && i.opcode !== 0xed ? 1 : i.osz) : 1;
}
function outSize(i: Insn): number {
  return i.opcode === 0xe6 || i.opcode === 0xee ? 1 : i.osz;
}
/**
 * IN/OUT (not string): the exit qualification without the port (`ioQualBits`, as `Cpu.ioExit`
 * writes it), and the port of the immediate form (-1: DX). The JIT's exit sites precompute them
 * for `Cpu.ioExitFast`.
 */
export function ioQualification(i: Insn): { qual: number; port: number } {
  const isIn = i.exec === inOp;
  const size = isIn ? inSize(i) : outSize(i);
  const imm = isIn ? i.sk === IMM : i.dk === IMM;
  return { qual: ioQualBits(size, isIn, false, i.rep !== 0, imm), port: imm ? i.imm & 0xff : -1 };
}
function inOp(c: Cpu, i: Insn): void {
  const size = inSize(i);
  const imm = i.sk === IMM;
  const port = imm ? i.imm & 0xff : c.st16[EDX * 2];
  ioAllowed(c, port, size);
  if (c.ioExits(port, size)) { c.ioExit(i, port, size, true, false, imm); return; }
  c.setReg(0, size, -1); // no device without the VMM: an open bus reads all ones
}
function outOp(c: Cpu, i: Insn): void {
  const size = outSize(i);
  const imm = i.dk === IMM;
  const port = imm ? i.imm & 0xff : c.st16[EDX * 2];
  ioAllowed(c, port, size);
  if (c.ioExits(port, size)) { c.ioExit(i, port, size, false, false, imm); return; }
}
function ins(c: Cpu, i: Insn): void {
  const size = i.opcode === 0x6c ? 1 : i.osz === 4 ? 4 : 2;
  const port = c.st16[EDX * 2];
  ioAllowed(c, port, size);
  if (i.rep && getCount(c, i) === 0) return;
  c.checkWritable(Seg.ES);
  c.lin(Seg.ES, getIdx(c, i, EDI), size);
  if (c.ioExits(port, size)) { c.ioExit(i, port, size, true, true, false); return; }
}
function outs(c: Cpu, i: Insn): void {
  const size = i.opcode === 0x6e ? 1 : i.osz === 4 ? 4 : 2;
  const port = c.st16[EDX * 2];
  ioAllowed(c, port, size);
  if (i.rep && getCount(c, i) === 0) return;
  c.lin(i.seg, getIdx(c, i, ESI), size);
  if (c.ioExits(port, size)) { c.ioExit(i, port, size, false, true, false); return; }
}

// ---------------------------------------------------------------------------------------------
// Interrupts
// ---------------------------------------------------------------------------------------------
function intN(c: Cpu, i: Insn): void {
  if (c.v86 && iopl(c) < 3) throw new CpuFault(Vec.GP, 0);
  c.deliver(i.imm & 0xff, -1, true, i.len, 4);
}
function int3(c: Cpu, i: Insn): void {
  c.deliver(Vec.BP, -1, true, i.len, 6);
}
function int1(c: Cpu, i: Insn): void {
  c.deliver(Vec.DB, -1, true, i.len, 5);
}
function into(c: Cpu, i: Insn): void {
  if (c.getOF()) c.deliver(Vec.OF, -1, true, i.len, 6);
}
function iret(c: Cpu, i: Insn): void {
  const size = i.osz;
  if (!c.protectedMode) {
    const eip = c.peek(size) & ipMask(i);
    const cs = c.peek(size, size) & 0xffff;
    const fl = c.peek(size, 2 * size);
    if ((eip >>> 0) > 0xffff && size === 2) throw new CpuFault(Vec.GP, 0);
    c.loadSegReal(Seg.CS, cs);
    c.st[St.RIP] = eip;
    c.adjustSp(3 * size);
    const old = c.getFlags();
    const m = size === 4 ? 0x257fd5 : 0x7fd5; // VM, VIP, VIF stay (SDM IRET, real-address mode)
    c.setFlags((old & ~m) | (fl & m));
    return;
  }
  if (c.v86) iretV86(c, size);
  else iretProtected(c, size);
}

// ---------------------------------------------------------------------------------------------
// BCD and miscellany
// ---------------------------------------------------------------------------------------------
function daa(c: Cpu): void {
  const f = c.getFlags();
  const oldAl = c.st8[0], oldCf = f & Fl.CF;
  let al = oldAl, cf = 0, af = 0;
  if ((al & 0xf) > 9 || (f & Fl.AF)) { al = (al + 6) & 0xff; af = 1; cf = oldCf || oldAl > 0xf9 ? 1 : 0; }
  if (oldAl > 0x99 || oldCf) { al = (al + 0x60) & 0xff; cf = 1; }
  c.st8[0] = al;
  c.flagsResult(1, al, cf, 0, af);
}
function das(c: Cpu): void {
  const f = c.getFlags();
  const oldAl = c.st8[0], oldCf = f & Fl.CF;
  let al = oldAl, cf = 0, af = 0;
  if ((al & 0xf) > 9 || (f & Fl.AF)) { al = (al - 6) & 0xff; af = 1; cf = oldCf || oldAl < 6 ? 1 : 0; }
  if (oldAl > 0x99 || oldCf) { al = (al - 0x60) & 0xff; cf = 1; }
  c.st8[0] = al;
  c.flagsResult(1, al, cf, 0, af);
}
function aaa(c: Cpu): void {
  const f = c.getFlags();
  if ((c.st8[0] & 0xf) > 9 || (f & Fl.AF)) {
    c.st16[0] = c.st16[0] + 0x106;
    c.st8[0] &= 0xf;
    c.setFlags(f | Fl.AF | Fl.CF);
  } else {
    c.st8[0] &= 0xf;
    c.setFlags(f & ~(Fl.AF | Fl.CF));
  }
}
function aas(c: Cpu): void {
  const f = c.getFlags();
  if ((c.st8[0] & 0xf) > 9 || (f & Fl.AF)) {
    c.st16[0] = c.st16[0] - 6;
    c.st8[1] = c.st8[1] - 1;
    c.st8[0] &= 0xf;
    c.setFlags(f | Fl.AF | Fl.CF);
  } else {
    c.st8[0] &= 0xf;
    c.setFlags(f & ~(Fl.AF | Fl.CF));
  }
}
function aam(c: Cpu, i: Insn): void {
  const base = i.imm & 0xff;
  if (base === 0) throw new CpuFault(Vec.DE);
  const al = c.st8[0];
  c.st8[1] = Math.floor(al / base);
  c.st8[0] = al % base;
  c.flagsResult(1, c.st8[0], 0, 0);
}
function aad(c: Cpu, i: Insn): void {
  const base = i.imm & 0xff;
  const al = (c.st8[0] + c.st8[1] * base) & 0xff;
  c.st16[0] = al;
  c.flagsResult(1, al, 0, 0);
}
function salc(c: Cpu): void {
  c.st8[0] = c.getCF() ? 0xff : 0;
}
function xlat(c: Cpu, i: Insn): void {
  const off = ((i.asz === 4 ? c.st[EBX] : c.st16[EBX * 2]) + c.st8[0]) & (i.asz === 4 ? -1 : 0xffff);
  c.st8[0] = c.rd8(i.seg, off);
}
function bound(c: Cpu, i: Insn): void {
  const size = i.osz;
  const off = ea(c, i);
  const lo = signExt(c.rd(i.seg, off, size), size);
  const hi = signExt(c.rd(i.seg, (off + size) & (i.asz === 4 ? -1 : 0xffff), size), size);
  const v = signExt(c.getReg(i.dr, size), size);
  if (v < lo || v > hi) throw new CpuFault(Vec.BR);
}
function arpl(c: Cpu, i: Insn): void {
  if (!c.protectedMode || c.v86) throw new CpuFault(Vec.UD);
  let off = 0;
  if (i.dk === MEM) { off = ea(c, i); c.checkWritable(i.seg); }
  const d = i.dk === MEM ? c.rd16(i.seg, off) : c.getReg(i.dr, 2);
  const s = c.getReg(i.sr, 2);
  const f = c.getFlags();
  if ((d & 3) < (s & 3)) {
    writeDst(c, i, 2, (d & ~3) | (s & 3), off);
    c.setFlags(f | Fl.ZF);
  } else c.setFlags(f & ~Fl.ZF);
}
function loadFarPtr(c: Cpu, i: Insn): void {
  const off = ea(c, i);
  const v = c.rd(i.seg, off, i.osz);
  const sel = c.rd16(i.seg, (off + i.osz) & (i.asz === 4 ? -1 : 0xffff));
  c.loadSeg(i.sub, sel);
  c.setReg(i.dr, i.osz, v);
  if (i.sub === Seg.SS) c.st[St.INTERRUPTIBILITY] |= 2;
}
function movFromSeg(c: Cpu, i: Insn): void {
  if (i.sr > 5) throw new CpuFault(Vec.UD);
  const v = c.getSegSel(i.sr);
  if (i.dk === MEM) { const off = ea(c, i); c.checkWritable(i.seg); c.wr16(i.seg, off, v); }
  else setRegV(c, i, v); // a 32-bit register destination is zero-extended
}
function movToSeg(c: Cpu, i: Insn): void {
  if (i.dr === Seg.CS || i.dr > 5) throw new CpuFault(Vec.UD);
  const sel = i.sk === REG ? c.getReg(i.sr, 2) : c.rd16(i.seg, ea(c, i));
  c.loadSeg(i.dr, sel);
  if (i.dr === Seg.SS) c.st[St.INTERRUPTIBILITY] |= 2; // blocking by MOV SS (SDM 24.4.2)
}
function nop(): void {}
/** WAIT/FWAIT and the x87 escapes D8–DF: see x87/x87.ts. */
const wait = fwait;
const fpu = x87Escape;
function ud(): void {
  throw new CpuFault(Vec.UD);
}

// ---------------------------------------------------------------------------------------------
// System instructions and the ones that exit in VMX non-root operation (SDM vol. 3, 25.1)
// ---------------------------------------------------------------------------------------------
function hlt(c: Cpu, i: Insn): void {
  requireCpl0(c);
  if (c.cpuBased & CpuBased.HLT_EXITING) { c.exitAtInsn(i, ExitReason.HLT); return; }
  c.st[St.ACTIVITY] = 1;
  c.exitAtInsn(i, ExitReason.HLT);
}
function cpuid(c: Cpu, i: Insn): void {
  c.exitAtInsn(i, ExitReason.CPUID);
}
function vmcall(c: Cpu, i: Insn): void {
  c.exitAtInsn(i, ExitReason.VMCALL);
}
function rdtsc(c: Cpu, i: Insn): void {
  if ((c.cr4 & Cr4.TSD) && c.protectedMode && c.cpl > 0) throw new CpuFault(Vec.GP, 0);
  if (c.cpuBased & CpuBased.RDTSC_EXITING) { c.exitAtInsn(i, ExitReason.RDTSC); return; }
  // The guest TSC counts retired instructions (deterministic), plus TSC_OFFSET (SDM 25.3).
  // The run loop counts a block's instructions when the block ends; RDTSC ends its block, so the
  // instructions before it in the block are its position.
  let tsc = c.icount + i.pos;
  if (c.cpuBased & CpuBased.USE_TSC_OFFSETTING) tsc += c.vmcs!.read(VmcsField.TSC_OFFSET);
  c.st[EAX] = tsc % 4294967296;
  c.st[EDX] = Math.floor(tsc / 4294967296);
}
function rdmsr(c: Cpu, i: Insn): void {
  requireCpl0(c);
  c.exitAtInsn(i, ExitReason.MSR_READ);
}
function wrmsr(c: Cpu, i: Insn): void {
  requireCpl0(c);
  c.exitAtInsn(i, ExitReason.MSR_WRITE);
}
function invd(c: Cpu, i: Insn): void {
  requireCpl0(c);
  c.exitAtInsn(i, ExitReason.INVD);
}
function wbinvd(c: Cpu, i: Insn): void {
  requireCpl0(c);
  if (c.cpuBased & CpuBased.ACTIVATE_SECONDARY_CONTROLS &&
      c.vmcs!.read(VmcsField.SECONDARY_VM_EXEC_CONTROL) & CpuBased2.WBINVD_EXITING) {
    c.exitAtInsn(i, ExitReason.WBINVD);
  }
}
function invlpg(c: Cpu, i: Insn): void {
  requireCpl0(c);
  const off = ea(c, i);
  c.flushTlbPage((c.segBase[i.seg] + off) | 0);
  // The page may now map elsewhere: block links (followed without a TLB lookup) must not outlive it.
  c.linkEpoch++;
}
function movFromCr(c: Cpu, i: Insn): void {
  requireCpl0(c);
  const n = i.sr;
  let v: number;
  switch (n) {
    case 0: v = c.st[St.CR0]; break;
    case 2: v = c.st[St.CR2]; break;
    case 3: v = c.st[St.CR3]; break;
    case 4: v = c.st[St.CR4]; break;
    default: throw new CpuFault(Vec.UD);
  }
  c.st[i.dr << 1] = v;
}
function movToCr(c: Cpu, i: Insn): void {
  requireCpl0(c);
  c.setCr(i.dr, c.st[i.sr << 1]);
}
function movFromDr(c: Cpu, i: Insn): void {
  requireCpl0(c);
  const n = i.sr === 4 ? 6 : i.sr === 5 ? 7 : i.sr;
  c.st[i.dr << 1] = c.st[St.DR + n * 2];
}
function movToDr(c: Cpu, i: Insn): void {
  requireCpl0(c);
  const n = i.dr === 4 ? 6 : i.dr === 5 ? 7 : i.dr;
  c.st[St.DR + n * 2] = c.st[i.sr << 1];
}
function sdt(c: Cpu, i: Insn): void {
  const off = ea(c, i);
  const base = c.st[i.sub ? St.IDTR_BASE : St.GDTR_BASE];
  const limit = c.st[i.sub ? St.IDTR_LIMIT : St.GDTR_LIMIT];
  c.checkWritable(i.seg);
  c.lin(i.seg, off, 6);
  c.wr16(i.seg, off, limit);
  // With a 16-bit operand size the high byte is stored as 0 on 386+ (SDM SGDT).
  c.wr32(i.seg, (off + 2) & (i.asz === 4 ? -1 : 0xffff), i.osz === 4 ? base : base & 0xffffff);
}
function ldt(c: Cpu, i: Insn): void {
  requireCpl0(c);
  const off = ea(c, i);
  const limit = c.rd16(i.seg, off);
  let base = c.rd32(i.seg, (off + 2) & (i.asz === 4 ? -1 : 0xffff));
  if (i.osz === 2) base &= 0xffffff;
  c.st[i.sub ? St.IDTR_BASE : St.GDTR_BASE] = base;
  c.st[i.sub ? St.IDTR_LIMIT : St.GDTR_LIMIT] = limit;
}
function smsw(c: Cpu, i: Insn): void {
  const v = c.st[St.CR0];
  if (i.dk === MEM) { const off = ea(c, i); c.checkWritable(i.seg); c.wr16(i.seg, off, v); }
  else setRegV(c, i, i.osz === 4 ? v : v & 0xffff);
}
function lmsw(c: Cpu, i: Insn): void {
  requireCpl0(c);
  const v = readDst(c, i, 2);
  const cr0 = c.st[St.CR0];
  // LMSW cannot clear PE (SDM LMSW).
  c.setCr(0, (cr0 & ~0xe) | (v & 0xf) | (cr0 & 1));
}
function clts(c: Cpu): void {
  requireCpl0(c);
  c.st[St.CR0] &= ~Cr0.TS;
}
/**
 * Write the ModRM.rm register at the operand size for the Rv/Mw forms (SLDT, STR, SMSW), whose
 * table operand is Ew: a 32-bit operand size writes (zero-extends into) the whole register.
 */
function setRegV(c: Cpu, i: Insn, v: number): void {
  c.setReg(regIndex(i.rm, i.osz), i.osz, v);
}
function sldt(c: Cpu, i: Insn): void {
  if (!c.protectedMode || c.v86) throw new CpuFault(Vec.UD);
  const v = c.getSegSel(Seg.LDTR);
  if (i.dk === MEM) c.wr16(i.seg, ea(c, i), v); else setRegV(c, i, v);
}
function str(c: Cpu, i: Insn): void {
  if (!c.protectedMode || c.v86) throw new CpuFault(Vec.UD);
  const v = c.getSegSel(Seg.TR);
  if (i.dk === MEM) c.wr16(i.seg, ea(c, i), v); else setRegV(c, i, v);
}
function lldt(c: Cpu, i: Insn): void {
  if (!c.protectedMode || c.v86) throw new CpuFault(Vec.UD);
  requireCpl0(c);
  const sel = readDst(c, i, 2);
  if ((sel & 0xfffc) === 0) { c.setSeg(Seg.LDTR, sel, 0, 0, Ar.UNUSABLE); return; }
  if (sel & 4) throw new CpuFault(Vec.GP, sel & 0xfffc);
  const d = c.readDescriptor(sel, Vec.GP)!;
  const attr = descAttr(d[1]);
  if ((attr & Ar.S) || (attr & 0xf) !== 2) throw new CpuFault(Vec.GP, sel & 0xfffc);
  if (!(attr & Ar.P)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  c.setSeg(Seg.LDTR, sel, descBase(d[0], d[1]), descLimit(d[0], d[1]), attr);
}
function ltr(c: Cpu, i: Insn): void {
  if (!c.protectedMode || c.v86) throw new CpuFault(Vec.UD);
  requireCpl0(c);
  const sel = readDst(c, i, 2);
  if ((sel & 0xfffc) === 0 || (sel & 4)) throw new CpuFault(Vec.GP, sel & 0xfffc);
  const d = c.readDescriptor(sel, Vec.GP)!;
  const attr = descAttr(d[1]);
  const type = attr & 0xf;
  if ((attr & Ar.S) || (type !== 1 && type !== 9)) throw new CpuFault(Vec.GP, sel & 0xfffc);
  if (!(attr & Ar.P)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  // Mark the TSS busy in the GDT (SDM LTR).
  const la = (c.st[St.GDTR_BASE] + (sel & ~7) + 5) | 0;
  c.wrLin8(la, c.rdLin8(la) | 2);
  c.setSeg(Seg.TR, sel, descBase(d[0], d[1]), descLimit(d[0], d[1]), attr | 2);
}
/** Descriptor visibility for LAR/LSL/VERR/VERW: null when the selector fails the checks. */
function visibleDescriptor(c: Cpu, sel: number): [number, number] | null {
  if ((sel & 0xfffc) === 0) return null;
  let d: [number, number] | null;
  try {
    d = c.readDescriptor(sel, Vec.GP);
  } catch {
    return null;
  }
  if (!d) return null;
  const attr = descAttr(d[1]);
  const dpl = (attr >> Ar.DPL_SHIFT) & 3;
  const conformingCode = (attr & Ar.S) && (attr & Ar.CODE) && (attr & Ar.CONFORMING);
  if (!conformingCode && (dpl < c.cpl || dpl < (sel & 3))) return null;
  return d;
}
function larlsl(c: Cpu, i: Insn): void {
  if (!c.protectedMode || c.v86) throw new CpuFault(Vec.UD);
  const sel = readSrc(c, i, 2) & 0xffff;
  const d = visibleDescriptor(c, sel);
  const f = c.getFlags();
  let ok = d !== null;
  if (d && !(descAttr(d[1]) & Ar.S)) {
    const type = descAttr(d[1]) & 0xf;
    const okTypes = i.sub === 0 ? [1, 2, 3, 4, 5, 9, 11, 12] : [1, 2, 3, 9, 11];
    ok = okTypes.includes(type);
  }
  if (!ok || !d) { c.setFlags(f & ~Fl.ZF); return; }
  const v = i.sub === 0 ? d[1] & 0x00f0ff00 : descLimit(d[0], d[1]);
  c.setReg(i.dr, i.osz, i.osz === 2 ? v & 0xffff : v);
  c.setFlags(f | Fl.ZF);
}
function verrw(c: Cpu, i: Insn): void {
  if (!c.protectedMode || c.v86) throw new CpuFault(Vec.UD);
  const sel = readDst(c, i, 2);
  const d = visibleDescriptor(c, sel);
  const f = c.getFlags();
  let ok = false;
  if (d) {
    const a = descAttr(d[1]);
    if (a & Ar.S) ok = i.sub === 0 ? !(a & Ar.CODE) || (a & Ar.READABLE) !== 0 : !(a & Ar.CODE) && (a & Ar.WRITABLE) !== 0;
  }
  c.setFlags(ok ? f | Fl.ZF : f & ~Fl.ZF);
}

/** EMMS (0F 77): every x87 tag empty, after the MMX checks (runtime/cpu/x87/x87.ts). */
function emms(c: Cpu, _i: Insn): void {
  x87Emms(c);
}

/** Every semantic function, by the name the opcode table uses. */
export const semantics = {
  alu, test, incdec, not, neg, mov, movzx, movsx, lea, xchg, push, pop, pushSeg, popSeg, pusha, popa, cbw, cwd,
  jcc, setcc, cmovcc, jmp, jmpNear, call, callNear, ret, jmpFar, jmpFarIndirect, callFar, callFarIndirect, retFar,
  loop, jcxz, enter, leave, pushf, popf, sahf, lahf, flagOp, cli, sti, mul, imul1, imul2, imul3, div, idiv, shift,
  shd, bt, bsf, bsr, bswap, xadd, cmpxchg, cmpxchg8b, movs, stos, lods, cmps, scas, in: inOp, out: outOp, ins, outs,
  int: intN, int3, int1, into, iret, daa, das, aaa, aas, aam, aad, salc, xlat, bound, arpl, loadFarPtr, movFromSeg,
  movToSeg, nop, wait, fpu, ud, hlt, cpuid, vmcall, rdtsc, rdmsr, wrmsr, invd, wbinvd, invlpg, movFromCr, movToCr,
  movFromDr, movToDr, sdt, ldt, smsw, lmsw, clts, sldt, str, lldt, ltr, larlsl, verrw, emms,
  // MMX, SSE, SSE2, SSE3 (runtime/cpu/sse/)
  ...fpSemantics, ...intSemantics, ...moveSemantics,
} satisfies Record<string, (c: Cpu, i: Insn) => void>;
export type SemName = keyof typeof semantics;
