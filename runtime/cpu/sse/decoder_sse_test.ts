/**
 * The MMX/SSE/SSE2/SSE3 part of the opcode table checked against an independent decoder
 * (iced-x86) on random bytes: 0-3 random prefixes (66, F2, F3, 67, segments), 0F, an opcode of the
 * SIMD rows (sse/table.ts) and random bytes, in 32- and 16-bit code. We require:
 *   - the same verdict: valid for us exactly when iced decodes an instruction whose CPUID features
 *     are among what this processor reports (MMX, SSE, SSE2, SSE3, FXSR, CLFSH); iced decodes newer
 *     ones (XSAVE, CLFLUSHOPT, SSE4A ...), which must be #UD here;
 *   - for valid ones: the same length, mnemonic, XMM/MMX/general register numbers, memory operand
 *     (base, index, scale, displacement) and imm8.
 * The decoder's general fuzz test (decoder_test.ts) leaves these opcodes out of its scope.
 */
import { test } from "node:test";
import process from "node:process";
import { CpuidFeature, Decoder, DecoderOptions, Mnemonic, OpKind as IcedOp, Register } from "iced-x86";
import { assertEquals } from "../../../tests/assert.ts";
import { decode } from "../decoder.ts";
import { CpuFault } from "../fault.ts";
import { type Insn, OpKind } from "../insn.ts";
import { semantics } from "../ops.ts";
import { SSE_ROWS } from "./table.ts";

const OPCODES = [...new Set(SSE_ROWS.map((r) => r.op))];
const PREFIXES = [0x66, 0xf2, 0xf3, 0x67, 0x2e, 0x3e, 0x26, 0x64, 0x66, 0xf2, 0xf3];
const ALLOWED = new Set<number>([CpuidFeature.INTEL8086, CpuidFeature.INTEL386, CpuidFeature.MMX, CpuidFeature.SSE,
  CpuidFeature.SSE2, CpuidFeature.SSE3, CpuidFeature.FXSR, CpuidFeature.CLFSH]);
/** Our names where the SDM gives the register form its own mnemonic. */
const ALIAS: Record<string, string> = { "movlps/mod3": "movhlps", "movhps/mod3": "movlhps" };
const GPR32 = [Register.EAX, Register.ECX, Register.EDX, Register.EBX, Register.ESP, Register.EBP, Register.ESI, Register.EDI];
const GPR16 = [Register.AX, Register.CX, Register.DX, Register.BX, Register.SP, Register.BP, Register.SI, Register.DI];

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
const mnemonicName = (m: number) => (Mnemonic as unknown as Record<number, string>)[m].toLowerCase();

function regNumber(r: Register): { cls: string; n: number } {
  if (r >= Register.XMM0 && r <= Register.XMM0 + 31) return { cls: "xmm", n: r - Register.XMM0 };
  if (r >= Register.MM0 && r <= Register.MM0 + 7) return { cls: "mm", n: r - Register.MM0 };
  if (GPR32.includes(r)) return { cls: "gpr", n: GPR32.indexOf(r) };
  if (GPR16.includes(r)) return { cls: "gpr", n: GPR16.indexOf(r) };
  return { cls: "other", n: -1 };
}

function ours(bytes: Uint8Array, code32: boolean): Insn | undefined {
  try {
    const i = decode((k) => bytes[k], code32);
    return i.exec === semantics.ud ? undefined : i;
  } catch (e) {
    if (e instanceof CpuFault) return undefined;
    throw e;
  }
}

