/**
 * Protected-mode far control transfers (SDM vol. 2, JMP, CALL, RET and IRET; vol. 3, 5.8): far JMP
 * and CALL to code segments (conforming or not), through call gates (CALL to an inner ring switches
 * to the stack the TSS names and copies the gate's parameters), to TSS descriptors and task gates
 * (task.ts); far RET and IRET to the same or an outer ring; IRET to virtual-8086 mode and IRET with
 * NT = 1 (a task return).
 *
 * Every transfer checks before it changes state; the ones that push on a new stack save the state
 * they change and put it back when a push faults, so a fault leaves the instruction not executed.
 */
import type { Cpu } from "./cpu.ts";
import { descAttr, descBase, descLimit } from "./descriptor.ts";
import { CpuFault } from "./fault.ts";
import * as stateMod from "./state.ts";
import { SysType, TaskSwitchReason, taskReturn, taskSwitch } from "./task.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { Ar, Fl, SEG_WORDS, Seg, St, Vec } = stateMod;

const ESP = 8;

/** A snapshot of what a far transfer changes, to undo it when a later step faults. */
interface Saved { segs: Int32Array; esp: number; eip: number; flags: number }
function save(c: Cpu): Saved {
  return { segs: c.st.slice(St.SEG, St.SEG + 8 * SEG_WORDS), esp: c.st[ESP], eip: c.st[St.RIP], flags: c.getFlags() };
}
function restore(c: Cpu, s: Saved): void {
  c.st.set(s.segs, St.SEG);
  c.st[ESP] = s.esp;
  c.st[St.RIP] = s.eip;
  c.setFlags(s.flags);
  c.refreshAllSegs();
  c.linkEpoch++;
}

/** The descriptor of a far transfer's target selector; #GP(0) for a null one. */
function target(c: Cpu, sel: number): [number, number] {
  if ((sel & 0xfffc) === 0) throw new CpuFault(Vec.GP, 0);
  return c.readDescriptor(sel, Vec.GP)!;
}

