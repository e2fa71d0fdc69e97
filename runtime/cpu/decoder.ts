/**
 * The table-driven decoder. The opcode maps are written in the SDM's operand notation (appendix A:
 * `Ev,Gv`, `Eb,Ib`, `Jz`, …); operands are decoded generically from that notation, so a semantic
 * function only sees normalised operands (the shape of QEMU's decode-new.c.inc and KVM's emulate.c).
 *
 * Every entry names its semantic function by a key of `semantics` (ops.ts), so an entry without an
 * implementation is a compile error.
 */
import * as insnMod from "./insn.ts";
import { type Exec, Insn } from "./insn.ts";
import { semantics, type SemName } from "./ops.ts";
import { CpuFault } from "./fault.ts";
import * as stateMod from "./state.ts";
import { SSE_ROWS } from "./sse/table.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { OpKind, regIndex } = insnMod;
const { Seg, Vec } = stateMod;

interface OperandSpec {
  /** Addressing method letter or fixed-register token. */
  m: string;
  /** Size code: b, w, d, v, z, p, a, s or "" */
  s: string;
}

export interface OpEntry {
  name: string;
  sem: SemName;
  ops: OperandSpec[];
  sub: number;
  lock: boolean;
  terminal: boolean;
  /** For groups: entries selected by ModRM.reg. */
  group?: (OpEntry | undefined)[];
  /** For 0F 01-style groups: entries for mod == 3 keyed by (reg << 3 | rm). */
  mod3?: Record<number, OpEntry>;
  /**
   * For the 0F opcodes with mandatory prefixes (SSE): the entries for no prefix, 66, F3 and F2
   * (SDM vol. 2, 2.1.2: F2/F3 before 66; the prefix selecting the entry is part of the opcode).
   */
  pfx?: (OpEntry | undefined)[];
  /** Decoding needs a ModRM byte. */
  modrm: boolean;
  /**
   * The ModRM byte names registers only (an `R` operand: MOV to and from CRn/DRn): the mod bits are
   * ignored and no SIB or displacement follows (SDM MOV—Move to/from Control Registers).
   */
  regOnly: boolean;
}

interface EntryOpts {
  sub?: number;
  lock?: boolean;
  /** Ends a basic block (control transfer, VM exit, or a change the next instruction must see). */
  term?: boolean;
}

const MODRM_METHODS = new Set(["E", "G", "M", "R", "S", "C", "D", "V", "W", "U", "P", "Q", "N"]);

function parseOps(spec: string): OperandSpec[] {
  if (!spec) return [];
  return spec.split(",").map((t) => {
    if (/^[A-Z][a-z]+$/.test(t) && t.length <= 3 && !["AL", "AX", "CL", "DX"].includes(t)) {
      return { m: t[0], s: t.slice(1) };
    }
    return { m: t, s: "" };
  });
}

/** One table entry: `op("add", "Ev,Gv", "alu", { sub: 0, lock: true })`. */
export function op(name: string, spec: string, sem: SemName, o: EntryOpts = {}): OpEntry {
  const ops = parseOps(spec);
  return {
    name, sem, ops, sub: o.sub ?? 0, lock: o.lock ?? false, terminal: o.term ?? false,
    modrm: ops.some((x) => MODRM_METHODS.has(x.m)), regOnly: ops.some((x) => x.m === "R"),
  };
}
function group(name: string, entries: (OpEntry | undefined)[], mod3?: Record<number, OpEntry>): OpEntry {
  return { name, sem: "ud", ops: [], sub: 0, lock: false, terminal: false, group: entries, mod3, modrm: true, regOnly: false };
}

// ---------------------------------------------------------------------------------------------
// The one-byte opcode map (SDM volume 2, table A-2)
// ---------------------------------------------------------------------------------------------
export const oneByte: (OpEntry | undefined)[] = new Array(256);
export const twoByte: (OpEntry | undefined)[] = new Array(256);

