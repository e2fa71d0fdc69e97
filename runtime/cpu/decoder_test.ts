/**
 * The table-driven decoder checked against an independent decoder (iced-x86) on random bytes.
 *
 * Each sample is 0–4 random legacy prefixes, a random opcode (one byte, or 0F and a byte) and
 * random bytes after it, from a seeded PRNG, so every run sees the same samples. Both decoders
 * decode it in 16-bit and in 32-bit code, and for every opcode our table implements we require:
 *   - the same verdict, valid or invalid (#UD, or #GP for more than 15 bytes);
 *   - for valid instructions, the same length and the same operands: register numbers, memory base,
 *     index, scale, displacement, segment and access size, immediates, near-branch targets and far
 *     pointers.
 *
 * Out of scope, not compared (the processor has no SIMD unit; x87 operands are not ModRM operands):
 *   - x87 escapes D8–DF (runtime/cpu/x87/x87_test.ts checks which forms are #UD against iced, and
 *     tests/x87 runs them against the host CPU);
 *   - MMX/SSE/AVX: 0F 10–17, 0F 28–2F, 0F 50–7F, 0F C2–C6, 0F D0–FF, 0F AE (fxsave, fences);
 *   - the three-byte maps 0F 38 and 0F 3A, 3DNow! (0F 0F) and 0F 0D/0E (prefetchw, femms);
 *   - VEX, EVEX and XOP encodings (C4/C5/62/8F that iced reads as such).
 * Representation differences that are not disagreements: iced shows XLAT's implicit memory operand
 * (we compare its segment), a second register operand on the hint NOPs 0F 18–1F (we decode Ev only),
 * 32-bit registers for word operands with a 32-bit operand size (Ew, Gw: only the low word is used),
 * and BSWAP of a 16-bit register, undefined by the SDM, which we decode as the 32-bit register.
 *
 * Opcodes in scope that our table does not define (SYSENTER, RDRAND, MONITOR, ...) are counted,
 * and must be invalid for us; iced may call them valid.
 *
 * `DECODER_FUZZ_COUNT=1000000 deno test -A runtime/cpu/decoder_test.ts` runs a million samples
 * per mode; the default is 100,000 (well under a second).
 */
import { test } from "node:test";
import process from "node:process";
import { Decoder, DecoderOptions, EncodingKind, type Instruction, MemorySizeExt, OpKind as IcedOp, Register } from "iced-x86";
import { assert, assertEquals } from "../../tests/assert.ts";
import { decode, type OpEntry, oneByte, twoByte } from "./decoder.ts";
import { CpuFault } from "./fault.ts";
import { Insn, OpKind, regIndex } from "./insn.ts";
import { semantics } from "./ops.ts";

/** Bytes per sample slot: one more than the longest instruction. */
const SLOT = 16;
const PREFIXES = [0x66, 0x67, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0xf0, 0xf2, 0xf3];
const PREFIX_SET = new Set(PREFIXES);
/**
 * iced options that describe this processor: F3 0F BC/BD are BSF/BSR (no BMI1/LZCNT), F3 90 is
 * NOP (PAUSE is a hint that executes as NOP anyway), F3 0F 09 is WBINVD, and every 0F 18–1F form is
 * a reserved NOP (no MPX or CET).
 */
const ICED_OPTIONS = DecoderOptions.NoMPFX_0FBC | DecoderOptions.NoMPFX_0FBD | DecoderOptions.NoPause |
  DecoderOptions.NoWbnoinvd | DecoderOptions.ForceReservedNop;

function outOfScope(twoByteMap: boolean, b: number): boolean {
  if (!twoByteMap) return b >= 0xd8 && b <= 0xdf;
  return (b >= 0x10 && b <= 0x17) || (b >= 0x28 && b <= 0x2f) || (b >= 0x50 && b <= 0x7f) ||
    (b >= 0xc2 && b <= 0xc6) || b >= 0xd0 || b === 0xae || b === 0x38 || b === 0x3a || b === 0x0f ||
    b === 0x0d || b === 0x0e;
}

/** Deterministic 32-bit PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Fill `buf` with `count` samples of SLOT bytes. */
function generate(count: number, seed: number): Uint8Array {
  const rnd = prng(seed);
  const buf = new Uint8Array(count * SLOT);
  for (let s = 0; s < count; s++) {
    const o = s * SLOT;
    for (let k = 0; k < SLOT; k++) buf[o + k] = rnd() & 0xff;
    const r = rnd();
    const nPfx = (r & 7) < 4 ? 0 : (r & 7) < 6 ? 1 : 2 + ((r >> 3) % 3);
    let p = o;
    for (let k = 0; k < nPfx; k++) buf[p++] = PREFIXES[(r >>> (6 + 3 * k)) % PREFIXES.length];
    if ((r >>> 24) % 10 < 3) buf[p] = 0x0f; // a third of samples use the two-byte map
  }
  return buf;
}

