/**
 * The x87 FPU of a Pentium 4: every instruction of the escape opcodes D8–DF and FWAIT (9B), over
 * the state in the vCPU state block (fpu_state.ts) and the arithmetic of softfloat.ts and
 * transcendental.ts. Section numbers cite the Intel SDM (vol. 1 chapter 8 for the FPU's
 * architecture, vol. 2 for the instruction pages, vol. 3 2.5 for CR0).
 *
 * The restart rule of ops.ts holds: operands are read and results computed first, memory is written
 * next, and the FPU registers, tags, TOP and status word are committed last, so a fault (#PF, #GP)
 * or an MMIO exit leaves the instruction not executed.
 *
 * Unmasked exceptions: the instruction sets the flags and ES (and B); the next waiting FPU
 * instruction (or FWAIT, or an MMX instruction) raises #MF before it executes when CR0.NE = 1
 * (SDM vol. 1, 8.7.1). With CR0.NE = 0 it asserts FERR# (the PC wires it to IRQ13 of the 8259
 * pair) and freezes: here the FERR# callback raises the line and the instruction ends in an
 * external-interrupt VM exit without executing, so the kernel can deliver IRQ13 before it; if it
 * comes back with the error still pending (no handler ran: IF = 0, IRQ13 masked, or no in-kernel
 * irqchip) it goes on as if IGNNE# were asserted, rather than hang the vCPU (SDM vol. 1, D.2.2).
 */
import type { Cpu } from "../cpu.ts";
import type { Insn } from "../insn.ts";
import { CpuFault } from "../fault.ts";
import * as stateMod from "../state.ts";
import * as vmcsMod from "../vmcs.ts";
import * as fpuStateMod from "../fpu_state.ts";
import * as sf from "./softfloat.ts";
import { type F80, type FpEnv, INDEFINITE } from "./softfloat.ts";
import * as tr from "./transcendental.ts";
import { checkMmx } from "../sse/common.ts";

const { Cr0, Fl, St, Vec } = stateMod;
const { ExitReason } = vmcsMod;
const { Fcw, Fpu, Fsw, Tag } = fpuStateMod;
const { Kind } = sf;

const FCW16 = Fpu.FCW >> 1, FSW16 = Fpu.FSW >> 1, FTW16 = Fpu.FTW >> 1, FOP16 = Fpu.FOP >> 1;
const FIP32 = Fpu.FIP >> 2, FCS16 = Fpu.FCS >> 1, FDP32 = Fpu.FDP >> 2, FDS16 = Fpu.FDS >> 1;

// ---------------------------------------------------------------------------------------------
// Registers, tags and TOP
// ---------------------------------------------------------------------------------------------

/**
 * The significands as 64-bit elements (one BigInt read or write each, instead of assembling two
 * words): a view of the vCPU's state block, remade when the memory grows or another vCPU asks.
 */
let sigView: BigUint64Array | null = null;
let sigBuf: ArrayBufferLike | null = null;
let sigArea = -1;
function sigs(c: Cpu): BigUint64Array {
  const buf = c.memory.buffer;
  if (buf !== sigBuf || c.area !== sigArea || sigView === null) {
    sigView = new BigUint64Array(buf, c.area + Fpu.REGS, 16);
    sigBuf = buf;
    sigArea = c.area;
  }
  return sigView;
}
/** Physical register Ri's fields. */
export function readPhys(c: Cpu, p: number): F80 {
  const se = c.st16[(Fpu.REGS + 16 * p + 8) >> 1];
  return { sign: se >> 15, exp: se & 0x7fff, sig: sigs(c)[2 * p] };
}
/** Write physical register Ri (the tag is the caller's). */
export function writePhys(c: Cpu, p: number, v: F80): void {
  sigs(c)[2 * p] = v.sig;
  c.st16[(Fpu.REGS + 16 * p + 8) >> 1] = (v.sign << 15) | v.exp;
}
/** The tag a value gets from its contents (SDM vol. 1, 8.1.7). */
export function tagOf(v: F80): number {
  if (v.exp === 0) return v.sig === 0n ? Tag.ZERO : Tag.SPECIAL;
  if (v.exp === 0x7fff || !(v.sig & (1n << 63n))) return Tag.SPECIAL;
  return Tag.VALID;
}
function top(c: Cpu): number {
  return (c.st16[FSW16] >> 11) & 7;
}
function setTop(c: Cpu, t: number): void {
  c.st16[FSW16] = (c.st16[FSW16] & ~Fsw.TOP_MASK) | ((t & 7) << 11);
}
function tagP(c: Cpu, p: number): number {
  return (c.st16[FTW16] >> (2 * p)) & 3;
}
function setTagP(c: Cpu, p: number, t: number): void {
  c.st16[FTW16] = (c.st16[FTW16] & ~(3 << (2 * p))) | (t << (2 * p));
}
const phys = (c: Cpu, i: number): number => (top(c) + i) & 7;
function empty(c: Cpu, i: number): boolean {
  return tagP(c, phys(c, i)) === Tag.EMPTY;
}
function getSt(c: Cpu, i: number): F80 {
  return readPhys(c, phys(c, i));
}
function putSt(c: Cpu, i: number, v: F80): void {
  const p = phys(c, i);
  writePhys(c, p, v);
  setTagP(c, p, tagOf(v));
}
function push(c: Cpu, v: F80): void {
  const t = (top(c) - 1) & 7;
  setTop(c, t);
  writePhys(c, t, v);
  setTagP(c, t, tagOf(v));
}
function pop(c: Cpu): void {
  const t = top(c);
  setTagP(c, t, Tag.EMPTY);
  setTop(c, t + 1);
}

/** The register stack as ST(0)..ST(7), for tests and tools. */
export function fpuStack(c: Cpu): { empty: boolean; value: F80 }[] {
  const out = [];
  for (let k = 0; k < 8; k++) out.push({ empty: empty(c, k), value: getSt(c, k) });
  return out;
}

/** The x87 state (FCW through R7, state block bytes 0x400–0x49F) as hex, for differential checks. */
export function fpuStateHex(c: Cpu): string {
  let h = "";
  for (let k = Fpu.FCW; k < Fpu.REGS + 16 * 8; k++) h += c.st8[k].toString(16).padStart(2, "0");
  return h;
}

