/**
 * Hardware task switching (SDM vol. 3, chapter 7): JMP or CALL to a TSS descriptor or a task gate,
 * an interrupt or exception through a task gate in the IDT, and IRET with EFLAGS.NT = 1. Both TSS
 * formats are handled: the 32-bit TSS (types 9 and 11) and the 16-bit TSS of the 286 (types 1 and 3).
 *
 * The switch follows SDM 7.3: every check that can fail in the old task's context comes first and
 * changes nothing (the new TSS is read whole before anything is written); then the old task's state
 * is saved, busy bits and the back link are updated, TR, CR0.TS, CR3, the registers and EFLAGS are
 * loaded; last, the LDT and segment descriptors are loaded, and a fault there (#TS/#NP/#SS with the
 * selector as error code) is delivered in the new task's context, as silicon does.
 */
import type { Cpu } from "./cpu.ts";
import { descAttr, descBase, descLimit } from "./descriptor.ts";
import { CpuFault } from "./fault.ts";
import * as stateMod from "./state.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { Ar, Cr0, Fl, Seg, St, Vec } = stateMod;

/** Why a task switch happens (SDM table 7-2: busy bit, NT and back-link rules differ). */
export const TaskSwitchReason = { JMP: 0, CALL: 1, IRET: 2, INT: 3 } as const;
export type TaskSwitchReasonT = typeof TaskSwitchReason[keyof typeof TaskSwitchReason];

/** System descriptor types (SDM table 3-2). */
export const SysType = {
  TSS16_AVAIL: 1, LDT: 2, TSS16_BUSY: 3, CALL_GATE16: 4, TASK_GATE: 5, INT_GATE16: 6, TRAP_GATE16: 7,
  TSS32_AVAIL: 9, TSS32_BUSY: 11, CALL_GATE32: 12, INT_GATE32: 14, TRAP_GATE32: 15,
} as const;

const EAX = 0;

/** Field offsets of the 32-bit TSS (SDM figure 7-2) and the 16-bit TSS (figure 7-11). */
const TSS32 = { LINK: 0, CR3: 0x1c, EIP: 0x20, EFLAGS: 0x24, GPR: 0x28, SEG: 0x48, LDT: 0x60, TRAP: 0x64, MIN_LIMIT: 0x67 } as const;
const TSS16 = { LINK: 0, EIP: 0x0e, EFLAGS: 0x10, GPR: 0x12, SEG: 0x22, LDT: 0x2a, MIN_LIMIT: 0x2b } as const;
/** TSS segment-selector order: ES, CS, SS, DS, FS, GS (the sreg encoding, Seg.*). */

/**
 * Switch to the task whose TSS selector is `sel`.
 * @param reason JMP, CALL, IRET or INT (an interrupt or exception through a task gate)
 * @param ext 1 when an external event (not software) caused it: the EXT bit of error codes
 * @param errorCode for an exception through a task gate: pushed on the new task's stack (-1: none)
 */