/** Where a sample lands in our opcode table. */
interface Slot {
  key: string;
  /** The table entry after group selection; undefined when our table has none. */
  entry: OpEntry | undefined;
  scope: "in" | "out";
}
function hex(b: number): string {
  return b.toString(16).padStart(2, "0").toUpperCase();
}
function classify(buf: Uint8Array, o: number): Slot {
  let p = o;
  while (p < o + 15 && PREFIX_SET.has(buf[p])) p++;
  if (p >= o + 15) return { key: "prefixes only", entry: undefined, scope: "in" };
  let b = buf[p++];
  const two = b === 0x0f;
  if (two) b = buf[p++];
  const key = (two ? "0F " : "") + hex(b);
  if (outOfScope(two, b)) return { key, entry: undefined, scope: "out" };
  let entry = (two ? twoByte : oneByte)[b];
  if (entry?.group) {
    const modrm = buf[p];
    const mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
    if (mod === 3 && entry.mod3) {
      // 0F 01 with mod = 3 encodes whole instructions in reg and rm (VMCALL, MONITOR, XGETBV, ...):
      // only the ones listed, and the members that take a register operand (SMSW, LMSW), are ours.
      const m = entry.mod3[reg << 3 | rm];
      const g = entry.group[reg];
      const member = m ?? (g && g.ops.some((x) => x.m === "E") ? g : undefined);
      return { key: `${key} ${hex(modrm)}`, entry: member, scope: "in" };
    }
    return { key: `${key} /${reg}`, entry: entry.group[reg], scope: "in" };
  }
  return { key, entry, scope: "in" };
}

/** Our verdict: undefined when the bytes do not decode to an instruction (#UD or over-long). */
function ours(buf: Uint8Array, o: number, code32: boolean): Insn | undefined {
  let i: Insn;
  try {
    i = decode((k) => buf[o + k], code32);
  } catch (e) {
    if (e instanceof CpuFault) return undefined;
    throw e;
  }
  // UD2 (0F 0B) is a valid instruction whose semantics is #UD; LOCK UD2 is not.
  if (i.exec === semantics.ud && (i.opcode !== 0x10b || i.lock)) return undefined;
  return i;
}

// iced registers as (class, number, size).
function icedReg(r: Register): { cls: "gpr" | "seg" | "cr" | "dr" | "other"; num: number; size: number } {
  if (r >= Register.AL && r <= Register.BH) return { cls: "gpr", num: r - Register.AL, size: 1 };
  if (r >= Register.AX && r <= Register.DI) return { cls: "gpr", num: r - Register.AX, size: 2 };
  if (r >= Register.EAX && r <= Register.EDI) return { cls: "gpr", num: r - Register.EAX, size: 4 };
  if (r >= Register.ES && r <= Register.GS) return { cls: "seg", num: r - Register.ES, size: 2 };
  if (r >= Register.CR0 && r <= Register.CR15) return { cls: "cr", num: r - Register.CR0, size: 4 };
  if (r >= Register.DR0 && r <= Register.DR15) return { cls: "dr", num: r - Register.DR0, size: 4 };
  return { cls: "other", num: -1, size: 0 };
}
/** A GPR used in an address as our register number (-1 for none). */
function addrReg(r: Register): number {
  if (r === Register.None) return -1;
  const x = icedReg(r);
  return x.cls === "gpr" && x.size > 1 ? x.num : -100 - r;
}

function immMask(kind: IcedOp): number {
  switch (kind) {
    case IcedOp.Immediate8: case IcedOp.Immediate8_2nd: return 0xff;
    case IcedOp.Immediate16: case IcedOp.Immediate8to16: return 0xffff;
    default: return 0xffffffff;
  }
}
function masked(v: number, m: number): number {
  return m === 0xffffffff ? v >>> 0 : v & m;
}

/**
 * Compare the operands of one valid instruction.
 * @returns a description of the first difference, or null
 */