/** The FPU state after RESET (SDM vol. 3, table 9-1): FCW 0040H, FSW 0, FTW all tags zero, registers +0. */
export function fpuReset(c: Cpu): void {
  c.st8.fill(0, Fpu.FCW, Fpu.REGS + 16 * 8);
  c.st16[FCW16] = 0x0040;
  c.st16[FTW16] = 0x5555;
  c.ferrAsserted = false;
}

/** FNINIT's state (SDM FINIT/FNINIT): FCW 037FH, FSW 0, all tags empty, pointers and opcode 0. */
function init(c: Cpu): void {
  c.st16[FCW16] = Fcw.INIT;
  c.st16[FSW16] = 0;
  c.st16[FTW16] = 0xffff;
  c.st16[FOP16] = 0;
  c.st[FIP32] = 0;
  c.st16[FCS16] = 0;
  c.st[FDP32] = 0;
  c.st16[FDS16] = 0;
  ferrUpdate(c);
}

// ---------------------------------------------------------------------------------------------
// Status word, exceptions, #MF and FERR#
// ---------------------------------------------------------------------------------------------

function env(c: Cpu): FpEnv {
  return sf.newEnv(c.st16[FCW16]);
}
/** ES and B from the flags and masks (SDM vol. 1, 8.1.3.1). */
function summary(fsw: number, fcw: number): number {
  return fsw & ~fcw & Fsw.EXC ? fsw | Fsw.ES | Fsw.B : fsw & ~(Fsw.ES | Fsw.B);
}
/** Merge an operation's flags and C1 into FSW. */
function finish(c: Cpu, e: FpEnv): void {
  let fsw = c.st16[FSW16] | e.flags;
  fsw = e.c1 ? fsw | Fsw.C1 : fsw & ~Fsw.C1;
  c.st16[FSW16] = summary(fsw, c.st16[FCW16]);
}
function ferrUpdate(c: Cpu): void {
  if (c.ferrAsserted && !(c.st16[FSW16] & Fsw.ES)) {
    c.ferrAsserted = false;
    c.ferr?.(false);
  }
}
/** Stack underflow: IE and SF, C1 = 0. */
function underflow(e: FpEnv): void {
  e.flags |= Fsw.IE | Fsw.SF;
  e.c1 = 0;
}
/** Stack overflow: IE and SF, C1 = 1. */
function overflow(e: FpEnv): void {
  e.flags |= Fsw.IE | Fsw.SF;
  e.c1 = 1;
}

/**
 * Before a waiting instruction: a pending unmasked exception is #MF (CR0.NE = 1) or FERR# (NE = 0).
 * @returns true when the instruction must not run now (it ended in a VM exit for IRQ13)
 */
function pendingError(c: Cpu, i: Insn): boolean {
  if (!(c.st16[FSW16] & Fsw.ES)) return false;
  if (c.cr0 & Cr0.NE) throw new CpuFault(Vec.MF);
  if (c.ferr === null) return false;
  if (c.ferrAsserted) {
    // Back after the kernel handled the exit without an interrupt clearing the error: go on as
    // with IGNNE#. Not yet (the JIT undid the exit of a callout and the interpreter runs it again): exit.
    if (c.ferrExitTaken) return false;
  } else {
    c.ferrAsserted = true;
    c.ferrExitTaken = false;
    c.ferr(true);
  }
  c.st[St.RIP] = (c.st[St.RIP] - i.len) & (c.code32 ? -1 : 0xffff);
  c.recordExit(ExitReason.EXTERNAL_INTERRUPT, 0);
  return true;
}

/** FWAIT (9B): #NM when CR0.MP and TS are both set, then any pending unmasked exception. */
export function fwait(c: Cpu, i: Insn): void {
  if ((c.cr0 & (Cr0.MP | Cr0.TS)) === (Cr0.MP | Cr0.TS)) throw new CpuFault(Vec.NM);
  pendingError(c, i);
}

// ---------------------------------------------------------------------------------------------
// Memory operands
// ---------------------------------------------------------------------------------------------

function ea(c: Cpu, i: Insn): number {
  let a = i.disp;
  if (i.base >= 0) a += c.st[i.base << 1];
  if (i.index >= 0) a += c.st[i.index << 1] << i.scale;
  return i.asz === 4 ? a | 0 : a & 0xffff;
}
function offAt(i: Insn, off: number, k: number): number {
  return i.asz === 4 ? (off + k) | 0 : (off + k) & 0xffff;
}
function readBytes(c: Cpu, i: Insn, off: number, n: number): number[] {
  c.lin(i.seg, off, n);
  const out = new Array<number>(n);
  for (let k = 0; k < n; k++) out[k] = c.rd8(i.seg, offAt(i, off, k));
  return out;
}
function readU64(c: Cpu, i: Insn, off: number): bigint {
  c.lin(i.seg, off, 8);
  const lo = c.rd32(i.seg, off) >>> 0, hi = c.rd32(i.seg, offAt(i, off, 4)) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(lo);
}
/** Check that n bytes at seg:off can be written (segment and both pages) before writing any. */
function checkWrite(c: Cpu, i: Insn, off: number, n: number): void {
  c.checkWritable(i.seg);
  const la = c.lin(i.seg, off, n);
  c.translate(la, 1, true);
  c.translate((la + n - 1) | 0, 1, true);
}
function writeBytes(c: Cpu, i: Insn, off: number, b: number[]): void {
  checkWrite(c, i, off, b.length);
  for (let k = 0; k < b.length; k++) c.wr8(i.seg, offAt(i, off, k), b[k]);
}
function u64Bytes(v: bigint, n: number): number[] {
  const out = new Array<number>(n);
  for (let k = 0; k < n; k++) out[k] = Number((v >> BigInt(8 * k)) & 0xffn);
  return out;
}
function f80Bytes(v: F80): number[] {
  const b = u64Bytes(v.sig, 8);
  const se = (v.sign << 15) | v.exp;
  b.push(se & 0xff, se >> 8);
  return b;
}
function bytesF80(b: number[]): F80 {
  let sig = 0n;
  for (let k = 7; k >= 0; k--) sig = (sig << 8n) | BigInt(b[k]);
  const se = b[8] | (b[9] << 8);
  return { sign: se >> 15, exp: se & 0x7fff, sig };
}
function signedInt(v: bigint, bits: number): bigint {
  return BigInt.asIntN(bits, v);
}