/** Samples per mode: 100,000 by default; SSE_DECODER_FUZZ_COUNT for more. */
const COUNT = Number(process.env.SSE_DECODER_FUZZ_COUNT ?? 100_000);
for (const bits of [32, 16]) {
  test(`SIMD opcodes decode as iced-x86 decodes them (${bits}-bit code, ${COUNT} samples)`, () => {
    const rnd = prng(bits);
    const SLOT = 16;
    // iced copies its input when the decoder is made: every sample first, then one decoder.
    const all = new Uint8Array(COUNT * SLOT);
    const ends: number[] = [];
    for (let s = 0; s < COUNT; s++) {
      const o = s * SLOT;
      for (let k = 0; k < SLOT; k++) all[o + k] = rnd() & 0xff;
      let p = o;
      const n = rnd() % 4;
      for (let k = 0; k < n; k++) all[p++] = PREFIXES[rnd() % PREFIXES.length];
      all[p++] = 0x0f;
      all[p++] = OPCODES[rnd() % OPCODES.length];
      if (rnd() & 1) all[p] |= 0xc0; // half the samples with a register operand
      ends.push(p - o);
    }
    const dec = new Decoder(bits, all, DecoderOptions.NoPause);
    const problems: string[] = [];
    let valid = 0;
    for (let s = 0; s < COUNT && problems.length < 10; s++) {
      const bytes = all.subarray(s * SLOT, s * SLOT + SLOT);
      const p = ends[s];
      dec.position = s * SLOT;
      dec.ip = BigInt(s * SLOT);
      const ins = dec.decode();
      const features = Array.from(ins.cpuidFeatures());
      const icedValid = ins.code !== 0 && features.every((f) => ALLOWED.has(f));
      const i = ours(bytes, bits === 32);
      const hex = Array.from(bytes.subarray(0, Math.max(ins.length, i?.len ?? 0, p + 1)), (b) => b.toString(16).padStart(2, "0")).join(" ");
      if (!icedValid || !i) {
        if (icedValid !== !!i) problems.push(`${hex}: iced ${icedValid ? mnemonicName(ins.mnemonic) : "invalid"} (features ${features}), ours ${i ? i.name : "invalid"}`);
        ins.free();
        continue;
      }
      valid++;
      const name = ALIAS[`${i.name}/${i.mod === 3 ? "mod3" : "mem"}`] ?? i.name;
      const diff: string[] = [];
      if (ins.length !== i.len) diff.push(`length ${ins.length} vs ${i.len}`);
      if (mnemonicName(ins.mnemonic) !== name) diff.push(`mnemonic ${mnemonicName(ins.mnemonic)} vs ${name}`);
      // iced lists MASKMOVQ/MASKMOVDQU's implicit [EDI] as operand 0; our operands are its 1 and 2.
      const skip = name.startsWith("maskmov") ? 1 : 0;
      for (let k = 0; k < Math.min(2, ins.opCount - skip); k++) {
        const kind = ins.opKind(k + skip);
        const ourKind = k === 0 ? i.dk : i.sk, ourIdx = k === 0 ? i.dr : i.sr;
        if (kind === IcedOp.Register) {
          const r = regNumber(ins.opRegister(k + skip));
          // General registers are state-view indices (insn.ts regIndex): reg * 2 for a dword, reg * 4 for PINSRW's word.
          const ourN = r.cls === "gpr" ? (i.name === "pinsrw" ? ourIdx >> 2 : ourIdx >> 1) : ourIdx;
          if (ourKind !== OpKind.REG || ourN !== r.n) diff.push(`operand ${k}: ${Register[ins.opRegister(k + skip)]} vs kind ${ourKind} index ${ourIdx}`);
        } else if (kind === IcedOp.Memory) {
          if (ourKind !== OpKind.MEM) diff.push(`operand ${k}: memory vs kind ${ourKind}`);
          const base = ins.memoryBase === Register.None ? -1 : regNumber(ins.memoryBase).n;
          const index = ins.memoryIndex === Register.None ? -1 : regNumber(ins.memoryIndex).n;
          const disp = Number(ins.memoryDisplacement & 0xffffffffn) | 0;
          // 16-bit addressing (16-bit code, or 67 in 32-bit code) compares the low 16 bits.
          const ourDisp = i.asz === 4 ? i.disp | 0 : i.disp & 0xffff;
          const icedDisp = i.asz === 4 ? disp : disp & 0xffff;
          if (i.asz === 4 && (base !== i.base || index !== i.index || (index >= 0 && ins.memoryIndexScale !== 1 << i.scale))) {
            diff.push(`memory ${base},${index},${ins.memoryIndexScale} vs ${i.base},${i.index},${1 << i.scale}`);
          }
          if (icedDisp !== ourDisp) diff.push(`displacement ${icedDisp} vs ${ourDisp}`);
        }
      }
      if (ins.opCount >= 3 && ins.opKind(ins.opCount - 1) === IcedOp.Immediate8 && ins.immediate8 !== (i.imm & 0xff)) {
        diff.push(`imm8 ${ins.immediate8} vs ${i.imm & 0xff}`);
      }
      if (ins.opCount === 2 && ins.opKind(1) === IcedOp.Immediate8 && ins.immediate8 !== (i.imm & 0xff)) {
        diff.push(`imm8 ${ins.immediate8} vs ${i.imm & 0xff}`);
      }
      if (diff.length) problems.push(`${hex}: ${mnemonicName(ins.mnemonic)}: ${diff.join("; ")}`);
      ins.free();
    }
    dec.free();
    assertEquals(problems, []);
    if (valid < COUNT / 4) throw new Error(`only ${valid} valid samples`);
  });
}