export function taskSwitch(c: Cpu, sel: number, reason: TaskSwitchReasonT, ext = 0, errorCode = -1): void {
  const st = c.st;
  const err = (sel & 0xfffc) + ext;
  // The TSS descriptor: in the GDT, a TSS type, present, big enough (SDM 7.2.2, 7.3 steps 2–4).
  if (sel & 4) throw new CpuFault(reason === TaskSwitchReason.IRET ? Vec.TS : Vec.GP, err);
  const d = c.readDescriptor(sel, reason === TaskSwitchReason.IRET ? Vec.TS : Vec.GP, ext);
  if (d === null) throw new CpuFault(reason === TaskSwitchReason.IRET ? Vec.TS : Vec.GP, ext);
  const attr = descAttr(d[1]);
  const type = attr & 0xf;
  const isTss = !(attr & Ar.S) && (type === 1 || type === 3 || type === 9 || type === 11);
  if (!isTss) throw new CpuFault(reason === TaskSwitchReason.IRET ? Vec.TS : Vec.GP, err);
  const busy = (type & 2) !== 0;
  if (reason === TaskSwitchReason.IRET ? !busy : busy) throw new CpuFault(reason === TaskSwitchReason.IRET ? Vec.TS : Vec.GP, err);
  if (!(attr & Ar.P)) throw new CpuFault(Vec.NP, err);
  const new32 = (type & 8) !== 0;
  const newBase = descBase(d[0], d[1]), newLimit = descLimit(d[0], d[1]);
  if (newLimit < (new32 ? TSS32.MIN_LIMIT : TSS16.MIN_LIMIT)) throw new CpuFault(Vec.TS, err);

  // Read the new task's state whole before changing anything (faults here belong to the old task).
  const rd = (off: number, size: number) => c.sysRead((newBase + off) | 0, size);
  const L = new32 ? TSS32 : TSS16, w = new32 ? 4 : 2;
  const nEip = rd(L.EIP, w) >>> 0;
  let nFlags = rd(L.EFLAGS, w);
  const nGpr: number[] = [];
  for (let r = 0; r < 8; r++) nGpr.push(rd(L.GPR + r * w, w));
  const nSeg: number[] = [];
  for (let s = 0; s < (new32 ? 6 : 4); s++) nSeg.push(rd(L.SEG + s * (new32 ? 4 : 2), 2));
  if (!new32) nSeg.push(0, 0); // a 16-bit TSS has no FS and GS: they are loaded null
  const nLdt = rd(L.LDT, 2);
  const nCr3 = new32 ? rd(TSS32.CR3, 4) : -1;
  if (!new32) nFlags &= 0xffff;

  // Save the old task's state into its TSS (SDM 7.3 step 7).
  const trSel = c.getSegSel(Seg.TR), trBase = c.getSegBase(Seg.TR);
  const old32 = (c.getSegAttr(Seg.TR) & 8) !== 0;
  const ow = old32 ? 4 : 2, OL = old32 ? TSS32 : TSS16;
  let oFlags = c.getFlags();
  if (reason === TaskSwitchReason.IRET) oFlags &= ~Fl.NT;
  const wr = (off: number, size: number, v: number) => c.sysWrite((trBase + off) | 0, size, v);
  wr(OL.EIP, ow, st[St.RIP]);
  wr(OL.EFLAGS, ow, oFlags);
  for (let r = 0; r < 8; r++) wr(OL.GPR + r * ow, ow, st[EAX + r * 2]);
  for (let s = 0; s < (old32 ? 6 : 4); s++) wr(OL.SEG + s * ow, 2, c.getSegSel(s));

  // Busy bits and the back link (SDM table 7-2).
  if (reason === TaskSwitchReason.JMP || reason === TaskSwitchReason.IRET) setBusy(c, trSel, false);
  if (reason === TaskSwitchReason.CALL || reason === TaskSwitchReason.INT) {
    c.sysWrite(newBase, 2, trSel);
    nFlags |= Fl.NT;
  }
  if (reason !== TaskSwitchReason.IRET) setBusy(c, sel, true);

  // Load the new task: TR, CR0.TS, CR3, registers, EFLAGS (SDM 7.3 steps 9–12).
  c.setSeg(Seg.TR, sel, newBase, newLimit, (attr | 2 | Ar.ACCESSED) & ~Ar.UNUSABLE);
  st[St.CR0] |= Cr0.TS;
  if (nCr3 !== -1 && (st[St.CR0] & Cr0.PG)) c.setCr(3, nCr3);
  else if (nCr3 !== -1) st[St.CR3] = nCr3;
  st[St.RIP] = new32 ? nEip : nEip & 0xffff;
  for (let r = 0; r < 8; r++) {
    if (new32) st[EAX + r * 2] = nGpr[r];
    else c.st16[(EAX + r * 2) * 2] = nGpr[r];
  }
  // A 16-bit TSS holds FLAGS only: the upper half of EFLAGS (VM among it) is cleared, so a switch
  // from a virtual-8086 task into a 16-bit task runs it in protected mode.
  c.setFlags(nFlags);
  // Selectors first, with nothing usable behind them, so a fault below leaves them as the TSS says.
  for (let s = 0; s < 6; s++) {
    const a = c.getSegAttr(s);
    c.setSeg(s, nSeg[s], c.getSegBase(s), c.getSegLimit(s), s === Seg.CS || s === Seg.SS ? a : a | Ar.UNUSABLE);
  }
  c.setSeg(Seg.LDTR, nLdt, 0, 0, Ar.UNUSABLE);
  c.refreshAllSegs();

  // Descriptor loads in the new task's context: a fault is delivered there.
  try {
    loadTaskSegments(c, nSeg, nLdt, ext);
    if (errorCode >= 0) c.push(errorCode, new32 ? 4 : 2);
    if ((st[St.RIP] >>> 0) > c.segHi[Seg.CS]) throw new CpuFault(Vec.GP, 0);
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    c.deliver(e.vector, e.errorCode, false);
  }
}

/** Set or clear the busy bit of a TSS descriptor in the GDT. */
function setBusy(c: Cpu, sel: number, busy: boolean): void {
  const la = (c.st[St.GDTR_BASE] + (sel & ~7) + 5) | 0;
  const b = c.sysRead(la, 1);
  c.sysWrite(la, 1, busy ? b | 2 : b & ~2);
}