/** A memory operand's value as a register value: m32/m64 real, m16/m32/m64 integer, m80 real/BCD. */
function loadMem(c: Cpu, i: Insn, off: number, form: number, e: FpEnv, quietSnan = true): F80 {
  switch (form) {
    case FORM_R32: return sf.fromIeee(BigInt(c.rd32(i.seg, off) >>> 0), sf.FMT32, e, quietSnan);
    case FORM_R64: return sf.fromIeee(readU64(c, i, off), sf.FMT64, e, quietSnan);
    case FORM_I16: return sf.fromInteger(BigInt((c.rd16(i.seg, off) << 16) >> 16));
    case FORM_I32: return sf.fromInteger(BigInt(c.rd32(i.seg, off) | 0));
    case FORM_I64: return sf.fromInteger(signedInt(readU64(c, i, off), 64));
    case FORM_R80: return bytesF80(readBytes(c, i, off, 10));
    default: return sf.fromBcd(readBytes(c, i, off, 10));
  }
}
const FORM_R32 = 0, FORM_R64 = 1, FORM_I16 = 2, FORM_I32 = 3, FORM_I64 = 4, FORM_R80 = 5, FORM_BCD = 6;

/** Record the last instruction and data pointers (SDM vol. 1, 8.1.8). */
function pointers(c: Cpu, i: Insn, memOff: number): void {
  // The opcode's last two bytes are the escape byte's low 3 bits and ModRM (prefixes skipped).
  const modrm = i.mod === 3 ? 0xc0 | (i.reg << 3) | i.rm : (i.mod << 6) | (i.reg << 3) | i.rm;
  c.st16[FOP16] = ((i.opcode & 7) << 8) | modrm;
  c.st[FIP32] = (c.st[St.RIP] - i.len) & (c.code32 ? -1 : 0xffff);
  c.st16[FCS16] = c.getSegSel(1);
  if (memOff >= 0) {
    c.st[FDP32] = memOff;
    c.st16[FDS16] = c.getSegSel(i.seg);
  }
}

// ---------------------------------------------------------------------------------------------
// Arithmetic helpers
// ---------------------------------------------------------------------------------------------

/** op: 0 add, 1 mul, 4 sub (a − b), 5 subr (b − a), 6 div (a ÷ b), 7 divr (b ÷ a). */
function arith(op: number, a: F80, b: F80, prec: number, e: FpEnv): F80 | null {
  switch (op) {
    case 0: return sf.add(a, b, false, prec, e);
    case 1: return sf.mul(a, b, prec, e);
    case 4: return sf.add(a, b, true, prec, e);
    case 5: return sf.add(b, a, true, prec, e);
    case 6: return sf.div(a, b, prec, e);
    default: return sf.div(b, a, prec, e);
  }
}
/** C3 C2 C0 for a comparison result (−1, 0, 1, 2 unordered). */
function setCompareCc(c: Cpu, r: number): void {
  let fsw = c.st16[FSW16] & ~(Fsw.C0 | Fsw.C2 | Fsw.C3);
  if (r === -1) fsw |= Fsw.C0;
  else if (r === 0) fsw |= Fsw.C3;
  else if (r === 2) fsw |= Fsw.C0 | Fsw.C2 | Fsw.C3;
  c.st16[FSW16] = fsw;
}
/** ZF PF CF for FCOMI/FUCOMI (OF, SF, AF cleared). */
function setCompareEflags(c: Cpu, r: number): void {
  let f = c.getFlags() & ~(Fl.ZF | Fl.PF | Fl.CF | Fl.OF | Fl.SF | Fl.AF);
  if (r === -1) f |= Fl.CF;
  else if (r === 0) f |= Fl.ZF;
  else if (r === 2) f |= Fl.ZF | Fl.PF | Fl.CF;
  c.setFlags(f);
}

// ---------------------------------------------------------------------------------------------
// The escape opcodes
// ---------------------------------------------------------------------------------------------

/**
 * The x87 escape (D8–DF): CR0.EM or TS → #NM (SDM vol. 3, 2.5 and table 2-2), then the instruction.
 * Undefined encodings are #UD.
 */
export function x87Escape(c: Cpu, i: Insn): void {
  if (c.cr0 & (Cr0.EM | Cr0.TS)) throw new CpuFault(Vec.NM);
  const esc = i.opcode & 7;
  if (i.mod === 3) regForm(c, i, esc);
  else memForm(c, i, esc);
  ferrUpdate(c);
}

function ud(): never {
  throw new CpuFault(Vec.UD);
}

