/**
 * Replays the host-CPU x87 vectors of `x87_oracle.c` (vectors.txt) under vmxlab: the same body of
 * machine code, the same inputs, and a comparison of what both leave: the FNSAVE image (control,
 * status and tag words and the eight registers; the instruction and data pointers are where the
 * code happened to sit, so they are left out), EFLAGS' arithmetic flags, EAX and the memory operand.
 *
 * Differences the SDM explains (the host is an AMD processor; vmxlab follows the SDM) are listed
 * in `KNOWN` with their reason and counted apart; anything else is a failure.
 * @module
 */
import { CpuHarness } from "../cpu_harness.ts";

export interface Vector {
  line: number;
  insn: number[];
  cw: number;
  eflagsIn: number;
  a: number[];
  b: number[];
  memIn: number[];
  save: number[];
  eflagsOut: number;
  eaxOut: number;
  memOut: number[];
}

const hexBytes = (s: string): number[] => {
  const out: number[] = [];
  for (let k = 0; k < s.length; k += 2) out.push(parseInt(s.slice(k, k + 2), 16));
  return out;
};

export function parseVectors(text: string): Vector[] {
  const out: Vector[] = [];
  text.split("\n").forEach((l, n) => {
    if (!l.trim()) return;
    const [lhs, rhs] = l.split(" : ");
    const [insn, cw, fl, a, b, mem] = lhs.split(" ");
    const [save, flo, eax, memOut] = rhs.split(" ");
    out.push({
      line: n + 1, insn: hexBytes(insn), cw: parseInt(cw, 16), eflagsIn: parseInt(fl, 16), a: hexBytes(a), b: hexBytes(b),
      memIn: hexBytes(mem), save: hexBytes(save), eflagsOut: parseInt(flo, 16), eaxOut: parseInt(eax, 16), memOut: hexBytes(memOut),
    });
  });
  return out;
}

/** The body both sides run (x87_oracle.c), then HLT. */
export function body(insn: number[]): number[] {
  return [
    0xdb, 0xe3, 0xd9, 0x2e, 0xdb, 0x6e, 0x18, 0xdb, 0x6e, 0x08, 0x8d, 0x5e, 0x28, 0x31, 0xc0, 0xff, 0x76, 0x04, 0x9d,
    ...insn,
    0x9c, 0x8f, 0x86, 0xb0, 0, 0, 0, 0x89, 0x86, 0xb4, 0, 0, 0, 0xdd, 0x76, 0x40,
    0xf4,
  ];
}

const CODE = 0x1000, CTX = 0x3000;
/** EFLAGS bits compared: CF PF AF ZF SF OF. */
const ARITH = 0x8d5;

export interface Outcome {
  save: number[];
  eflags: number;
  eax: number;
  mem: number[];
  exit: string;
}

/** Run one vector in `h` (a protected-mode harness, reused across vectors). */
export function runVector(h: CpuHarness, v: Vector): Outcome {
  h.write(CODE, body(v.insn));
  const ctx = new Uint8Array(192);
  ctx[0] = v.cw & 0xff;
  ctx[1] = v.cw >> 8;
  new DataView(ctx.buffer).setUint32(4, v.eflagsIn, true);
  ctx.set(v.a, 8);
  ctx.set(v.b, 24);
  ctx.set(v.memIn, 40);
  h.write(CTX, ctx);
  h.vcpu.setRegs({ rax: 0, rbx: 0, rsi: CTX, rsp: 0x80000, rflags: 2, rip: CODE });
  const r = h.run(1000);
  const out = h.read(CTX, 192);
  const dv = new DataView(out.buffer, out.byteOffset, 192);
  return {
    save: [...out.subarray(64, 172)], eflags: dv.getUint32(176, true), eax: dv.getUint32(180, true),
    mem: [...out.subarray(40, 56)], exit: r.exit.reason,
  };
}

export interface Diff {
  vector: Vector;
  what: string[];
}

/**
 * Fields that differ between vmxlab's outcome and the host's: FCW, FSW, FTW and the eight registers
 * of the FNSAVE image (not the instruction and data pointers), EFLAGS' arithmetic flags, EAX, memory.
 */