const ALU_NAMES = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
for (let a = 0; a < 8; a++) {
  const base = a * 8;
  const lock = a !== 7;
  oneByte[base + 0] = op(ALU_NAMES[a], "Eb,Gb", "alu", { sub: a, lock });
  oneByte[base + 1] = op(ALU_NAMES[a], "Ev,Gv", "alu", { sub: a, lock });
  oneByte[base + 2] = op(ALU_NAMES[a], "Gb,Eb", "alu", { sub: a });
  oneByte[base + 3] = op(ALU_NAMES[a], "Gv,Ev", "alu", { sub: a });
  oneByte[base + 4] = op(ALU_NAMES[a], "AL,Ib", "alu", { sub: a });
  oneByte[base + 5] = op(ALU_NAMES[a], "eAX,Iz", "alu", { sub: a });
}
oneByte[0x06] = op("push", "ES", "pushSeg");
oneByte[0x07] = op("pop", "ES", "popSeg", { term: true });
oneByte[0x0e] = op("push", "CS", "pushSeg");
oneByte[0x16] = op("push", "SS", "pushSeg");
oneByte[0x17] = op("pop", "SS", "popSeg", { term: true });
oneByte[0x1e] = op("push", "DS", "pushSeg");
oneByte[0x1f] = op("pop", "DS", "popSeg", { term: true });
oneByte[0x27] = op("daa", "", "daa");
oneByte[0x2f] = op("das", "", "das");
oneByte[0x37] = op("aaa", "", "aaa");
oneByte[0x3f] = op("aas", "", "aas");
for (let r = 0; r < 8; r++) {
  oneByte[0x40 + r] = op("inc", "Zv", "incdec", { sub: 0 });
  oneByte[0x48 + r] = op("dec", "Zv", "incdec", { sub: 1 });
  oneByte[0x50 + r] = op("push", "Zv", "push");
  oneByte[0x58 + r] = op("pop", "Zv", "pop");
  oneByte[0x90 + r] = r === 0 ? op("nop", "", "nop") : op("xchg", "Zv,eAX", "xchg");
  oneByte[0xb0 + r] = op("mov", "Zb,Ib", "mov");
  oneByte[0xb8 + r] = op("mov", "Zv,Iv", "mov");
}
oneByte[0x60] = op("pusha", "", "pusha");
oneByte[0x61] = op("popa", "", "popa");
oneByte[0x62] = op("bound", "Gv,Ma", "bound");
oneByte[0x63] = op("arpl", "Ew,Gw", "arpl");
oneByte[0x68] = op("push", "Iz", "push");
oneByte[0x69] = op("imul", "Gv,Ev,Iz", "imul3");
oneByte[0x6a] = op("push", "Ibs", "push");
oneByte[0x6b] = op("imul", "Gv,Ev,Ibs", "imul3");
oneByte[0x6c] = op("insb", "Yb,DX", "ins", { term: true });
oneByte[0x6d] = op("ins", "Yz,DX", "ins", { term: true });
oneByte[0x6e] = op("outsb", "DX,Xb", "outs", { term: true });
oneByte[0x6f] = op("outs", "DX,Xz", "outs", { term: true });
const CC = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
for (let c = 0; c < 16; c++) {
  oneByte[0x70 + c] = op("j" + CC[c], "Jb", "jcc", { sub: c, term: true });
  twoByte[0x80 + c] = op("j" + CC[c], "Jz", "jcc", { sub: c, term: true });
  twoByte[0x90 + c] = op("set" + CC[c], "Eb", "setcc", { sub: c });
  twoByte[0x40 + c] = op("cmov" + CC[c], "Gv,Ev", "cmovcc", { sub: c });
}
const grp1 = (spec: string) => ALU_NAMES.map((n, a) => op(n, spec, "alu", { sub: a, lock: a !== 7 }));
oneByte[0x80] = group("grp1", grp1("Eb,Ib"));
oneByte[0x81] = group("grp1", grp1("Ev,Iz"));
oneByte[0x82] = group("grp1", grp1("Eb,Ib"));
oneByte[0x83] = group("grp1", grp1("Ev,Ibs"));
oneByte[0x84] = op("test", "Eb,Gb", "test");
oneByte[0x85] = op("test", "Ev,Gv", "test");
oneByte[0x86] = op("xchg", "Eb,Gb", "xchg", { lock: true });
oneByte[0x87] = op("xchg", "Ev,Gv", "xchg", { lock: true });
oneByte[0x88] = op("mov", "Eb,Gb", "mov");
oneByte[0x89] = op("mov", "Ev,Gv", "mov");
oneByte[0x8a] = op("mov", "Gb,Eb", "mov");
oneByte[0x8b] = op("mov", "Gv,Ev", "mov");
oneByte[0x8c] = op("mov", "Ew,Sw", "movFromSeg"); // Rv/Mw: a word in memory, a whole register
oneByte[0x8d] = op("lea", "Gv,M", "lea");
oneByte[0x8e] = op("mov", "Sw,Ew", "movToSeg", { term: true });
oneByte[0x8f] = group("grp1a", [op("pop", "Ev", "pop")]);
oneByte[0x98] = op("cbw", "", "cbw");
oneByte[0x99] = op("cwd", "", "cwd");
oneByte[0x9a] = op("callf", "Ap", "callFar", { term: true });
oneByte[0x9b] = op("wait", "", "wait");
oneByte[0x9c] = op("pushf", "", "pushf");
oneByte[0x9d] = op("popf", "", "popf", { term: true });
oneByte[0x9e] = op("sahf", "", "sahf");
oneByte[0x9f] = op("lahf", "", "lahf");
oneByte[0xa0] = op("mov", "AL,Ob", "mov");
oneByte[0xa1] = op("mov", "eAX,Ov", "mov");
oneByte[0xa2] = op("mov", "Ob,AL", "mov");
oneByte[0xa3] = op("mov", "Ov,eAX", "mov");
oneByte[0xa4] = op("movsb", "Yb,Xb", "movs", { term: true });
oneByte[0xa5] = op("movs", "Yv,Xv", "movs", { term: true });
oneByte[0xa6] = op("cmpsb", "Xb,Yb", "cmps", { term: true });
oneByte[0xa7] = op("cmps", "Xv,Yv", "cmps", { term: true });
oneByte[0xa8] = op("test", "AL,Ib", "test");
oneByte[0xa9] = op("test", "eAX,Iz", "test");
oneByte[0xaa] = op("stosb", "Yb,AL", "stos", { term: true });
oneByte[0xab] = op("stos", "Yv,eAX", "stos", { term: true });
oneByte[0xac] = op("lodsb", "AL,Xb", "lods", { term: true });
oneByte[0xad] = op("lods", "eAX,Xv", "lods", { term: true });
oneByte[0xae] = op("scasb", "AL,Yb", "scas", { term: true });
oneByte[0xaf] = op("scas", "eAX,Yv", "scas", { term: true });
const SHIFT_NAMES = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"];
const grp2 = (spec: string) => SHIFT_NAMES.map((n, k) => op(n, spec, "shift", { sub: k }));
oneByte[0xc0] = group("grp2", grp2("Eb,Ib"));
oneByte[0xc1] = group("grp2", grp2("Ev,Ib"));
oneByte[0xc2] = op("ret", "Iw", "ret", { term: true });
oneByte[0xc3] = op("ret", "", "ret", { term: true });
oneByte[0xc4] = op("les", "Gv,Mp", "loadFarPtr", { sub: Seg.ES, term: true });
oneByte[0xc5] = op("lds", "Gv,Mp", "loadFarPtr", { sub: Seg.DS, term: true });
oneByte[0xc6] = group("grp11", [op("mov", "Eb,Ib", "mov")]);
oneByte[0xc7] = group("grp11", [op("mov", "Ev,Iz", "mov")]);
oneByte[0xc8] = op("enter", "Iw,Ib", "enter");
oneByte[0xc9] = op("leave", "", "leave");
oneByte[0xca] = op("retf", "Iw", "retFar", { term: true });
oneByte[0xcb] = op("retf", "", "retFar", { term: true });
oneByte[0xcc] = op("int3", "", "int3", { term: true });
oneByte[0xcd] = op("int", "Ib", "int", { term: true });
oneByte[0xce] = op("into", "", "into", { term: true });
oneByte[0xcf] = op("iret", "", "iret", { term: true });
oneByte[0xd0] = group("grp2", grp2("Eb,1"));
oneByte[0xd1] = group("grp2", grp2("Ev,1"));
oneByte[0xd2] = group("grp2", grp2("Eb,CL"));
oneByte[0xd3] = group("grp2", grp2("Ev,CL"));
oneByte[0xd4] = op("aam", "Ib", "aam");
oneByte[0xd5] = op("aad", "Ib", "aad");
oneByte[0xd6] = op("salc", "", "salc");
oneByte[0xd7] = op("xlat", "", "xlat");
// x87 escapes: the ModRM byte selects memory forms (mod < 3) or register forms (x87.ts).
for (let x = 0xd8; x <= 0xdf; x++) oneByte[x] = op("esc", "Ef", "fpu");
oneByte[0xe0] = op("loopne", "Jb", "loop", { sub: 2, term: true });
oneByte[0xe1] = op("loope", "Jb", "loop", { sub: 1, term: true });
oneByte[0xe2] = op("loop", "Jb", "loop", { sub: 0, term: true });
oneByte[0xe3] = op("jcxz", "Jb", "jcxz", { term: true });
oneByte[0xe4] = op("in", "AL,Ib", "in", { term: true });
oneByte[0xe5] = op("in", "eAX,Ib", "in", { term: true });
oneByte[0xe6] = op("out", "Ib,AL", "out", { term: true });
oneByte[0xe7] = op("out", "Ib,eAX", "out", { term: true });
oneByte[0xe8] = op("call", "Jz", "call", { term: true });
oneByte[0xe9] = op("jmp", "Jz", "jmp", { term: true });
oneByte[0xea] = op("jmpf", "Ap", "jmpFar", { term: true });
oneByte[0xeb] = op("jmp", "Jb", "jmp", { term: true });
oneByte[0xec] = op("in", "AL,DX", "in", { term: true });
oneByte[0xed] = op("in", "eAX,DX", "in", { term: true });
oneByte[0xee] = op("out", "DX,AL", "out", { term: true });
oneByte[0xef] = op("out", "DX,eAX", "out", { term: true });
oneByte[0xf1] = op("int1", "", "int1", { term: true });
oneByte[0xf4] = op("hlt", "", "hlt", { term: true });
oneByte[0xf5] = op("cmc", "", "flagOp", { sub: 0 });
oneByte[0xf6] = group("grp3", [
  op("test", "Eb,Ib", "test"), op("test", "Eb,Ib", "test"), op("not", "Eb", "not", { lock: true }),
  op("neg", "Eb", "neg", { lock: true }), op("mul", "Eb", "mul"), op("imul", "Eb", "imul1"),
  op("div", "Eb", "div"), op("idiv", "Eb", "idiv"),
]);
oneByte[0xf7] = group("grp3", [
  op("test", "Ev,Iz", "test"), op("test", "Ev,Iz", "test"), op("not", "Ev", "not", { lock: true }),
  op("neg", "Ev", "neg", { lock: true }), op("mul", "Ev", "mul"), op("imul", "Ev", "imul1"),
  op("div", "Ev", "div"), op("idiv", "Ev", "idiv"),
]);
oneByte[0xf8] = op("clc", "", "flagOp", { sub: 1 });
oneByte[0xf9] = op("stc", "", "flagOp", { sub: 2 });
oneByte[0xfa] = op("cli", "", "cli");
oneByte[0xfb] = op("sti", "", "sti", { term: true });
oneByte[0xfc] = op("cld", "", "flagOp", { sub: 3 });
oneByte[0xfd] = op("std", "", "flagOp", { sub: 4 });
oneByte[0xfe] = group("grp4", [op("inc", "Eb", "incdec", { sub: 0, lock: true }), op("dec", "Eb", "incdec", { sub: 1, lock: true })]);
oneByte[0xff] = group("grp5", [
  op("inc", "Ev", "incdec", { sub: 0, lock: true }), op("dec", "Ev", "incdec", { sub: 1, lock: true }),
  op("call", "Ev", "callNear", { term: true }), op("callf", "Mp", "callFarIndirect", { term: true }),
  op("jmp", "Ev", "jmpNear", { term: true }), op("jmpf", "Mp", "jmpFarIndirect", { term: true }),
  op("push", "Ev", "push"),
]);