function memForm(c: Cpu, i: Insn, esc: number): void {
  const r = i.reg;
  // Control instructions with memory operands (no pointer update).
  if (esc === 1 && r >= 4) {
    if (r === 4) { if (pendingError(c, i)) return; fldenv(c, i, ea(c, i)); return; }
    if (r === 5) { if (pendingError(c, i)) return; fldcw(c, c.rd16(i.seg, ea(c, i))); return; }
    if (r === 6) { fnstenv(c, i, ea(c, i)); return; }
    const off = ea(c, i);
    c.checkWritable(i.seg);
    c.wr16(i.seg, off, c.st16[FCW16]);
    return;
  }
  if (esc === 5 && r >= 4) {
    if (r === 4) { if (pendingError(c, i)) return; frstor(c, i, ea(c, i)); return; }
    if (r === 5) ud();
    if (r === 6) { fnsave(c, i, ea(c, i)); return; }
    const off = ea(c, i);
    c.checkWritable(i.seg);
    c.wr16(i.seg, off, c.st16[FSW16]);
    return;
  }
  // Undefined memory forms.
  if ((esc === 1 && r === 1) || (esc === 3 && (r === 4 || r === 6))) ud();
  // FISTTP (SSE3): DB /1, DD /1, DF /1.
  if (r === 1 && (esc === 3 || esc === 5 || esc === 7) && !c.sse3) ud();
  if (pendingError(c, i)) return;
  const off = ea(c, i);
  if ((esc & 1) === 0) {
    // D8, DA, DC, DE: arithmetic with m32real, m32int, m64real, m16int.
    const form = esc === 0 ? FORM_R32 : esc === 2 ? FORM_I32 : esc === 4 ? FORM_R64 : FORM_I16;
    const e = env(c);
    // The conversion's DE belongs to the operation: none beside a NaN operand or for FDIVR by a zero ST(0).
    const le = env(c);
    const b = loadMem(c, i, off, form, le, false);
    if (le.flags & Fsw.DE && !empty(c, 0)) {
      const k0 = sf.kind(getSt(c, 0));
      if (k0 < Kind.QNAN && !(r === 7 && k0 === Kind.ZERO)) e.flags |= Fsw.DE;
    }
    pointers(c, i, off);
    arithOrCompare(c, r, b, e, false);
    return;
  }
  switch (esc << 3 | r) {
    case 1 << 3 | 0: loadPush(c, i, off, FORM_R32); return; // FLD m32
    case 5 << 3 | 0: loadPush(c, i, off, FORM_R64); return; // FLD m64
    case 3 << 3 | 5: loadPush(c, i, off, FORM_R80); return; // FLD m80
    case 3 << 3 | 0: loadPush(c, i, off, FORM_I32); return; // FILD m32
    case 7 << 3 | 0: loadPush(c, i, off, FORM_I16); return; // FILD m16
    case 7 << 3 | 5: loadPush(c, i, off, FORM_I64); return; // FILD m64
    case 7 << 3 | 4: loadPush(c, i, off, FORM_BCD); return; // FBLD
    case 1 << 3 | 2: store(c, i, off, FORM_R32, false, false); return; // FST m32
    case 1 << 3 | 3: store(c, i, off, FORM_R32, true, false); return; // FSTP m32
    case 5 << 3 | 2: store(c, i, off, FORM_R64, false, false); return;
    case 5 << 3 | 3: store(c, i, off, FORM_R64, true, false); return;
    case 3 << 3 | 7: store(c, i, off, FORM_R80, true, false); return; // FSTP m80
    case 3 << 3 | 2: store(c, i, off, FORM_I32, false, false); return; // FIST m32
    case 3 << 3 | 3: store(c, i, off, FORM_I32, true, false); return;
    case 3 << 3 | 1: store(c, i, off, FORM_I32, true, true); return; // FISTTP m32
    case 7 << 3 | 2: store(c, i, off, FORM_I16, false, false); return; // FIST m16
    case 7 << 3 | 3: store(c, i, off, FORM_I16, true, false); return;
    case 7 << 3 | 1: store(c, i, off, FORM_I16, true, true); return;
    case 7 << 3 | 7: store(c, i, off, FORM_I64, true, false); return; // FISTP m64
    case 5 << 3 | 1: store(c, i, off, FORM_I64, true, true); return; // FISTTP m64
    case 7 << 3 | 6: store(c, i, off, FORM_BCD, true, false); return; // FBSTP
    default: ud();
  }
}

/** D8/DC register forms and all memory arithmetic: ST(0) op b, or the compares. */
function arithOrCompare(c: Cpu, r: number, b: F80, e: FpEnv, bEmpty: boolean): void {
  const prec = sf.precBits(c.st16[FCW16]);
  if (r === 2 || r === 3) {
    // FCOM / FCOMP (FICOM / FICOMP)
    let res: number | null;
    if (empty(c, 0) || bEmpty) { underflow(e); res = sf.aborted(e) ? null : 2; }
    else res = sf.compare(getSt(c, 0), b, false, e);
    if (res !== null) setCompareCc(c, res);
    if (!sf.aborted(e) && r === 3) pop(c);
    if (!(e.flags & Fsw.SF)) e.c1 = 0;
    finish(c, e);
    return;
  }
  let v: F80 | null;
  if (empty(c, 0) || bEmpty) { underflow(e); v = sf.aborted(e) ? null : INDEFINITE; }
  else v = arith(r, getSt(c, 0), b, prec, e);
  if (v && !sf.aborted(e)) putSt(c, 0, v);
  finish(c, e);
}

function loadPush(c: Cpu, i: Insn, off: number, form: number): void {
  const e = env(c);
  const v = loadMem(c, i, off, form, e);
  pointers(c, i, off);
  pushChecked(c, v, e);
}
/** Push with the stack-overflow check (the new ST(0) must be empty) and the masked responses. */
function pushChecked(c: Cpu, v: F80, e: FpEnv): void {
  if (!empty(c, -1)) {
    overflow(e);
    if (!sf.aborted(e)) push(c, INDEFINITE);
    finish(c, e);
    return;
  }
  if (!sf.aborted(e)) push(c, v);
  finish(c, e);
}

/** FST/FSTP/FIST/FISTP/FISTTP/FBSTP to memory. */
function store(c: Cpu, i: Insn, off: number, form: number, doPop: boolean, truncate: boolean): void {
  const e = env(c);
  let bytes: number[] | null;
  if (empty(c, 0)) {
    underflow(e);
    bytes = sf.aborted(e) ? null : indefiniteBytes(form);
  } else {
    const a = getSt(c, 0);
    switch (form) {
      case FORM_R32: { const v = sf.toIeee(a, sf.FMT32, e); bytes = v === null ? null : u64Bytes(v, 4); break; }
      case FORM_R64: { const v = sf.toIeee(a, sf.FMT64, e); bytes = v === null ? null : u64Bytes(v, 8); break; }
      case FORM_R80: bytes = f80Bytes(a); break;
      case FORM_I16: { const v = sf.toInt(a, 16, truncate, e); bytes = v === null ? null : u64Bytes(BigInt.asUintN(16, v), 2); break; }
      case FORM_I32: { const v = sf.toInt(a, 32, truncate, e); bytes = v === null ? null : u64Bytes(BigInt.asUintN(32, v), 4); break; }
      case FORM_I64: { const v = sf.toInt(a, 64, truncate, e); bytes = v === null ? null : u64Bytes(BigInt.asUintN(64, v), 8); break; }
      default: bytes = sf.toBcd(a, e);
    }
  }
  // Unmasked overflow or underflow on a store: nothing stored, nothing popped (SDM vol. 1, 8.5.4–8.5.5).
  const unmasked = (e.flags & ~e.masks & Fsw.EXC & ~Fsw.PE) !== 0;
  if (bytes !== null && !unmasked) writeBytes(c, i, off, bytes);
  pointers(c, i, off);
  if (bytes !== null && !unmasked && doPop) pop(c);
  finish(c, e);
}
function indefiniteBytes(form: number): number[] {
  switch (form) {
    case FORM_R32: return [0, 0, 0xc0, 0xff];
    case FORM_R64: return [0, 0, 0, 0, 0, 0, 0xf8, 0xff];
    case FORM_R80: return f80Bytes(INDEFINITE);
    case FORM_I16: return [0, 0x80];
    case FORM_I32: return [0, 0, 0, 0x80];
    case FORM_I64: return [0, 0, 0, 0, 0, 0, 0, 0x80];
    default: return [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];
  }
}