function compareOperands(i: Insn, entry: OpEntry, ice: Instruction): string | null {
  const specs = entry.ops;
  if (entry.sem === "xlat") {
    // iced shows XLAT's implicit [BX+AL] operand; we decode only its segment.
    const seg = icedReg(ice.memorySegment).num;
    return i.seg === seg ? null : `xlat segment ${i.seg}, iced ${seg}`;
  }
  // The hint NOPs 0F 18–1F: iced reads them as "reserved NOP Ev,Gv"; we decode Ev only.
  const hintNop = entry.sem === "nop" && entry.modrm;
  if (!hintNop && ice.opCount !== specs.length) return `operand count ${specs.length}, iced ${ice.opCount}`;
  for (let k = 0; k < specs.length; k++) {
    const m = specs[k].m;
    const kind = ice.opKind(k);
    // Our view of operand k: the destination, the source, or (third operand) the immediate.
    const ourKind = k === 0 ? i.dk : k === 1 ? i.sk : (m === "CL" ? OpKind.REG : OpKind.IMM);
    const ourReg = k === 0 ? i.dr : k === 1 ? i.sr : 1;
    const ourImm = k === 0 ? i.imm : k === 1 ? (i.dk === OpKind.IMM ? i.imm2 : i.imm) : i.imm;
    const what = `operand ${k} (${m}${specs[k].s})`;
    switch (kind) {
      case IcedOp.Register: {
        const r = icedReg(ice.opRegister(k));
        if (ourKind !== OpKind.REG) return `${what}: iced register, ours kind ${ourKind}`;
        let want: number;
        if (r.cls === "gpr") {
          // Word operands (Ew, Gw) are 16-bit whatever iced prints with a 32-bit operand size, and
          // BSWAP of a 16-bit register is undefined (SDM BSWAP): we swap the 32-bit register.
          const size = specs[k].s === "w" ? 2 : entry.sem === "bswap" ? 4 : r.size;
          want = m === "R" || k === 2 ? r.num : regIndex(r.num, size);
        }
        else if (r.cls === "other") return `${what}: iced register ${Register[ice.opRegister(k)]}`;
        else want = r.num;
        if (ourReg !== want) return `${what}: register index ${ourReg}, iced ${Register[ice.opRegister(k)]} (index ${want})`;
        break;
      }
      case IcedOp.Memory: {
        if (ourKind !== OpKind.MEM) return `${what}: iced memory, ours kind ${ourKind}`;
        const base = addrReg(ice.memoryBase), index = addrReg(ice.memoryIndex);
        const scale = Math.log2(ice.memoryIndexScale);
        const dmask = i.asz === 4 ? 0xffffffff : 0xffff;
        const disp = Number(ice.memoryDisplacement & BigInt(dmask));
        const seg = icedReg(ice.memorySegment).num;
        if (i.base !== base || i.index !== index || (index >= 0 && i.scale !== scale)) {
          return `${what}: base/index/scale ${i.base}/${i.index}/${i.scale}, iced ${base}/${index}/${scale}`;
        }
        if (masked(i.disp, dmask) !== disp) return `${what}: displacement 0x${masked(i.disp, dmask).toString(16)}, iced 0x${disp.toString(16)}`;
        if (i.seg !== seg) return `${what}: segment ${i.seg}, iced ${seg}`;
        // The access size of E and O operands (M operands have their own shapes: far pointers,
        // BOUND pairs, descriptor-table registers, LEA's none).
        if ((m === "E" || m === "O") && !hintNop) {
          const s = specs[k].s;
          const want = s === "b" ? 1 : s === "w" ? 2 : s === "d" ? 4 : i.osz;
          const got = MemorySizeExt.size(ice.memorySize);
          if (got !== want) return `${what}: access size ${want}, iced ${got}`;
        }
        break;
      }
      case IcedOp.Immediate8: case IcedOp.Immediate8_2nd: case IcedOp.Immediate16: case IcedOp.Immediate32:
      case IcedOp.Immediate8to16: case IcedOp.Immediate8to32: {
        if (ourKind !== OpKind.IMM) return `${what}: iced immediate, ours kind ${ourKind}`;
        const mk = immMask(kind);
        const want = Number(ice.immediate(k) & BigInt(mk));
        if (masked(ourImm, mk) !== want) return `${what}: immediate 0x${masked(ourImm, mk).toString(16)}, iced 0x${want.toString(16)}`;
        break;
      }
      case IcedOp.NearBranch16: case IcedOp.NearBranch32: {
        if (ourKind !== OpKind.IMM) return `${what}: iced branch, ours kind ${ourKind}`;
        const mk = kind === IcedOp.NearBranch16 ? 0xffff : 0xffffffff;
        const want = kind === IcedOp.NearBranch16 ? ice.nearBranch16 : ice.nearBranch32;
        const got = masked(i.len + i.imm, mk);
        if (got !== want) return `${what}: branch target 0x${got.toString(16)}, iced 0x${want.toString(16)}`;
        break;
      }
      case IcedOp.FarBranch16: case IcedOp.FarBranch32: {
        const off = kind === IcedOp.FarBranch16 ? ice.farBranch16 : ice.farBranch32;
        if ((i.imm >>> 0) !== off || i.imm2 !== ice.farBranchSelector) {
          return `${what}: far pointer ${i.imm2.toString(16)}:${(i.imm >>> 0).toString(16)}, iced ${ice.farBranchSelector.toString(16)}:${off.toString(16)}`;
        }
        break;
      }
      case IcedOp.MemorySegSI: case IcedOp.MemorySegESI: case IcedOp.MemorySegDI: case IcedOp.MemorySegEDI: {
        // String source (X): the semantics address it themselves; only the segment is decoded.
        if (ourKind !== OpKind.NONE) return `${what}: iced string operand, ours kind ${ourKind}`;
        const seg = icedReg(ice.memorySegment).num;
        if (i.seg !== seg) return `${what}: string segment ${i.seg}, iced ${seg}`;
        break;
      }
      case IcedOp.MemoryESDI: case IcedOp.MemoryESEDI:
        if (ourKind !== OpKind.NONE) return `${what}: iced ES:DI operand, ours kind ${ourKind}`;
        break;
      default:
        return `${what}: unexpected iced operand kind ${IcedOp[kind]}`;
    }
  }
  return null;
}