// ---------------------------------------------------------------------------------------------
// The two-byte opcode map, 0F xx (SDM volume 2, table A-3)
// ---------------------------------------------------------------------------------------------
// SLDT, STR and SMSW are Rv/Mw in the SDM: a word in memory, a whole register (ops.ts writes it).
twoByte[0x00] = group("grp6", [
  op("sldt", "Ew", "sldt"), op("str", "Ew", "str"), op("lldt", "Ew", "lldt", { term: true }),
  op("ltr", "Ew", "ltr", { term: true }), op("verr", "Ew", "verrw", { sub: 0 }), op("verw", "Ew", "verrw", { sub: 1 }),
]);
twoByte[0x01] = group("grp7", [
  op("sgdt", "Ms", "sdt", { sub: 0 }), op("sidt", "Ms", "sdt", { sub: 1 }),
  op("lgdt", "Ms", "ldt", { sub: 0, term: true }), op("lidt", "Ms", "ldt", { sub: 1, term: true }),
  op("smsw", "Ew", "smsw"), undefined, op("lmsw", "Ew", "lmsw", { term: true }), op("invlpg", "M", "invlpg", { term: true }),
], {
  [0 << 3 | 1]: op("vmcall", "", "vmcall", { term: true }),
});
twoByte[0x02] = op("lar", "Gv,Ew", "larlsl", { sub: 0 });
twoByte[0x03] = op("lsl", "Gv,Ew", "larlsl", { sub: 1 });
twoByte[0x06] = op("clts", "", "clts");
twoByte[0x08] = op("invd", "", "invd", { term: true });
twoByte[0x09] = op("wbinvd", "", "wbinvd", { term: true });
twoByte[0x0b] = op("ud2", "", "ud");
// 0F 18–0F 1F: prefetch hints and hint NOPs (ENDBR32 is F3 0F 1E FB) execute as NOP Ev.
for (let x = 0x18; x <= 0x1f; x++) twoByte[x] = group("nop", new Array(8).fill(0).map(() => op("nop", "Ev", "nop")));
twoByte[0x20] = op("mov", "Rd,Cd", "movFromCr");
twoByte[0x21] = op("mov", "Rd,Dd", "movFromDr");
twoByte[0x22] = op("mov", "Cd,Rd", "movToCr", { term: true });
twoByte[0x23] = op("mov", "Dd,Rd", "movToDr", { term: true });
twoByte[0x30] = op("wrmsr", "", "wrmsr", { term: true });
twoByte[0x31] = op("rdtsc", "", "rdtsc", { term: true });
twoByte[0x32] = op("rdmsr", "", "rdmsr", { term: true });
twoByte[0xa0] = op("push", "FS", "pushSeg");
twoByte[0xa1] = op("pop", "FS", "popSeg", { term: true });
twoByte[0xa2] = op("cpuid", "", "cpuid", { term: true });
twoByte[0xa3] = op("bt", "Ev,Gv", "bt", { sub: 0 });
twoByte[0xa4] = op("shld", "Ev,Gv,Ib", "shd", { sub: 0 });
twoByte[0xa5] = op("shld", "Ev,Gv,CL", "shd", { sub: 0 });
twoByte[0xa8] = op("push", "GS", "pushSeg");
twoByte[0xa9] = op("pop", "GS", "popSeg", { term: true });
twoByte[0xab] = op("bts", "Ev,Gv", "bt", { sub: 1, lock: true });
twoByte[0xac] = op("shrd", "Ev,Gv,Ib", "shd", { sub: 1 });
twoByte[0xad] = op("shrd", "Ev,Gv,CL", "shd", { sub: 1 });
twoByte[0xaf] = op("imul", "Gv,Ev", "imul2");
twoByte[0xb0] = op("cmpxchg", "Eb,Gb", "cmpxchg", { lock: true });
twoByte[0xb1] = op("cmpxchg", "Ev,Gv", "cmpxchg", { lock: true });
twoByte[0xb2] = op("lss", "Gv,Mp", "loadFarPtr", { sub: Seg.SS, term: true });
twoByte[0xb3] = op("btr", "Ev,Gv", "bt", { sub: 2, lock: true });
twoByte[0xb4] = op("lfs", "Gv,Mp", "loadFarPtr", { sub: Seg.FS, term: true });
twoByte[0xb5] = op("lgs", "Gv,Mp", "loadFarPtr", { sub: Seg.GS, term: true });
twoByte[0xb6] = op("movzx", "Gv,Eb", "movzx");
twoByte[0xb7] = op("movzx", "Gv,Ew", "movzx");
twoByte[0xba] = group("grp8", [
  undefined, undefined, undefined, undefined,
  op("bt", "Ev,Ib", "bt", { sub: 0 }), op("bts", "Ev,Ib", "bt", { sub: 1, lock: true }),
  op("btr", "Ev,Ib", "bt", { sub: 2, lock: true }), op("btc", "Ev,Ib", "bt", { sub: 3, lock: true }),
]);
twoByte[0xbb] = op("btc", "Ev,Gv", "bt", { sub: 3, lock: true });
twoByte[0xbc] = op("bsf", "Gv,Ev", "bsf");
twoByte[0xbd] = op("bsr", "Gv,Ev", "bsr");
twoByte[0xbe] = op("movsx", "Gv,Eb", "movsx");
twoByte[0xbf] = op("movsx", "Gv,Ew", "movsx");
twoByte[0xc0] = op("xadd", "Eb,Gb", "xadd", { lock: true });
twoByte[0xc1] = op("xadd", "Ev,Gv", "xadd", { lock: true });
twoByte[0xc7] = group("grp9", [undefined, op("cmpxchg8b", "Mq", "cmpxchg8b", { lock: true })]);
for (let r = 0; r < 8; r++) twoByte[0xc8 + r] = op("bswap", "Zd", "bswap");