const FCMOV_CC = [2, 4, 6, 10]; // B, E, BE, U as Jcc condition numbers

function regForm(c: Cpu, i: Insn, esc: number): void {
  const r = i.reg, k = i.rm;
  const op = esc << 3 | r;
  // Non-waiting instructions first (no #MF check).
  if (esc === 3 && r === 4) {
    switch (k) {
      case 0: case 1: case 4: return; // FNENI, FNDISI, FNSETPM: no effect on a Pentium 4
      case 2: { // FNCLEX
        c.st16[FSW16] &= ~(Fsw.EXC | Fsw.SF | Fsw.ES | Fsw.B);
        return;
      }
      case 3: init(c); return; // FNINIT
      default: ud();
    }
  }
  if (esc === 7 && r === 4) {
    if (k !== 0) ud();
    c.st16[0] = c.st16[FSW16]; // FNSTSW AX
    return;
  }
  // Undefined register forms.
  if (esc === 1 && ((r === 2 && k !== 0) || (r === 4 && (k === 2 || k === 3 || k === 6 || k === 7)) || (r === 5 && k === 7))) ud();
  if (esc === 2 && !(r <= 3 || (r === 5 && k === 1))) ud();
  if (esc === 3 && (r === 4 || r === 7)) ud();
  if (esc === 5 && (r === 6 || r === 7)) ud();
  if (esc === 6 && r === 3 && k !== 1) ud();
  if (esc === 7 && r === 7) ud();
  if (pendingError(c, i)) return;
  pointers(c, i, -1);
  const e = env(c);
  if (esc === 0 || esc === 4 || esc === 6) {
    // D8: ST(0) ← ST(0) op ST(i); DC: ST(i) ← ST(i) op ST(0); DE: the same, then pop.
    if (r === 2 || r === 3) {
      // FCOM/FCOMP ST(i) (and the DC D0/D8, DE D0 aliases); DE D9 is FCOMPP.
      if (esc === 6 && r === 3) { compareRegs(c, 1, false, 2, e, false); return; }
      compareRegs(c, k, false, esc === 0 && r === 2 || esc === 4 && r === 2 ? 0 : 1, e, false);
      return;
    }
    const prec = sf.precBits(c.st16[FCW16]);
    if (esc === 0) {
      let v: F80 | null;
      if (empty(c, 0) || empty(c, k)) { underflow(e); v = sf.aborted(e) ? null : INDEFINITE; }
      else v = arith(r, getSt(c, 0), getSt(c, k), prec, e);
      if (v && !sf.aborted(e)) putSt(c, 0, v);
      finish(c, e);
      return;
    }
    // DC/DE: the destination is ST(i); /4../7 are FSUBR, FSUB, FDIVR, FDIV (SDM table A-10).
    const rr = r >= 4 ? r ^ 1 : r;
    let v: F80 | null;
    if (empty(c, 0) || empty(c, k)) { underflow(e); v = sf.aborted(e) ? null : INDEFINITE; }
    else v = arith(rr, getSt(c, k), getSt(c, 0), prec, e);
    if (v && !sf.aborted(e)) {
      putSt(c, k, v);
      if (esc === 6) pop(c);
    }
    finish(c, e);
    return;
  }
  switch (op) {
    case 1 << 3 | 0: { // FLD ST(i)
      if (empty(c, k)) { underflow(e); pushChecked(c, INDEFINITE, e); return; }
      pushChecked(c, getSt(c, k), e);
      return;
    }
    case 1 << 3 | 1: case 5 << 3 | 1: case 7 << 3 | 1: { // FXCH (and the DD C8, DF C8 aliases)
      const e0 = empty(c, 0), ek = empty(c, k);
      if (e0 || ek) {
        underflow(e);
        if (sf.aborted(e)) { finish(c, e); return; }
      }
      const a = e0 ? INDEFINITE : getSt(c, 0), b = ek ? INDEFINITE : getSt(c, k);
      putSt(c, 0, b);
      putSt(c, k, a);
      if (!(e0 || ek)) e.c1 = 0;
      finish(c, e);
      return;
    }
    case 1 << 3 | 2: return; // FNOP
    case 1 << 3 | 3: case 5 << 3 | 2: case 5 << 3 | 3: case 7 << 3 | 2: case 7 << 3 | 3: {
      // FST/FSTP ST(i) (D9 D8 and DF D0/D8 are FSTP aliases)
      const doPop = op !== (5 << 3 | 2);
      if (empty(c, 0)) {
        underflow(e);
        if (sf.aborted(e)) { finish(c, e); return; }
        putSt(c, k, INDEFINITE);
      } else {
        putSt(c, k, getSt(c, 0));
        e.c1 = 0;
      }
      if (doPop) pop(c);
      finish(c, e);
      return;
    }
    case 1 << 3 | 4: return d9e0(c, k, e);
    case 1 << 3 | 5: return constantLoad(c, k, e);
    case 1 << 3 | 6: return d9f0(c, k, e);
    case 1 << 3 | 7: return d9f8(c, k, e);
    case 2 << 3 | 0: case 2 << 3 | 1: case 2 << 3 | 2: case 2 << 3 | 3:
    case 3 << 3 | 0: case 3 << 3 | 1: case 3 << 3 | 2: case 3 << 3 | 3: { // FCMOVcc
      const cond = c.cond(FCMOV_CC[r] + (esc === 3 ? 1 : 0));
      if (empty(c, 0) || empty(c, k)) {
        underflow(e);
        if (!sf.aborted(e) && cond) putSt(c, 0, INDEFINITE);
        finish(c, e);
        return;
      }
      if (cond) putSt(c, 0, getSt(c, k));
      e.c1 = 0;
      finish(c, e);
      return;
    }
    case 2 << 3 | 5: compareRegs(c, 1, true, 2, e, false); return; // FUCOMPP
    case 3 << 3 | 5: compareRegs(c, k, true, 0, e, true); return; // FUCOMI
    case 3 << 3 | 6: compareRegs(c, k, false, 0, e, true); return; // FCOMI
    case 7 << 3 | 5: compareRegs(c, k, true, 1, e, true); return; // FUCOMIP
    case 7 << 3 | 6: compareRegs(c, k, false, 1, e, true); return; // FCOMIP
    case 5 << 3 | 0: setTagP(c, phys(c, k), Tag.EMPTY); finish(c, e); return; // FFREE
    case 7 << 3 | 0: setTagP(c, phys(c, k), Tag.EMPTY); pop(c); finish(c, e); return; // FFREEP
    case 5 << 3 | 4: compareRegs(c, k, true, 0, e, false); return; // FUCOM
    case 5 << 3 | 5: compareRegs(c, k, true, 1, e, false); return; // FUCOMP
    default: ud();
  }
}