/** LDTR, then CS, SS, DS, ES, FS, GS from the new TSS, with the task-switch checks (SDM 7.3, table 7-1). */
function loadTaskSegments(c: Cpu, sel: number[], ldt: number, ext: number): void {
  // LDT: null, or a present LDT descriptor in the GDT.
  if ((ldt & 0xfffc) !== 0) {
    if (ldt & 4) throw new CpuFault(Vec.TS, (ldt & 0xfffc) + ext);
    const d = c.readDescriptor(ldt, Vec.TS, ext)!;
    const a = descAttr(d[1]);
    if ((a & Ar.S) || (a & 0xf) !== 2) throw new CpuFault(Vec.TS, (ldt & 0xfffc) + ext);
    if (!(a & Ar.P)) throw new CpuFault(Vec.TS, (ldt & 0xfffc) + ext);
    c.setSeg(Seg.LDTR, ldt, descBase(d[0], d[1]), descLimit(d[0], d[1]), a);
  }
  if (c.st[St.RFLAGS] & Fl.VM) {
    // A virtual-8086 task: every segment register is loaded as in real mode (SDM 20.2.1).
    for (const s of [Seg.CS, Seg.SS, Seg.DS, Seg.ES, Seg.FS, Seg.GS]) c.loadSegReal(s, sel[s]);
    c.refreshAllSegs();
    return;
  }
  // CS: a present code segment; its RPL becomes the CPL.
  const cs = sel[Seg.CS];
  const tsCs = (cs & 0xfffc) + ext;
  if ((cs & 0xfffc) === 0) throw new CpuFault(Vec.TS, ext);
  const cd = c.readDescriptor(cs, Vec.TS, ext)!;
  const ca = descAttr(cd[1]);
  if (!(ca & Ar.S) || !(ca & Ar.CODE)) throw new CpuFault(Vec.TS, tsCs);
  const cpl = cs & 3, cdpl = (ca >> Ar.DPL_SHIFT) & 3;
  if (ca & Ar.CONFORMING ? cdpl > cpl : cdpl !== cpl) throw new CpuFault(Vec.TS, tsCs);
  if (!(ca & Ar.P)) throw new CpuFault(Vec.NP, tsCs);
  // SS: a present writable data segment at the new CPL.
  const ss = sel[Seg.SS];
  if ((ss & 0xfffc) === 0) throw new CpuFault(Vec.TS, ext);
  const sd = c.readDescriptor(ss, Vec.TS, ext)!;
  const sa = descAttr(sd[1]);
  const sdpl = (sa >> Ar.DPL_SHIFT) & 3;
  if (!(sa & Ar.S) || (sa & Ar.CODE) || !(sa & Ar.WRITABLE) || (ss & 3) !== cpl || sdpl !== cpl) {
    throw new CpuFault(Vec.TS, (ss & 0xfffc) + ext);
  }
  if (!(sa & Ar.P)) throw new CpuFault(Vec.SS, (ss & 0xfffc) + ext);
  c.setDescriptorAccessed(cs, cd);
  c.setSeg(Seg.CS, cs, descBase(cd[0], cd[1]), descLimit(cd[0], cd[1]), ca | Ar.ACCESSED);
  c.setDescriptorAccessed(ss, sd);
  c.setSeg(Seg.SS, ss, descBase(sd[0], sd[1]), descLimit(sd[0], sd[1]), sa | Ar.ACCESSED);
  // Data segments: null, or data / readable code visible at the new CPL.
  for (const s of [Seg.DS, Seg.ES, Seg.FS, Seg.GS]) {
    const v = sel[s];
    if ((v & 0xfffc) === 0) { c.setSeg(s, v, 0, 0, Ar.UNUSABLE); continue; }
    const dd = c.readDescriptor(v, Vec.TS, ext)!;
    const a = descAttr(dd[1]);
    const dpl = (a >> Ar.DPL_SHIFT) & 3;
    const bad = !(a & Ar.S) || ((a & Ar.CODE) && !(a & Ar.READABLE)) ||
      (!((a & Ar.CODE) && (a & Ar.CONFORMING)) && (dpl < cpl || dpl < (v & 3)));
    if (bad) throw new CpuFault(Vec.TS, (v & 0xfffc) + ext);
    if (!(a & Ar.P)) throw new CpuFault(Vec.NP, (v & 0xfffc) + ext);
    c.setDescriptorAccessed(v, dd);
    c.setSeg(s, v, descBase(dd[0], dd[1]), descLimit(dd[0], dd[1]), a | Ar.ACCESSED);
  }
}

/** IRET with EFLAGS.NT = 1: return to the task named by the back link of the current TSS (SDM IRET). */
export function taskReturn(c: Cpu): void {
  const link = c.sysRead(c.getSegBase(Seg.TR), 2);
  taskSwitch(c, link, TaskSwitchReason.IRET);
}