// MMX, SSE, SSE2, SSE3 (sse/table.ts): each opcode becomes a prefix selector over four columns; a
// group row (0F 71-73, 0F AE) becomes a group inside its column.
for (const r of SSE_ROWS) {
  let sel = twoByte[r.op];
  if (!sel) {
    sel = { name: "(sse)", sem: "ud", ops: [], sub: 0, lock: false, terminal: false, modrm: false, regOnly: false, pfx: [undefined, undefined, undefined, undefined] };
    twoByte[r.op] = sel;
  }
  if (!sel.pfx) throw new Error(`SSE row 0F ${r.op.toString(16)} collides with an existing entry`);
  const e = op(r.name, r.spec, r.sem, { sub: r.sub });
  if (r.reg === undefined) { sel.pfx[r.pfx] = e; continue; }
  let g = sel.pfx[r.pfx];
  if (!g) { g = group("grp", [undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined], {}); sel.pfx[r.pfx] = g; }
  if (r.mod3) for (let rm = 0; rm < 8; rm++) g.mod3![r.reg << 3 | rm] = e;
  else g.group![r.reg] = e;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/** Reads instruction bytes; throws a CpuFault (#PF, #GP) when a byte cannot be fetched. */
export type FetchByte = (offset: number) => number;

const UD_ENTRY = op("(bad)", "", "ud");
const execs: Record<string, Exec> = semantics as unknown as Record<string, Exec>;

/** The maximum instruction length (SDM 2.3.11); longer is #GP(0). */
export const MAX_INSN_LEN = 15;

/**
 * Decode one instruction.
 * @param fetch reads the byte at an offset from the instruction's first byte
 * @param code32 the code segment's default operand and address size is 32 bits (CS.D)
 * @returns the decoded instruction; an undefined opcode decodes to the `ud` semantic (#UD when run)
 */
export function decode(fetch: FetchByte, code32: boolean, out: Insn = new Insn()): Insn {
  let p = 0;
  let osz = code32 ? 4 : 2;
  let asz = code32 ? 4 : 2;
  let seg = -1;
  let rep = 0;
  let lock = false;
  let b = 0;
  const next = (): number => {
    if (p >= MAX_INSN_LEN) throw new CpuFault(Vec.GP, 0);
    return fetch(p++);
  };
  for (;;) {
    b = next();
    if (b === 0x66) osz = code32 ? 2 : 4;
    else if (b === 0x67) asz = code32 ? 2 : 4;
    else if (b === 0x26) seg = Seg.ES;
    else if (b === 0x2e) seg = Seg.CS;
    else if (b === 0x36) seg = Seg.SS;
    else if (b === 0x3e) seg = Seg.DS;
    else if (b === 0x64) seg = Seg.FS;
    else if (b === 0x65) seg = Seg.GS;
    else if (b === 0xf0) lock = true;
    else if (b === 0xf2) rep = 2;
    else if (b === 0xf3) rep = 1;
    else break;
  }
  let entry: OpEntry | undefined;
  let opcode = b;
  if (b === 0x0f) {
    b = next();
    opcode = 0x100 | b;
    entry = twoByte[b];
    if (entry !== undefined && entry.pfx !== undefined) {
      // The last of F2/F3 wins over 66; the selecting prefix is not a REP or operand-size prefix.
      const col = rep === 1 ? 2 : rep === 2 ? 3 : osz !== (code32 ? 4 : 2) ? 1 : 0;
      entry = entry.pfx[col];
      if (col === 1) osz = code32 ? 4 : 2;
      else if (col !== 0) rep = 0;
    }
  } else {
    entry = oneByte[b];
  }
  const i = out;
  i.osz = osz;
  i.asz = asz;
  i.rep = rep;
  i.lock = lock;
  i.opcode = opcode;
  i.mod = -1;
  i.reg = 0;
  i.rm = 0;
  i.base = -1;
  i.index = -1;
  i.scale = 0;
  i.disp = 0;
  i.dk = OpKind.NONE;
  i.sk = OpKind.NONE;
  i.dr = 0;
  i.sr = 0;
  i.imm = 0;
  i.imm2 = 0;
  i.segOverride = seg >= 0;
  i.seg = seg >= 0 ? seg : Seg.DS;

  if (entry && entry.modrm) {
    const modrm = next();
    i.mod = modrm >> 6;
    i.reg = (modrm >> 3) & 7;
    i.rm = modrm & 7;
    if (entry.group) {
      // With mod = 3, a group with a mod3 table (0F 01) holds whole instructions keyed by reg and
      // rm (VMCALL is 0F 01 C1); the other members (SMSW, LMSW) take a register operand as usual.
      const g: OpEntry | undefined = (i.mod === 3 && entry.mod3 ? entry.mod3[i.reg << 3 | i.rm] : undefined) ?? entry.group[i.reg];
      entry = g;
    }
    if (entry && entry.regOnly) i.mod = 3;
    if (entry && i.mod !== 3 && entry.modrm) {
      if (asz === 2) decodeModrm16(i, next, seg);
      else decodeModrm32(i, next, seg);
    }
    // A group member without operands (0F 01 C1 VMCALL) has consumed its ModRM byte above.
  }
  if (!entry) entry = UD_ENTRY;
  i.name = entry.name;
  i.sub = entry.sub;
  i.terminal = entry.terminal;
  i.exec = execs[entry.sem];

  // LOCK is only valid on a lockable instruction with a memory destination (SDM 8.1.2.2).
  if (lock && (!entry.lock || i.mod === 3 || i.mod === -1)) {
    i.exec = execs.ud;
    i.name = "lock " + i.name;
  }

  const ops = entry.ops;
  const size0 = ops.length ? sizeOf(ops[0], osz) : osz;
  i.size = size0 > 0 ? size0 : osz;
  for (let k = 0; k < ops.length; k++) {
    const o = ops[k];
    const size = sizeOf(o, osz);
    let kind: number = OpKind.NONE;
    let idx = 0;
    switch (o.m) {
      case "E":
        if (i.mod === 3) { kind = OpKind.REG; idx = regIndex(i.rm, size); } else kind = OpKind.MEM;
        break;
      case "M":
        if (i.mod === 3) { i.exec = execs.ud; } else kind = OpKind.MEM;
        break;
      case "G": kind = OpKind.REG; idx = regIndex(i.reg, size); break;
      case "R": kind = OpKind.REG; idx = i.rm; break;
      // XMM (V, W, U) and MMX (P, Q, N) operands: the register number itself (sse/common.ts).
      case "V": case "P": kind = OpKind.REG; idx = i.reg; break;
      case "W": case "Q":
        if (i.mod === 3) { kind = OpKind.REG; idx = i.rm; } else kind = OpKind.MEM;
        break;
      case "U": case "N":
        if (i.mod === 3) { kind = OpKind.REG; idx = i.rm; } else i.exec = execs.ud;
        break;
      case "C":
        // CR1 and CR5–CR7 do not exist (SDM MOV—Move to/from Control Registers: #UD).
        if (i.reg === 1 || i.reg >= 5) i.exec = execs.ud;
        kind = OpKind.REG; idx = i.reg; break;
      case "D": kind = OpKind.REG; idx = i.reg; break;
      case "S":
        // Only ES..GS exist, and CS cannot be loaded by MOV (SDM MOV: #UD).
        if (i.reg > 5 || (k === 0 && i.reg === Seg.CS)) i.exec = execs.ud;
        kind = OpKind.REG; idx = i.reg; break;
      case "Z": kind = OpKind.REG; idx = regIndex(b & 7, size); break;
      case "I": {
        let v: number;
        if (o.s === "b") v = next();
        else if (o.s === "bs") v = (next() << 24) >> 24;
        else if (o.s === "w") v = next() | (next() << 8);
        else v = fetchImm(next, osz);
        if (k === 0) { i.imm = v; kind = OpKind.IMM; }
        else if (k === 1) { if (i.dk === OpKind.IMM) i.imm2 = v; else i.imm = v; kind = OpKind.IMM; }
        else i.imm = v; // third operand: IMUL Gv,Ev,Iz and SHLD/SHRD Ev,Gv,Ib
        break;
      }
      case "J": {
        const v = o.s === "b" ? (next() << 24) >> 24 : osz === 2 ? ((next() | (next() << 8)) << 16) >> 16 : fetchImm(next, 4);
        i.imm = v;
        kind = OpKind.IMM;
        break;
      }
      case "A": {
        i.imm = fetchImm(next, osz) >>> 0;
        i.imm2 = next() | (next() << 8);
        kind = OpKind.IMM;
        break;
      }
      case "O": {
        i.disp = asz === 2 ? next() | (next() << 8) : fetchImm(next, 4);
        kind = OpKind.MEM;
        break;
      }
      case "AL": kind = OpKind.REG; idx = 0; break;
      case "CL": kind = OpKind.REG; idx = regIndex(1, 1); break;
      case "DX": kind = OpKind.REG; idx = regIndex(2, 2); break;
      case "eAX": kind = OpKind.REG; idx = regIndex(0, osz); break;
      case "1": kind = OpKind.IMM; i.imm = 1; break;
      case "ES": kind = OpKind.REG; idx = Seg.ES; break;
      case "CS": kind = OpKind.REG; idx = Seg.CS; break;
      case "SS": kind = OpKind.REG; idx = Seg.SS; break;
      case "DS": kind = OpKind.REG; idx = Seg.DS; break;
      case "FS": kind = OpKind.REG; idx = Seg.FS; break;
      case "GS": kind = OpKind.REG; idx = Seg.GS; break;
      default: break; // X, Y string operands: the semantic addresses them itself
    }
    if (k === 0) { i.dk = kind; i.dr = idx; }
    else if (k === 1) { i.sk = kind; i.sr = idx; }
    else if (kind === OpKind.REG) i.imm = -1; // SHLD/SHRD Ev,Gv,CL: the count comes from CL
  }
  i.len = p;
  return i;
}

function fetchImm(next: () => number, size: number): number {
  if (size === 2) return next() | (next() << 8);
  return next() | (next() << 8) | (next() << 16) | (next() << 24);
}

function sizeOf(o: OperandSpec, osz: number): number {
  switch (o.s) {
    case "b": case "bs": return 1;
    case "w": return 2;
    case "d": return 4;
    case "q": return 8;
    case "v": case "z": return osz;
    case "": {
      if (o.m === "AL" || o.m === "CL") return 1;
      if (o.m === "DX") return 2;
      if (o.m === "eAX") return osz;
      return 0;
    }
    default: return osz;
  }
}

/** 16-bit ModRM addressing (SDM table 2-1). */
const RM16_BASE = [3, 3, 5, 5, 6, 7, 5, 3]; // BX, BX, BP, BP, SI, DI, BP, BX
const RM16_INDEX = [6, 7, 6, 7, -1, -1, -1, -1]; // SI, DI, SI, DI
function decodeModrm16(i: Insn, next: () => number, seg: number): void {
  const mod = i.mod, rm = i.rm;
  if (mod === 0 && rm === 6) {
    i.disp = next() | (next() << 8);
    i.base = -1;
    i.index = -1;
  } else {
    i.base = RM16_BASE[rm];
    i.index = RM16_INDEX[rm];
    if (mod === 1) i.disp = (next() << 24) >> 24;
    else if (mod === 2) i.disp = next() | (next() << 8);
  }
  // BP-based addressing defaults to SS (SDM 3.7.5).
  if (seg < 0 && i.base === 5) i.seg = Seg.SS;
}

/** 32-bit ModRM and SIB addressing (SDM tables 2-2 and 2-3). */
function decodeModrm32(i: Insn, next: () => number, seg: number): void {
  const mod = i.mod, rm = i.rm;
  if (rm === 4) {
    const sib = next();
    const ss = sib >> 6, idx = (sib >> 3) & 7, base = sib & 7;
    i.scale = ss;
    i.index = idx === 4 ? -1 : idx;
    if (base === 5 && mod === 0) {
      i.base = -1;
      i.disp = fetchImm(next, 4);
    } else {
      i.base = base;
    }
  } else if (rm === 5 && mod === 0) {
    i.base = -1;
    i.disp = fetchImm(next, 4);
  } else {
    i.base = rm;
  }
  if (mod === 1) i.disp = (next() << 24) >> 24;
  else if (mod === 2) i.disp = fetchImm(next, 4);
  // ESP- and EBP-based addressing defaults to SS (SDM 3.7.5).
  if (seg < 0 && (i.base === 4 || i.base === 5)) i.seg = Seg.SS;
}