/** FCOM-family on ST(0) and ST(k): pops 0, 1 or 2; eflags for FCOMI/FUCOMI. */
function compareRegs(c: Cpu, k: number, quiet: boolean, pops: number, e: FpEnv, eflags: boolean): void {
  let res: number | null;
  if (empty(c, 0) || empty(c, k)) { underflow(e); res = sf.aborted(e) ? null : 2; }
  else { res = sf.compare(getSt(c, 0), getSt(c, k), quiet, e); e.c1 = 0; }
  if (res !== null) {
    if (eflags) setCompareEflags(c, res);
    else setCompareCc(c, res);
  }
  if (!sf.aborted(e)) for (let n = 0; n < pops; n++) pop(c);
  finish(c, e);
}

/** D9 E0–E5: FCHS, FABS, FTST, FXAM. */
function d9e0(c: Cpu, k: number, e: FpEnv): void {
  if (k === 5) { // FXAM
    const p = phys(c, 0);
    const v = readPhys(c, p);
    let cc: number; // C3 C2 C0 as bits 2 1 0
    if (tagP(c, p) === Tag.EMPTY) cc = 0b101;
    else {
      const kd = sf.kind(v);
      cc = kd === Kind.UNSUPPORTED ? 0 : kd === Kind.QNAN || kd === Kind.SNAN ? 0b001 : kd === Kind.NORMAL ? 0b010
        : kd === Kind.INF ? 0b011 : kd === Kind.ZERO ? 0b100 : 0b110;
    }
    let fsw = c.st16[FSW16] & ~Fsw.CC;
    if (cc & 4) fsw |= Fsw.C3;
    if (cc & 2) fsw |= Fsw.C2;
    if (cc & 1) fsw |= Fsw.C0;
    if (v.sign) fsw |= Fsw.C1;
    c.st16[FSW16] = fsw;
    return;
  }
  if (empty(c, 0)) {
    underflow(e);
    if (k === 4) { if (!sf.aborted(e)) setCompareCc(c, 2); finish(c, e); return; }
    if (!sf.aborted(e)) putSt(c, 0, INDEFINITE);
    finish(c, e);
    return;
  }
  const a = getSt(c, 0);
  if (k === 0) putSt(c, 0, { sign: a.sign ^ 1, exp: a.exp, sig: a.sig }); // FCHS
  else if (k === 1) putSt(c, 0, { sign: 0, exp: a.exp, sig: a.sig }); // FABS
  else { // FTST
    const res = sf.compare(a, sf.zero(0), false, e);
    if (res !== null) setCompareCc(c, res);
  }
  e.c1 = 0;
  finish(c, e);
}

/** D9 E8–EE: FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ (rounded by RC, SDM FLD1/FLDL2T/...). */
function constantLoad(c: Cpu, k: number, e: FpEnv): void {
  const rc = e.rc;
  const C = tr.CONSTANTS;
  const v = k === 0 ? sf.ONE : k === 1 ? tr.constant(C.l2t, rc) : k === 2 ? tr.constant(C.l2e, rc)
    : k === 3 ? tr.constant(C.pi, rc) : k === 4 ? tr.constant(C.lg2, rc) : k === 5 ? tr.constant(C.ln2, rc) : sf.zero(0);
  pushChecked(c, v, e);
}

/** D9 F0–F7: F2XM1, FYL2X, FPTAN, FPATAN, FXTRACT, FPREM1, FDECSTP, FINCSTP. */
function d9f0(c: Cpu, k: number, e: FpEnv): void {
  switch (k) {
    case 0: return unary(c, e, (a) => tr.f2xm1(a, e));
    case 1: return binaryPop(c, e, (y, x) => tr.fyl2x(y, x, e));
    case 2: return trigPush(c, e, 3);
    case 3: return binaryPop(c, e, (y, x) => tr.fpatan(y, x, e));
    case 4: { // FXTRACT
      if (empty(c, 0)) { underflow(e); if (!sf.aborted(e)) { putSt(c, 0, INDEFINITE); pushChecked(c, INDEFINITE, e); return; } finish(c, e); return; }
      if (!empty(c, -1)) { overflow(e); if (!sf.aborted(e)) { putSt(c, 0, INDEFINITE); push(c, INDEFINITE); } finish(c, e); return; }
      const r = sf.xtract(getSt(c, 0), e);
      if (r && !sf.aborted(e)) { putSt(c, 0, r[0]); push(c, r[1]); }
      finish(c, e);
      return;
    }
    case 5: return premOp(c, e, true);
    case 6: setTop(c, top(c) - 1); e.c1 = 0; finish(c, e); return; // FDECSTP
    default: setTop(c, top(c) + 1); e.c1 = 0; finish(c, e); return; // FINCSTP
  }
}