export function compare(v: Vector, o: Outcome): string[] {
  const what: string[] = [];
  if (o.exit !== "hlt") return [`exit ${o.exit}`];
  const hx = (b: number[]) => b.map((x) => x.toString(16).padStart(2, "0")).join("");
  const u16 = (b: number[], k: number) => b[k] | (b[k + 1] << 8);
  if (u16(o.save, 0) !== u16(v.save, 0)) what.push(`fcw ${u16(o.save, 0).toString(16)} want ${u16(v.save, 0).toString(16)}`);
  if (u16(o.save, 4) !== u16(v.save, 4)) what.push(`fsw ${u16(o.save, 4).toString(16)} want ${u16(v.save, 4).toString(16)}`);
  if (u16(o.save, 8) !== u16(v.save, 8)) what.push(`ftw ${u16(o.save, 8).toString(16)} want ${u16(v.save, 8).toString(16)}`);
  for (let r = 0; r < 8; r++) {
    const a = o.save.slice(28 + 10 * r, 38 + 10 * r), b = v.save.slice(28 + 10 * r, 38 + 10 * r);
    if (hx(a) !== hx(b)) what.push(`st${r} ${f80Hex(a)} want ${f80Hex(b)}`);
  }
  if ((o.eflags & ARITH) !== (v.eflagsOut & ARITH)) what.push(`eflags ${(o.eflags & ARITH).toString(16)} want ${(v.eflagsOut & ARITH).toString(16)}`);
  if (o.eax !== v.eaxOut) what.push(`eax ${o.eax.toString(16)} want ${v.eaxOut.toString(16)}`);
  if (hx(o.mem) !== hx(v.memOut)) what.push(`mem ${hx(o.mem)} want ${hx(v.memOut)}`);
  return what;
}

/** An 80-bit value as sign:exponent:significand hex. */
export function f80Hex(b: ArrayLike<number>): string {
  const se = b[8] | (b[9] << 8);
  let sig = "";
  for (let k = 7; k >= 0; k--) sig += b[k].toString(16).padStart(2, "0");
  return `${se >> 15 ? "-" : "+"}${(se & 0x7fff).toString(16).padStart(4, "0")}:${sig}`;
}

/** A fresh harness for `runVector`, FISTTP enabled (the host has SSE3). */
export function oracleHarness(): CpuHarness {
  const h = new CpuHarness("protected");
  h.vcpu.cpu.sse3 = true;
  return h;
}

const TRANS = new Set([0xf0, 0xf1, 0xf2, 0xf3, 0xf9, 0xfb, 0xfe, 0xff]);
const isTrans = (v: Vector) => v.insn[0] === 0xd9 && TRANS.has(v.insn[1]);
const COMPARE = new Set(["d8 d1", "d8 d9", "dc d1", "dc d9", "de d1", "de d9", "da e9", "dd e1", "dd e9", "d9 e4",
  "db e9", "db f1", "df e9", "df f1"]);
export const key = (v: Vector): string => v.insn.map((x) => x.toString(16)).join(" ");
const isCompare = (v: Vector) => COMPARE.has(key(v)) || ((v.insn[0] & 0xf9) === 0xd8 && ((v.insn[1] >> 3) & 7) >= 2 && ((v.insn[1] >> 3) & 7) <= 3 && v.insn[1] < 0xc0);

const f80Of = (b: number[]) => ({ se: b[8] | (b[9] << 8), sig: b.slice(0, 8).reduce((s, x, k) => s + (BigInt(x) << BigInt(8 * k)), 0n) });
const u16 = (b: number[], k: number) => b[k] | (b[k + 1] << 8);

/** Which listed class explains a difference, or null. */
export function explain(v: Vector, mine: { save: number[]; eflags: number }, what: string[]): string | null {
  const hostFsw = u16(v.save, 4), myFsw = u16(mine.save, 4);
  const unmasked = ~v.cw & 0x3f;
  if (isCompare(v) && (unmasked & (hostFsw | myFsw) & 0x3)) {
    // Only the condition codes / the compare's EFLAGS may differ.
    const cc = 0x4500;
    if (what.every((w) => w.startsWith("fsw") || w.startsWith("eflags")) && (hostFsw & ~cc) === (myFsw & ~cc)) return "compare-unmasked";
  }
  if ((key(v) === "d9 3" || key(v) === "dd 3") && (unmasked & 2) && (hostFsw & 2)) return "load-denormal-unmasked";
  if (isTrans(v)) {
    const x = f80Of(v.a);
    const e = (x.se & 0x7fff) - 16383;
    if (v.insn[1] === 0xf0 && e >= 0 && !(e === 0 && x.sig === 1n << 63n)) return "transcendental-domain";
    if (v.insn[1] === 0xf9 && e >= -2) return "transcendental-domain";
    // Within one ulp: same sign and exponent, significands one apart; FSW may differ in C1 only.
    const ok = what.every((w) => {
      if (w.startsWith("fsw")) return ((hostFsw ^ myFsw) & ~0x200) === 0;
      const m = /^st(\d)/.exec(w);
      if (!m) return false;
      const r = Number(m[1]);
      const a = f80Of(mine.save.slice(28 + 10 * r, 38 + 10 * r)), b = f80Of(v.save.slice(28 + 10 * r, 38 + 10 * r));
      const d = a.sig - b.sig;
      return a.se === b.se && (d === 1n || d === -1n);
    });
    if (ok) return "transcendental-ulp";
  }
  return null;
}