/** Checks of a call gate (SDM CALL, "call gate"), returning the code segment it names and its descriptor. */
function viaGate(c: Cpu, sel: number, gate: [number, number]): { cs: number; cd: [number, number]; ca: number; offset: number; size: number; params: number } {
  const ga = descAttr(gate[1]);
  const gdpl = (ga >> Ar.DPL_SHIFT) & 3;
  if (gdpl < c.cpl || gdpl < (sel & 3)) throw new CpuFault(Vec.GP, sel & 0xfffc);
  if (!(ga & Ar.P)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  const cs = gate[0] >>> 16;
  const size = (ga & 0xf) === SysType.CALL_GATE32 ? 4 : 2;
  const offset = size === 4 ? ((gate[1] & 0xffff0000) | (gate[0] & 0xffff)) >>> 0 : gate[0] & 0xffff;
  if ((cs & 0xfffc) === 0) throw new CpuFault(Vec.GP, 0);
  const cd = c.readDescriptor(cs, Vec.GP)!;
  const ca = descAttr(cd[1]);
  if (!(ca & Ar.S) || !(ca & Ar.CODE) || ((ca >> Ar.DPL_SHIFT) & 3) > c.cpl) throw new CpuFault(Vec.GP, cs & 0xfffc);
  if (!(ca & Ar.P)) throw new CpuFault(Vec.NP, cs & 0xfffc);
  return { cs, cd, ca, offset, size, params: gate[1] & 0x1f };
}

/** Load CS from a checked descriptor at privilege `cpl` (RPL := cpl). */
function setCs(c: Cpu, sel: number, d: [number, number], attr: number, cpl: number, eip: number): void {
  const limit = descLimit(d[0], d[1]);
  if ((eip >>> 0) > limit) throw new CpuFault(Vec.GP, 0);
  c.setDescriptorAccessed(sel, d);
  c.setSeg(Seg.CS, (sel & 0xfffc) | cpl, descBase(d[0], d[1]), limit, attr | Ar.ACCESSED);
  c.st[St.RIP] = eip;
}

/** Far JMP in protected mode: a code segment, a call gate (no privilege change), a TSS or a task gate. */
export function farJump(c: Cpu, sel: number, eip: number): void {
  const d = target(c, sel);
  const a = descAttr(d[1]);
  if (a & Ar.S) { c.loadCs(sel, eip); return; }
  switch (a & 0xf) {
    case SysType.CALL_GATE16: case SysType.CALL_GATE32: {
      const g = viaGate(c, sel, d);
      const dpl = (g.ca >> Ar.DPL_SHIFT) & 3;
      // JMP through a call gate never changes privilege (SDM JMP).
      if (!(g.ca & Ar.CONFORMING) && dpl !== c.cpl) throw new CpuFault(Vec.GP, g.cs & 0xfffc);
      setCs(c, g.cs, g.cd, g.ca, c.cpl, g.size === 2 ? g.offset & 0xffff : g.offset);
      return;
    }
    case SysType.TASK_GATE: taskViaGate(c, sel, d, TaskSwitchReason.JMP); return;
    case SysType.TSS16_AVAIL: case SysType.TSS32_AVAIL: case SysType.TSS16_BUSY: case SysType.TSS32_BUSY:
      tssCheck(c, sel, a);
      taskSwitch(c, sel, TaskSwitchReason.JMP);
      return;
    default: throw new CpuFault(Vec.GP, sel & 0xfffc);
  }
}

function tssCheck(c: Cpu, sel: number, a: number): void {
  const dpl = (a >> Ar.DPL_SHIFT) & 3;
  if (dpl < c.cpl || dpl < (sel & 3)) throw new CpuFault(Vec.GP, sel & 0xfffc);
}
function taskViaGate(c: Cpu, sel: number, gate: [number, number], reason: 0 | 1): void {
  const ga = descAttr(gate[1]);
  const gdpl = (ga >> Ar.DPL_SHIFT) & 3;
  if (gdpl < c.cpl || gdpl < (sel & 3)) throw new CpuFault(Vec.GP, sel & 0xfffc);
  if (!(ga & Ar.P)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  taskSwitch(c, gate[0] >>> 16, reason);
}

/**
 * Far CALL in protected mode. `size` is the operand size (the size of the pushed CS:EIP for a
 * direct call; a call gate's own size decides for calls through it).
 */
export function farCall(c: Cpu, sel: number, eip: number, size: number): void {
  const d = target(c, sel);
  const a = descAttr(d[1]);
  const oldCs = c.getSegSel(Seg.CS), oldEip = c.st[St.RIP];
  if (a & Ar.S) {
    // Check the frame fits before changing CS (restartable on #SS).
    const sp = c.stack32 ? (c.st[ESP] - 2 * size) | 0 : (c.st16[ESP * 2] - 2 * size) & 0xffff;
    c.lin(Seg.SS, sp, 2 * size);
    const s = save(c);
    c.loadCs(sel, eip);
    pushOrUndo(c, s, [oldCs, oldEip], size);
    return;
  }
  switch (a & 0xf) {
    case SysType.CALL_GATE16: case SysType.CALL_GATE32: break;
    case SysType.TASK_GATE: taskViaGate(c, sel, d, TaskSwitchReason.CALL); return;
    case SysType.TSS16_AVAIL: case SysType.TSS32_AVAIL: case SysType.TSS16_BUSY: case SysType.TSS32_BUSY:
      tssCheck(c, sel, a);
      taskSwitch(c, sel, TaskSwitchReason.CALL);
      return;
    default: throw new CpuFault(Vec.GP, sel & 0xfffc);
  }
  const g = viaGate(c, sel, d);
  const dpl = (g.ca >> Ar.DPL_SHIFT) & 3;
  const target32 = g.size === 4 ? g.offset : g.offset & 0xffff;
  if ((g.ca & Ar.CONFORMING) || dpl === c.cpl) {
    const sp = c.stack32 ? (c.st[ESP] - 2 * g.size) | 0 : (c.st16[ESP * 2] - 2 * g.size) & 0xffff;
    c.lin(Seg.SS, sp, 2 * g.size);
    const s = save(c);
    setCs(c, g.cs, g.cd, g.ca, c.cpl, target32);
    pushOrUndo(c, s, [oldCs, oldEip], g.size);
    return;
  }
  // To an inner ring: the new stack from the TSS, then SS:ESP, the parameters, CS:EIP (SDM 5.8.5).
  const { ss, esp, sd, sa } = innerStack(c, dpl, 0);
  const oldSs = c.getSegSel(Seg.SS), oldEsp = c.st[ESP];
  const params: number[] = [];
  for (let k = g.params - 1; k >= 0; k--) params.push(c.peek(g.size, k * g.size));
  if ((target32 >>> 0) > descLimit(g.cd[0], g.cd[1])) throw new CpuFault(Vec.GP, 0);
  const s = save(c);
  try {
    c.setSeg(Seg.SS, (ss & 0xfffc) | dpl, descBase(sd[0], sd[1]), descLimit(sd[0], sd[1]), sa | Ar.ACCESSED);
    c.st[ESP] = esp;
    if (!c.stack32) c.st[ESP] &= 0xffff;
    // The whole frame must fit the new stack: #SS(new SS) otherwise.
    const frame = (4 + g.params) * g.size;
    const top = c.stack32 ? (esp - frame) | 0 : (esp - frame) & 0xffff;
    try { c.lin(Seg.SS, top, frame); } catch { throw new CpuFault(Vec.SS, ss & 0xfffc); }
    setCs(c, g.cs, g.cd, g.ca, dpl, target32);
    c.push(oldSs, g.size);
    c.push(oldEsp, g.size);
    for (const p of params) c.push(p, g.size);
    c.push(oldCs, g.size);
    c.push(oldEip, g.size);
    c.setDescriptorAccessed(ss, sd);
  } catch (e) {
    restore(c, s);
    throw e;
  }
  c.updateCpl();
}

function pushOrUndo(c: Cpu, s: Saved, vals: number[], size: number): void {
  try {
    for (const v of vals) c.push(v, size);
  } catch (e) {
    restore(c, s);
    throw e;
  }
}

/**
 * The stack for privilege level `dpl` from the current TSS, checked (SDM 6.12.1, CALL "call gate
 * to more privilege"): #TS(TSS selector) past the TSS limit, #TS(SS selector) for a bad stack
 * segment, #SS(SS selector) when it is not present.
 */
export function innerStack(c: Cpu, dpl: number, ext: number): { ss: number; esp: number; sd: [number, number]; sa: number } {
  const trBase = c.getSegBase(Seg.TR), trLimit = c.getSegLimit(Seg.TR);
  const tss32 = (c.getSegAttr(Seg.TR) & 8) !== 0;
  const off = tss32 ? 4 + dpl * 8 : 2 + dpl * 4;
  if (off + (tss32 ? 5 : 3) > trLimit) throw new CpuFault(Vec.TS, (c.getSegSel(Seg.TR) & 0xfffc) + ext);
  const esp = tss32 ? c.sysRead((trBase + off) | 0, 4) : c.sysRead((trBase + off) | 0, 2);
  const ss = c.sysRead((trBase + off + (tss32 ? 4 : 2)) | 0, 2);
  if ((ss & 0xfffc) === 0) throw new CpuFault(Vec.TS, ext);
  const sd = c.readDescriptor(ss, Vec.TS, ext)!;
  const sa = descAttr(sd[1]);
  const sdpl = (sa >> Ar.DPL_SHIFT) & 3;
  if ((ss & 3) !== dpl || sdpl !== dpl || !(sa & Ar.S) || (sa & Ar.CODE) || !(sa & Ar.WRITABLE)) {
    throw new CpuFault(Vec.TS, (ss & 0xfffc) + ext);
  }
  if (!(sa & Ar.P)) throw new CpuFault(Vec.SS, (ss & 0xfffc) + ext);
  return { ss, esp, sd, sa };
}

/** Checks of the code segment a far RET or IRET returns to (SDM RET, "return to same/outer level"). */
function returnCs(c: Cpu, sel: number): { d: [number, number]; a: number } {
  if ((sel & 0xfffc) === 0) throw new CpuFault(Vec.GP, 0);
  const d = c.readDescriptor(sel, Vec.GP)!;
  const a = descAttr(d[1]);
  const rpl = sel & 3, dpl = (a >> Ar.DPL_SHIFT) & 3;
  if (!(a & Ar.S) || !(a & Ar.CODE)) throw new CpuFault(Vec.GP, sel & 0xfffc);
  if (rpl < c.cpl) throw new CpuFault(Vec.GP, sel & 0xfffc);
  if (a & Ar.CONFORMING ? dpl > rpl : dpl !== rpl) throw new CpuFault(Vec.GP, sel & 0xfffc);
  if (!(a & Ar.P)) throw new CpuFault(Vec.NP, sel & 0xfffc);
  return { d, a };
}
/** Checks of the stack segment a return to an outer level loads. */
function returnSs(c: Cpu, ss: number, rpl: number): { d: [number, number]; a: number } {
  if ((ss & 0xfffc) === 0) throw new CpuFault(Vec.GP, 0);
  const d = c.readDescriptor(ss, Vec.GP)!;
  const a = descAttr(d[1]);
  if ((ss & 3) !== rpl || ((a >> Ar.DPL_SHIFT) & 3) !== rpl || !(a & Ar.S) || (a & Ar.CODE) || !(a & Ar.WRITABLE)) {
    throw new CpuFault(Vec.GP, ss & 0xfffc);
  }
  if (!(a & Ar.P)) throw new CpuFault(Vec.SS, ss & 0xfffc);
  return { d, a };
}

/** After a return to an outer level, data segments the new CPL may not use become null (SDM RET). */
function dropDataSegsAbovePl(c: Cpu): void {
  for (const s of [Seg.ES, Seg.DS, Seg.FS, Seg.GS]) {
    const a = c.getSegAttr(s);
    const dpl = (a >> Ar.DPL_SHIFT) & 3;
    const conformingCode = (a & Ar.CODE) && (a & Ar.CONFORMING);
    if (!(a & Ar.UNUSABLE) && !conformingCode && dpl < c.cpl) c.setSeg(s, 0, 0, 0, Ar.UNUSABLE);
  }
}

/** Return to an outer level: CS:EIP, then SS:ESP (already popped by the caller's peeks). */
function returnOuter(c: Cpu, cs: number, eip: number, ss: number, esp: number, ca: { d: [number, number]; a: number }): void {
  const rpl = cs & 3;
  const sd = returnSs(c, ss, rpl);
  if ((eip >>> 0) > descLimit(ca.d[0], ca.d[1])) throw new CpuFault(Vec.GP, 0);
  c.setDescriptorAccessed(cs, ca.d);
  c.setSeg(Seg.CS, cs, descBase(ca.d[0], ca.d[1]), descLimit(ca.d[0], ca.d[1]), ca.a | Ar.ACCESSED);
  c.setDescriptorAccessed(ss, sd.d);
  c.setSeg(Seg.SS, ss, descBase(sd.d[0], sd.d[1]), descLimit(sd.d[0], sd.d[1]), sd.a | Ar.ACCESSED);
  c.st[St.RIP] = eip;
  if (c.stack32) c.st[ESP] = esp; else c.st16[ESP * 2] = esp;
  c.updateCpl();
  dropDataSegsAbovePl(c);
}

/** Far RET (with `extra` bytes of parameters to release) in protected mode. */
export function farReturn(c: Cpu, size: number, extra: number): void {
  const ipm = size === 4 ? -1 : 0xffff;
  const eip = c.peek(size) & ipm;
  const cs = c.peek(size, size) & 0xffff;
  const ca = returnCs(c, cs);
  if ((cs & 3) === c.cpl) {
    c.loadCs(cs, eip);
    c.adjustSp(2 * size + extra);
    return;
  }
  const esp = c.peek(size, 2 * size + extra);
  const ss = c.peek(size, 3 * size + extra) & 0xffff;
  returnOuter(c, cs, eip, ss, (esp + extra) | 0, ca);
}

/** IRET in protected mode (not virtual-8086): task return, return to v86, same or outer level (SDM IRET). */
export function iretProtected(c: Cpu, size: number): void {
  if (c.st[St.RFLAGS] & Fl.NT) { taskReturn(c); return; }
  const eip = c.peek(size) >>> 0;
  const cs = c.peek(size, size) & 0xffff;
  const fl = c.peek(size, 2 * size);
  if (size === 4 && (fl & Fl.VM) && c.cpl === 0) { returnToV86(c, eip, cs, fl); return; }
  const ca = returnCs(c, cs);
  const oldCpl = c.cpl;
  const ipm = size === 4 ? -1 : 0xffff;
  if ((cs & 3) === c.cpl) {
    c.loadCs(cs, eip & ipm);
    c.adjustSp(3 * size);
  } else {
    const esp = c.peek(size, 3 * size);
    const ss = c.peek(size, 4 * size) & 0xffff;
    returnOuter(c, cs, eip & ipm, ss, esp, ca);
  }
  // EFLAGS by the privilege the IRET ran at (SDM IRET: IOPL at CPL 0, IF at CPL ≤ IOPL; VM, VIF, VIP kept).
  const old = c.getFlags();
  let m = size === 4 ? 0x257fd5 & ~(Fl.VM | Fl.VIF | Fl.VIP) : 0x7fd5;
  if (oldCpl > 0) m &= ~Fl.IOPL;
  if (oldCpl > ((old >> 12) & 3)) m &= ~Fl.IF;
  c.setFlags((old & ~m) | (fl & m));
}

/** IRET from CPL 0 with EFLAGS.VM set in the image: into virtual-8086 mode (SDM IRET, "RETURN-TO-VIRTUAL-8086-MODE"). */
function returnToV86(c: Cpu, eip: number, cs: number, fl: number): void {
  const esp = c.peek(4, 12);
  const ss = c.peek(4, 16) & 0xffff;
  const es = c.peek(4, 20) & 0xffff, ds = c.peek(4, 24) & 0xffff, fs = c.peek(4, 28) & 0xffff, gs = c.peek(4, 32) & 0xffff;
  c.setFlags(fl);
  for (const [s, v] of [[Seg.CS, cs], [Seg.SS, ss], [Seg.ES, es], [Seg.DS, ds], [Seg.FS, fs], [Seg.GS, gs]]) c.loadSegReal(s, v);
  c.refreshAllSegs();
  c.st[ESP] = esp;
  c.st[St.RIP] = eip & 0xffff;
}

/** IRET in virtual-8086 mode with IOPL 3: a real-mode-style return that cannot change IOPL or VM (SDM IRET). */
export function iretV86(c: Cpu, size: number): void {
  if (((c.st[St.RFLAGS] >> 12) & 3) < 3) throw new CpuFault(Vec.GP, 0);
  const eip = c.peek(size) >>> 0;
  const cs = c.peek(size, size) & 0xffff;
  const fl = c.peek(size, 2 * size);
  if (size === 2 ? false : eip > 0xffff) throw new CpuFault(Vec.GP, 0);
  c.loadSegReal(Seg.CS, cs);
  c.st[St.RIP] = eip & 0xffff;
  c.adjustSp(3 * size);
  const old = c.getFlags();
  const m = (size === 4 ? 0x257fd5 : 0x7fd5) & ~(Fl.IOPL | Fl.VM | Fl.VIF | Fl.VIP);
  c.setFlags((old & ~m) | (fl & m));
}