/** D9 F8–FF: FPREM, FYL2XP1, FSQRT, FSINCOS, FRNDINT, FSCALE, FSIN, FCOS. */
function d9f8(c: Cpu, k: number, e: FpEnv): void {
  switch (k) {
    case 0: return premOp(c, e, false);
    case 1: return binaryPop(c, e, (y, x) => tr.fyl2xp1(y, x, e));
    case 2: return unary(c, e, (a) => sf.sqrt(a, sf.precBits(c.st16[FCW16]), e));
    case 3: return trigPush(c, e, 2);
    case 4: return unary(c, e, (a) => sf.roundInt(a, e));
    case 5: { // FSCALE
      if (empty(c, 0) || empty(c, 1)) { underflow(e); if (!sf.aborted(e)) putSt(c, 0, INDEFINITE); finish(c, e); return; }
      const v = sf.scale(getSt(c, 0), getSt(c, 1), e);
      if (v && !sf.aborted(e)) putSt(c, 0, v);
      finish(c, e);
      return;
    }
    case 6: case 7: { // FSIN, FCOS
      if (empty(c, 0)) { underflow(e); if (!sf.aborted(e)) putSt(c, 0, INDEFINITE); finish(c, e); return; }
      const t = tr.trig(getSt(c, 0), k === 6 ? 0 : 1, e);
      setC2(c, t.outOfRange);
      if (t.values && !sf.aborted(e)) putSt(c, 0, t.values[0]);
      finish(c, e);
      return;
    }
  }
}
function setC2(c: Cpu, v: boolean): void {
  c.st16[FSW16] = v ? c.st16[FSW16] | Fsw.C2 : c.st16[FSW16] & ~Fsw.C2;
}
function unary(c: Cpu, e: FpEnv, f: (a: F80) => F80 | null): void {
  if (empty(c, 0)) { underflow(e); if (!sf.aborted(e)) putSt(c, 0, INDEFINITE); finish(c, e); return; }
  const v = f(getSt(c, 0));
  if (v && !sf.aborted(e)) putSt(c, 0, v);
  finish(c, e);
}
/** ST(1) ← f(ST(1), ST(0)), pop (FYL2X, FYL2XP1, FPATAN). */
function binaryPop(c: Cpu, e: FpEnv, f: (y: F80, x: F80) => F80 | null): void {
  if (empty(c, 0) || empty(c, 1)) {
    underflow(e);
    if (!sf.aborted(e)) { putSt(c, 1, INDEFINITE); pop(c); }
    finish(c, e);
    return;
  }
  const v = f(getSt(c, 1), getSt(c, 0));
  if (v && !sf.aborted(e)) { putSt(c, 1, v); pop(c); }
  finish(c, e);
}
/** FSINCOS (which 2) and FPTAN (3): ST(0) ← sin or tan, then push cos or 1. */
function trigPush(c: Cpu, e: FpEnv, which: number): void {
  if (empty(c, 0)) {
    underflow(e);
    if (!sf.aborted(e)) { putSt(c, 0, INDEFINITE); push(c, INDEFINITE); }
    finish(c, e);
    return;
  }
  if (!empty(c, -1)) {
    overflow(e);
    if (!sf.aborted(e)) { putSt(c, 0, INDEFINITE); push(c, INDEFINITE); }
    finish(c, e);
    return;
  }
  const t = tr.trig(getSt(c, 0), which, e);
  setC2(c, t.outOfRange);
  if (t.values && !sf.aborted(e)) {
    putSt(c, 0, t.values[0]);
    push(c, t.values[1]);
  }
  finish(c, e);
}
function premOp(c: Cpu, e: FpEnv, round: boolean): void {
  if (empty(c, 0) || empty(c, 1)) { underflow(e); if (!sf.aborted(e)) putSt(c, 0, INDEFINITE); finish(c, e); return; }
  const r = sf.prem(getSt(c, 0), getSt(c, 1), round, e);
  if (r === null || sf.aborted(e)) { finish(c, e); return; }
  putSt(c, 0, r.r);
  // C2: incomplete reduction; C0 = Q2, C3 = Q1, C1 = Q0 (SDM FPREM).
  let fsw = c.st16[FSW16] & ~(Fsw.C0 | Fsw.C2 | Fsw.C3);
  if (r.partial) fsw |= Fsw.C2;
  else {
    if (r.q & 4) fsw |= Fsw.C0;
    if (r.q & 2) fsw |= Fsw.C3;
  }
  c.st16[FSW16] = fsw;
  e.c1 = r.partial ? 0 : r.q & 1;
  finish(c, e);
}

// ---------------------------------------------------------------------------------------------
// FLDCW, FLDENV, FNSTENV, FRSTOR, FNSAVE (SDM vol. 1, 8.1.10 and figures 8-9 to 8-12)
// ---------------------------------------------------------------------------------------------

function fldcw(c: Cpu, v: number): void {
  // Bit 6 reads as 1 and bits 13–15 as 0 (reserved).
  c.st16[FCW16] = (v & 0x1f3f) | 0x40;
  c.st16[FSW16] = summary(c.st16[FSW16], c.st16[FCW16]);
}
/** Real-address or virtual-8086 mode use the real-mode image layout. */
function realFormat(c: Cpu): boolean {
  return !c.protectedMode || c.v86;
}
function fullTags(c: Cpu): number {
  let ftw = 0;
  for (let p = 0; p < 8; p++) {
    const t = tagP(c, p) === Tag.EMPTY ? Tag.EMPTY : tagOf(readPhys(c, p));
    ftw |= t << (2 * p);
  }
  return ftw;
}
/** The full tag word FSTENV/FNSAVE store: tags recomputed from the registers, empty kept. */
export function fpuTagWord(c: Cpu): number {
  return fullTags(c);
}
/** FXSAVE's abridged tag byte: bit i set when physical register Ri is not empty (SDM FXSAVE). */
export function fpuAbridgedTags(c: Cpu): number {
  let t = 0;
  for (let p = 0; p < 8; p++) if (tagP(c, p) !== Tag.EMPTY) t |= 1 << p;
  return t;
}
/** FXRSTOR's abridged tags: empty, or the tag the register's contents give. */
export function fpuSetAbridgedTags(c: Cpu, abridged: number): void {
  let t = 0;
  for (let p = 0; p < 8; p++) t |= (abridged & (1 << p) ? tagOf(readPhys(c, p)) : Tag.EMPTY) << (2 * p);
  c.st16[FTW16] = t;
}