/** What one fuzzing run saw. */
export interface FuzzStats {
  bitness: 16 | 32;
  samples: number;
  /** Samples in the out-of-scope classes listed at the top of this file. */
  outOfScope: number;
  /** In-scope opcodes our table does not define, and how often iced called each valid. */
  notInTable: number;
  notInTableValidInIced: Record<string, number>;
  /** Samples compared: the same verdict, and for valid ones the same length and operands. */
  compared: number;
  agreed: number;
  bothValid: number;
  bothInvalid: number;
  mismatches: string[];
}

/**
 * Decode `count` random samples with our decoder and iced-x86 and compare them.
 * @param bitness 16 or 32 (CS.D)
 * @param seed the PRNG seed
 * @param keep how many mismatch descriptions to keep
 */
export function fuzzDecoder(bitness: 16 | 32, count: number, seed: number, keep = 20): FuzzStats {
  const buf = generate(count, seed);
  const dec = new Decoder(bitness, buf, ICED_OPTIONS);
  const st: FuzzStats = {
    bitness, samples: count, outOfScope: 0, notInTable: 0, notInTableValidInIced: {}, compared: 0, agreed: 0,
    bothValid: 0, bothInvalid: 0, mismatches: [],
  };
  let bad = 0;
  const ice = dec.decode(); // an Instruction to decode into
  const code32 = bitness === 32;
  const note = (o: number, msg: string, i: Insn | undefined) => {
    bad++;
    if (st.mismatches.length < keep) {
      const bytes = Array.from(buf.subarray(o, o + 15), hex).join(" ");
      st.mismatches.push(`${bitness}-bit ${bytes}: ${msg} (ours ${i ? `${i.name} len ${i.len}` : "invalid"}, iced ${ice.isInvalid ? "invalid" : `${ice.toString()} len ${ice.length}`})`);
    }
  };
  for (let s = 0; s < count; s++) {
    const o = s * SLOT;
    dec.position = o;
    dec.ip = 0n;
    dec.decodeOut(ice);
    const slot = classify(buf, o);
    if (slot.scope === "out" || (!ice.isInvalid && ice.encoding !== EncodingKind.Legacy)) {
      st.outOfScope++;
      continue;
    }
    const mine = ours(buf, o, code32);
    const icedValid = !ice.isInvalid && ice.length <= 15;
    if (slot.entry === undefined && slot.key !== "prefixes only") {
      st.notInTable++;
      if (mine) note(o, `${slot.key} is not in our table but decodes`, mine);
      if (icedValid) st.notInTableValidInIced[slot.key] = (st.notInTableValidInIced[slot.key] ?? 0) + 1;
      continue;
    }
    st.compared++;
    if (!mine && !icedValid) { st.bothInvalid++; st.agreed++; continue; }
    if (!mine || !icedValid) { note(o, `${slot.key}: validity differs`, mine); continue; }
    st.bothValid++;
    if (mine.len !== ice.length) { note(o, `${slot.key}: length ${mine.len}, iced ${ice.length}`, mine); continue; }
    const diff = compareOperands(mine, slot.entry!, ice);
    if (diff) { note(o, `${slot.key}: ${diff}`, mine); continue; }
    st.agreed++;
  }
  ice.free();
  dec.free();
  if (bad > st.mismatches.length) st.mismatches.push(`... ${bad - st.mismatches.length} more`);
  return st;
}

const COUNT = Number(process.env.DECODER_FUZZ_COUNT ?? 100_000);
const VERBOSE = process.env.DECODER_FUZZ_VERBOSE === "1";

for (const bitness of [16, 32] as const) {
  test(`decode() agrees with iced-x86 on ${COUNT} random ${bitness}-bit instructions`, () => {
    const st = fuzzDecoder(bitness, COUNT, 0x5eed0000 + bitness);
    if (VERBOSE) console.log(JSON.stringify(st, null, 1));
    assertEquals(st.mismatches, []);
    // Most samples must land on opcodes we implement, or the comparison says little.
    assert(st.compared > COUNT / 2, `only ${st.compared} of ${COUNT} samples compared`);
    assert(st.bothValid > COUNT / 3, `only ${st.bothValid} of ${COUNT} samples valid in both`);
  });
}

/** Decode bytes as one instruction in 32-bit code. */
function d32(...bytes: number[]): Insn {
  return decode((k) => bytes[k] ?? 0x90, true);
}

test("decode() takes SMSW and LMSW with a register operand in the 0F 01 group that also holds VMCALL", () => {
  const smsw = d32(0x0f, 0x01, 0xe2); // smsw edx
  assertEquals([smsw.name, smsw.len, smsw.exec === semantics.smsw, smsw.dk, smsw.rm], ["smsw", 3, true, OpKind.REG, 2]);
  const lmsw = d32(0x0f, 0x01, 0xf0); // lmsw ax
  assertEquals([lmsw.name, lmsw.exec === semantics.lmsw], ["lmsw", true]);
  assertEquals(d32(0x0f, 0x01, 0xc1).name, "vmcall");
  assertEquals(d32(0x0f, 0x01, 0xc8).exec, semantics.ud); // MONITOR: not implemented, so #UD
});

test("decode() sends x87 escapes in register form (FLDZ, FUCOMIP) as well as memory form to the FPU semantics, which give #NM under CR0.EM", () => {
  // SDM Vol. 1 8.1 and Table 2-2 (Vol. 3A): every D8–DF form is an x87 instruction; with CR0.EM=1
  // it raises #NM so that an emulator (Linux's math-emu) can run it. A #UD instead made Linux send
  // SIGILL to busybox's sleep (FLDZ, D9 EE).
  assertEquals(d32(0xd9, 0xee).exec, semantics.fpu); // fldz
  assertEquals(d32(0xdf, 0xe9).exec, semantics.fpu); // fucomip st, st(1)
  assertEquals(d32(0xdd, 0x5c, 0x24, 0x08).exec, semantics.fpu); // fstp qword [esp+8]
  assertEquals(d32(0xd9, 0xee).len, 2);
});

test("decode() makes MOV to CS, MOV with segment register 6 or 7, and MOV with CR1 or CR5–CR7 #UD", () => {
  assertEquals(d32(0x8e, 0xc8).exec, semantics.ud); // mov cs, ax
  assertEquals(d32(0x8e, 0xd8).exec, semantics.movToSeg); // mov ds, ax
  assertEquals(d32(0x8c, 0xf0).exec, semantics.ud); // mov ax, sreg6
  assertEquals(d32(0x8e, 0xf8).exec, semantics.ud); // mov sreg7, ax
  assertEquals(d32(0x0f, 0x20, 0xc8).exec, semantics.ud); // mov eax, cr1
  assertEquals(d32(0x0f, 0x22, 0xe8).exec, semantics.ud); // mov cr5, eax
  assertEquals(d32(0x0f, 0x22, 0xe0).exec, semantics.movToCr); // mov cr4, eax
});

test("decode() reads the ModRM fields of MOV to and from control registers as registers whatever mod says", () => {
  // 0F 20 /r with mod = 00: the SDM says the mod bits are ignored, so no displacement follows.
  const bytes = [0x0f, 0x20, 0x05, 0x90, 0x90, 0x90, 0x90];
  const i = decode((k) => bytes[k], true);
  assertEquals([i.len, i.dr, i.sr], [3, 5, 0]);
});