/** The environment image (14 or 28 bytes). */
function envImage(c: Cpu, i: Insn): number[] {
  const fcw = c.st16[FCW16], fsw = c.st16[FSW16], ftw = fullTags(c);
  const fop = c.st16[FOP16] & 0x7ff;
  const fip = c.st[FIP32] >>> 0, fcs = c.st16[FCS16], fdp = c.st[FDP32] >>> 0, fds = c.st16[FDS16];
  const out: number[] = [];
  const w16 = (v: number) => out.push(v & 0xff, (v >> 8) & 0xff);
  const w32 = (v: number) => { w16(v & 0xffff); w16(v >>> 16); };
  const real = realFormat(c);
  const lip = real ? ((fcs << 4) + fip) >>> 0 : fip;
  const ldp = real ? ((fds << 4) + fdp) >>> 0 : fdp;
  if (i.osz === 4) {
    // Reserved upper halves are stored as 1s (a Pentium 4 writes FFFFH there).
    w16(fcw); w16(0xffff); w16(fsw); w16(0xffff); w16(ftw); w16(0xffff);
    if (real) {
      w16(lip & 0xffff); w16(0xffff);
      w32(((lip >>> 16) << 12) | fop);
      w16(ldp & 0xffff); w16(0xffff);
      w32((ldp >>> 16) << 12);
    } else {
      w32(fip); w16(fcs); w16(fop); w32(fdp); w16(fds); w16(0xffff);
    }
  } else {
    w16(fcw); w16(fsw); w16(ftw);
    if (real) {
      w16(lip & 0xffff); w16((((lip >>> 16) & 0xf) << 12) | fop);
      w16(ldp & 0xffff); w16(((ldp >>> 16) & 0xf) << 12);
    } else {
      w16(fip); w16(fcs); w16(fdp); w16(fds);
    }
  }
  return out;
}
function loadEnvImage(c: Cpu, i: Insn, b: number[]): void {
  const r16 = (k: number) => b[k] | (b[k + 1] << 8);
  const r32 = (k: number) => (r16(k) | (r16(k + 2) << 16)) >>> 0;
  const real = realFormat(c);
  let fcw: number, fsw: number, ftw: number, fip: number, fcs = 0, fop = 0, fdp: number, fds = 0;
  if (i.osz === 4) {
    fcw = r16(0); fsw = r16(4); ftw = r16(8);
    if (real) {
      fip = (r16(12) | ((r32(16) >>> 12) << 16)) >>> 0;
      fop = r32(16) & 0x7ff;
      fdp = (r16(20) | ((r32(24) >>> 12) << 16)) >>> 0;
    } else {
      fip = r32(12); fcs = r16(16); fop = r16(18) & 0x7ff; fdp = r32(20); fds = r16(24);
    }
  } else {
    fcw = r16(0); fsw = r16(2); ftw = r16(4);
    if (real) {
      fip = r16(6) | ((r16(8) >> 12) << 16);
      fop = r16(8) & 0x7ff;
      fdp = r16(10) | ((r16(12) >> 12) << 16);
    } else {
      fip = r16(6); fcs = r16(8); fdp = r16(10); fds = r16(12);
    }
  }
  c.st16[FCW16] = (fcw & 0x1f3f) | 0x40;
  c.st16[FSW16] = summary(fsw, c.st16[FCW16]);
  // Tags: empty stays empty; any other tag is recomputed from the register (the processor keeps
  // only "empty or not", SDM vol. 1, 8.1.7).
  let t = 0;
  for (let p = 0; p < 8; p++) {
    const tg = (ftw >> (2 * p)) & 3;
    t |= (tg === Tag.EMPTY ? Tag.EMPTY : tagOf(readPhys(c, p))) << (2 * p);
  }
  c.st16[FTW16] = t;
  c.st[FIP32] = fip; c.st16[FCS16] = fcs; c.st16[FOP16] = fop; c.st[FDP32] = fdp; c.st16[FDS16] = fds;
}
function envSize(i: Insn): number {
  return i.osz === 4 ? 28 : 14;
}
function fnstenv(c: Cpu, i: Insn, off: number): void {
  writeBytes(c, i, off, envImage(c, i));
  // FNSTENV masks all exceptions after storing (SDM FSTENV/FNSTENV).
  c.st16[FCW16] |= Fcw.MASKS;
  c.st16[FSW16] = summary(c.st16[FSW16], c.st16[FCW16]);
}
function fldenv(c: Cpu, i: Insn, off: number): void {
  loadEnvImage(c, i, readBytes(c, i, off, envSize(i)));
}
function fnsave(c: Cpu, i: Insn, off: number): void {
  const img = envImage(c, i);
  for (let k = 0; k < 8; k++) img.push(...f80Bytes(getSt(c, k)));
  writeBytes(c, i, off, img);
  init(c);
}
function frstor(c: Cpu, i: Insn, off: number): void {
  const n = envSize(i);
  const b = readBytes(c, i, off, n + 80);
  // Registers first (in ST order relative to the image's TOP), then the environment, whose tags
  // are recomputed from them.
  const t = (((b[i.osz === 4 ? 4 : 2] | (b[i.osz === 4 ? 5 : 3] << 8)) >> 11) & 7);
  for (let k = 0; k < 8; k++) writePhys(c, (t + k) & 7, bytesF80(b.slice(n + 10 * k, n + 10 * k + 10)));
  loadEnvImage(c, i, b);
}

// ---------------------------------------------------------------------------------------------
// EMMS (the MMX instructions and their register rules are the SIMD unit's, runtime/cpu/sse/)
// ---------------------------------------------------------------------------------------------

/** EMMS (0F 77): every tag empty, after the MMX checks (the SIMD unit's, runtime/cpu/sse/common.ts). */
export function emms(c: Cpu): void {
  checkMmx(c);
  c.st16[FTW16] = 0xffff;
}
