/**
 * The x87's system behaviour, checked against the SDM: CR0.EM/MP/TS and #NM, #MF with CR0.NE=1,
 * FERR# to IRQ13 through the in-kernel 8259 pair with NE=0, the FSAVE/FSTENV layouts, FISTTP
 * behind the SSE3 flag, the undefined encodings (against iced-x86), the state after RESET and the
 * MMX register rules. The arithmetic is checked against the host CPU in tests/x87/.
 */
import { test } from "node:test";
import { Code, Decoder, DecoderOptions } from "iced-x86";
import { assert, assertEquals } from "../../../tests/assert.ts";
import { CpuHarness, type RunResult } from "../../../tests/cpu_harness.ts";
import { realModeGuest } from "../../kvm/_testing.ts";
import { KvmExit } from "../../kvm/kvm_run.ts";
import { Fpu, Fsw, Tag } from "../fpu_state.ts";
import { emms, fpuAbridgedTags, fpuSetAbridgedTags, fpuStack, fpuTagWord } from "./x87.ts";
import { getMm, mmxCommit, setMm } from "../sse/common.ts";

const CODE = 0x1000, HANDLER = 0x5000, DATA = 0x6000;
const CR0 = { PE: 1, MP: 2, EM: 4, TS: 8, ET: 16, NE: 32 };

/**
 * Protected mode, a handler for #UD, #NM and #MF that stores the vector in ESI and the faulting
 * EIP in EDI (`mov esi, vector; mov edi, [esp]; hlt`), CR0 as given (set by the code itself).
 */
function faultHarness(): CpuHarness {
  const h = new CpuHarness("protected");
  for (const v of [6, 7, 16]) {
    const at = HANDLER + v * 16;
    h.write(at, [0xbe, v, 0, 0, 0, 0x8b, 0x3c, 0x24, 0xf4]);
    h.setHandler(v, at);
  }
  return h;
}
function run(cr0: number, code: number[], setup?: (h: CpuHarness) => void, reuse?: CpuHarness): RunResult {
  const h = reuse ?? faultHarness();
  setup?.(h);
  // mov eax, cr0value; mov cr0, eax; then the code
  const pre = [0xb8, cr0 & 0xff, (cr0 >> 8) & 0xff, 0, 0, 0x0f, 0x22, 0xc0];
  h.write(CODE, [...pre, ...code]);
  h.vcpu.setRegs({ rax: 0, rsi: 0, rdi: 0, rsp: 0x80000, rflags: 2, rip: CODE });
  return h.run(10_000);
}
const at = (k: number) => CODE + 8 + k; // address of the code byte k

test("CR0.EM=1 makes every x87 escape #NM (even FNINIT) but not WAIT; TS=1 makes them #NM, and WAIT too only with MP=1", () => {
  let r = run(CR0.PE | CR0.ET | CR0.EM, [0xdb, 0xe3, 0xf4]); // fninit
  assertEquals([r.regs.rsi, r.regs.rdi], [7, at(0)]);
  r = run(CR0.PE | CR0.ET | CR0.EM, [0x9b, 0xf4]); // wait: EM does not apply (SDM vol. 3, table 2-2)
  assertEquals([r.exit.reason, r.regs.rsi], ["hlt", 0]);
  r = run(CR0.PE | CR0.ET | CR0.TS, [0xd9, 0xe8, 0xf4]); // fld1
  assertEquals([r.regs.rsi, r.regs.rdi], [7, at(0)]);
  r = run(CR0.PE | CR0.ET | CR0.TS, [0x9b, 0xf4]); // wait with MP=0: no #NM
  assertEquals(r.regs.rsi, 0);
  r = run(CR0.PE | CR0.ET | CR0.TS | CR0.MP, [0x90, 0x9b, 0xf4]); // nop; wait with MP=1, TS=1
  assertEquals([r.regs.rsi, r.regs.rdi], [7, at(1)]);
  // CLTS clears TS, after which the FPU runs: fld1; fstp dword [DATA]
  r = run(CR0.PE | CR0.ET | CR0.TS | CR0.MP, [0x0f, 0x06, 0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0x1d, 0, 0x60, 0, 0, 0xf4]);
  assertEquals([r.regs.rsi, r.h.read32(DATA)], [0, 0x3f800000]);
});

test("an unmasked exception is #MF at the next waiting instruction with CR0.NE=1, not at FNSTSW", () => {
  // fninit; fldcw [DATA] (0x037B: ZE unmasked); fld1; fldz; fdivp; fnstsw ax; fwait
  const r = run(CR0.PE | CR0.ET | CR0.NE, [
    0xdb, 0xe3, 0xd9, 0x2d, 0, 0x60, 0, 0, 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0xdf, 0xe0, 0x9b, 0xf4,
  ], (h) => h.write(DATA, [0x7b, 0x03]));
  assertEquals([r.regs.rsi, r.regs.rdi], [16, at(16)]);
  // FNSTSW AX ran (non-waiting) and saw ZE, ES and B; TOP = 6: an unmasked ZE leaves both operands
  // and does not pop (SDM vol. 1, 8.5.3).
  assertEquals(r.regs.rax & 0xffff, Fsw.B | (6 << 11) | Fsw.ES | Fsw.ZE);
  const st = fpuStack(r.h.vcpu.cpu);
  assertEquals([st[0].empty, st[0].value.exp, st[1].value.exp], [false, 0, 0x3fff]);
});

/*
 * Real mode, CR0.NE=0 (the reset value): the 8259 pair programmed as a PC BIOS does (master vectors
 * 8–15, slave 0x70–0x77), only IRQ13 (slave IR5) unmasked, its handler at vector 0x75.
 *     xor ax,ax / mov ds,ax / mov word [0x75*4],irq13 / mov word [0x75*4+2],0
 *     mov al,0x11 / out 0x20,al / out 0xa0,al / mov al,0x08 / out 0x21,al / mov al,0x70 / out 0xa1,al
 *     mov al,0x04 / out 0x21,al / mov al,0x02 / out 0xa1,al / mov al,0x01 / out 0x21,al / out 0xa1,al
 *     mov al,0xfb / out 0x21,al / mov al,0xdf / out 0xa1,al / sti
 *     fninit / fldcw [cw] / fld1 / fldz / fdivp st1,st0      ; 1/0 with ZE unmasked: ES set
 *     fld1                                                    ; waiting: FERR# -> IRQ13 first
 *     fstp dword [0x600] / fnstsw [0x604] / cli / hlt
 * irq13: inc word [0x500] / fnstsw [0x502] / fnclex / push ax / mov al,0x20 / out 0xa0,al
 *        out 0x20,al / pop ax / iret
 * cw: dw 0x037b
 */
const FERR_GUEST = [
  0x31, 0xc0, 0x8e, 0xd8, 0xc7, 0x06, 0xd4, 0x01, 0x4d, 0x10, 0xc7, 0x06, 0xd6, 0x01, 0x00, 0x00, 0xb0, 0x11, 0xe6,
  0x20, 0xe6, 0xa0, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x70, 0xe6, 0xa1, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x02, 0xe6, 0xa1,
  0xb0, 0x01, 0xe6, 0x21, 0xe6, 0xa1, 0xb0, 0xfb, 0xe6, 0x21, 0xb0, 0xdf, 0xe6, 0xa1, 0xfb, 0xdb, 0xe3, 0xd9, 0x2e,
  0x60, 0x10, 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0xd9, 0xe8, 0xd9, 0x1e, 0x00, 0x06, 0xdd, 0x3e, 0x04, 0x06, 0xfa,
  0xf4, 0xff, 0x06, 0x00, 0x05, 0xdd, 0x3e, 0x02, 0x05, 0xdb, 0xe2, 0x50, 0xb0, 0x20, 0xe6, 0xa0, 0xe6, 0x20, 0x58,
  0xcf, 0x7b, 0x03,
];
const word = (b: Uint8Array, k: number) => b[k] | (b[k + 1] << 8);

test("with CR0.NE=0 the pending error asserts FERR#, IRQ13 of the in-kernel 8259 runs before the waiting instruction, which then runs", () => {
  const { vm, vcpu } = realModeGuest(FERR_GUEST, { irqchip: true });
  const r = vcpu.run();
  assertEquals(r.exitReason, KvmExit.HLT);
  const m = vm.readGuest(0x500, 0x108);
  assertEquals(word(m, 0), 1, "IRQ13 taken once");
  assertEquals(word(m, 2) & (Fsw.ES | Fsw.ZE), Fsw.ES | Fsw.ZE, "the handler saw the error");
  assertEquals(vm.readGuest(0x600, 4), new Uint8Array([0, 0, 0x80, 0x3f]), "the FLD1 ran after the handler");
  assertEquals(word(m, 0x104), 6 << 11, "FNCLEX cleared the flags; the unmasked FDIVP popped nothing (TOP 6)");
});

test("with CR0.NE=0 and no interrupt delivered, the waiting instruction runs as if IGNNE# were asserted; FNCLEX deasserts FERR#", () => {
  const calls: boolean[] = [];
  // fninit; fldcw [DATA]; fld1; fldz; fdivp; fld1; fnclex; hlt
  const r = run(CR0.PE | CR0.ET, [0xdb, 0xe3, 0xd9, 0x2d, 0, 0x60, 0, 0, 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0xd9, 0xe8, 0xdb, 0xe2, 0xf4], (h) => {
    h.write(DATA, [0x7b, 0x03]);
    h.vcpu.cpu.ferr = (a) => calls.push(a);
  });
  assertEquals([r.exit.reason, r.regs.rsi], ["hlt", 0]);
  assertEquals(calls, [true, false]);
  assertEquals(r.insns, 2 + 8, "each instruction retired once (the FERR# exit retires nothing)");
  const st = fpuStack(r.h.vcpu.cpu);
  assertEquals([st[0].value.exp, st[0].value.sig, st[1].value.exp, st[2].value.exp], [0x3fff, 1n << 63n, 0, 0x3fff]);
});

/** FNSAVE/FSTENV images: run `code` after a known FPU state and return `n` bytes at DATA. */
function image(mode: "real" | "protected", code: number[], n: number) {
  const h = new CpuHarness(mode);
  // fninit; fld1 (FIP = its address); fldz; fdiv dword [0x6100] (FDP = 0x6100); then the store at DATA
  const pre = mode === "real"
    ? [0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xee, 0xd8, 0x36, 0x00, 0x61]
    : [0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xee, 0xd8, 0x35, 0x00, 0x61, 0, 0];
  h.write(0x6100, [0, 0, 0x80, 0x3f]);
  h.write(CODE, [...pre, ...code, 0xf4]);
  h.vcpu.setRegs({ rsp: mode === "real" ? 0x8000 : 0x80000, rflags: 2, rip: CODE });
  const r = h.run(100);
  assertEquals(r.exit.reason, "hlt");
  return { b: h.read(DATA, n), h, fdivAt: CODE + 6 };
}

test("FNSTENV and FNSAVE store the SDM's 32-bit and 16-bit protected-mode layouts (vol. 1, figures 8-9 and 8-10)", () => {
  // fnstenv [DATA]  (D9 /6)
  let { b } = image("protected", [0xd9, 0x35, 0x00, 0x60, 0, 0], 28);
  const dv = new DataView(b.buffer, b.byteOffset);
  assertEquals(dv.getUint16(0, true), 0x037f);
  assertEquals(dv.getUint16(4, true), 6 << 11, "TOP = 6, no flags");
  assertEquals(dv.getUint16(8, true), 0x0fff | (Tag.ZERO << 12) | (Tag.VALID << 14), "R6 zero (fldz... divided: 0/1 = 0), R7 valid");
  assertEquals(dv.getUint32(12, true), CODE + 6, "FIP: the FDIV");
  assertEquals(dv.getUint16(16, true), 0x08, "FCS");
  assertEquals(dv.getUint16(18, true), 0x035, "FOP: (D8 & 7) << 8 | ModRM 0x35");
  assertEquals(dv.getUint32(20, true), 0x6100, "FDP");
  assertEquals(dv.getUint16(24, true), 0x10, "FDS");
  // o16 fnsave [DATA] (66 DD /6): 14-byte environment, then ST(0)..ST(7)
  ({ b } = image("protected", [0x66, 0xdd, 0x35, 0x00, 0x60, 0, 0], 94));
  const d16 = new DataView(b.buffer, b.byteOffset);
  assertEquals([d16.getUint16(0, true), d16.getUint16(2, true)], [0x037f, 6 << 11]);
  assertEquals([d16.getUint16(6, true), d16.getUint16(8, true), d16.getUint16(10, true), d16.getUint16(12, true)], [CODE + 6, 0x08, 0x6100, 0x10]);
  assertEquals([...b.subarray(14, 24)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "ST(0) = +0");
  assertEquals([...b.subarray(24, 34)], [0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f], "ST(1) = 1.0");
});

test("FNSAVE in real mode stores the real-mode layouts with the linear instruction and data pointers, and reinitialises", () => {
  // fnsave [DATA] (DD /6, 32-bit operand size with 66)
  const { b, h } = image("real", [0x66, 0xdd, 0x36, 0x00, 0x60], 108);
  const dv = new DataView(b.buffer, b.byteOffset);
  assertEquals(dv.getUint16(12, true), CODE + 6, "FIP[15:0]");
  assertEquals(dv.getUint32(16, true), 0x036, "FOP (D8 36: the 16-bit ModRM), FIP[31:16] = 0");
  assertEquals(dv.getUint16(20, true), 0x6100, "FDP[15:0]");
  assertEquals([...b.subarray(38, 48)], [0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f], "ST(1) = 1.0");
  const c = h.vcpu.cpu;
  assertEquals([c.st16[Fpu.FCW >> 1], c.st16[Fpu.FSW >> 1], c.st16[Fpu.FTW >> 1]], [0x037f, 0, 0xffff], "FNINIT after the save");
  // 16-bit real-mode layout: FIP[19:16] << 12 | FOP in the fifth word
  const r16 = image("real", [0xdd, 0x36, 0x00, 0x60], 14).b;
  assertEquals([r16[6] | (r16[7] << 8), r16[8] | (r16[9] << 8), r16[10] | (r16[11] << 8)], [CODE + 6, 0x036, 0x6100]);
});

test("FRSTOR loads what FNSAVE stored: registers, tags recomputed from them, status and control words", () => {
  // fnsave [DATA]; frstor [DATA]; fnsave [DATA+0x100]
  const { h } = image("protected", [0xdd, 0x35, 0x00, 0x60, 0, 0, 0xdd, 0x25, 0x00, 0x60, 0, 0, 0xdd, 0x35, 0x00, 0x61, 0, 0], 0);
  const a = h.read(DATA, 108), b = h.read(DATA + 0x100, 108);
  assertEquals([...b.subarray(0, 12)], [...a.subarray(0, 12)]);
  assertEquals([...b.subarray(28)], [...a.subarray(28)]);
});

test("FISTTP (an SSE3 instruction) runs on this processor, which reports SSE3; without SSE3 it is #UD", () => {
  const code = [0xdb, 0xe3, 0xd9, 0xe8, 0xdb, 0x0d, 0x00, 0x60, 0, 0, 0xf4]; // fninit; fld1; fisttp dword [DATA]
  let r = run(CR0.PE | CR0.ET, code, (h) => { h.vcpu.cpu.sse3 = false; });
  assertEquals([r.regs.rsi, r.regs.rdi], [6, at(4)]);
  r = run(CR0.PE | CR0.ET, code);
  assertEquals([r.regs.rsi, r.h.read32(DATA)], [0, 1]);
});

test("the x87 register forms and memory forms that are #UD are exactly the ones iced-x86 calls invalid", () => {
  const bad: string[] = [];
  // One VM for all 576 probes (a fresh 16 MiB VM each is slow under Bun); each probe starts with FNINIT.
  const h = faultHarness();
  h.vcpu.cpu.sse3 = true;
  const probe = (bytes: number[]) => {
    const d = new Decoder(32, new Uint8Array([...bytes, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90]), DecoderOptions.None);
    const icedInvalid = d.decode().code === Code.INVALID;
    // fninit; then the instruction on an FPU with two values (so nothing else faults), then hlt
    const r = run(CR0.PE | CR0.ET, [0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xe8, ...bytes, 0xf4], undefined, h);
    const ours = r.regs.rsi === 6;
    if (ours !== icedInvalid) bad.push(`${bytes.map((x) => x.toString(16)).join(" ")}: iced ${icedInvalid ? "invalid" : "valid"}`);
  };
  for (let e = 0xd8; e <= 0xdf; e++) {
    for (let m = 0xc0; m <= 0xff; m++) probe([e, m]);
    for (let r = 0; r < 8; r++) probe([e, (r << 3) | 5, 0x00, 0x60, 0, 0]); // [disp32]
  }
  assertEquals(bad, []);
});

test("after RESET the FPU has FCW 0040H, FSW 0, all tags zero (SDM vol. 3, table 9-1); FNINIT empties the stack", () => {
  const h = new CpuHarness("protected");
  const c = h.vcpu.cpu;
  assertEquals([c.st16[Fpu.FCW >> 1], c.st16[Fpu.FSW >> 1], c.st16[Fpu.FTW >> 1]], [0x0040, 0, 0x5555]);
  // Without FNINIT, FLD1 pushes onto a non-empty register: a stack overflow (IE, SF, C1), unmasked.
  h.write(CODE, [0xd9, 0xe8, 0xdf, 0xe0, 0xdb, 0xe3, 0xd9, 0xe8, 0xf4]); // fld1; fnstsw ax; fninit; fld1
  h.vcpu.setRegs({ rsp: 0x80000, rflags: 2, rip: CODE });
  const r = h.run(100);
  assertEquals(r.regs.rax & 0xffff, Fsw.B | Fsw.ES | Fsw.C1 | Fsw.SF | Fsw.IE);
  assertEquals(c.st16[Fpu.FSW >> 1], 7 << 11);
});

test("MMX registers alias the significands: a write sets the exponent word to FFFFH, TOP to 0 and all tags valid; EMMS empties them", () => {
  const h = new CpuHarness("protected");
  const c = h.vcpu.cpu;
  c.st16[Fpu.FSW >> 1] = 5 << 11;
  c.st16[Fpu.FTW >> 1] = 0xffff;
  // An MMX instruction's write (the SIMD unit's helpers): the register, then TOP and the tags.
  setMm(c, 3, 0x11223344, 0x55667788 | 0);
  mmxCommit(c);
  const mm = new Int32Array(2);
  getMm(c, 3, mm);
  assertEquals([...mm], [0x11223344, 0x55667788]);
  assertEquals(c.st16[(Fpu.REGS + 16 * 3 + 8) >> 1], 0xffff);
  assertEquals([(c.st16[Fpu.FSW >> 1] >> 11) & 7, c.st16[Fpu.FTW >> 1]], [0, 0]);
  const st = fpuStack(c);
  assertEquals([st[3].value.sig, st[3].value.exp, st[3].value.sign], [0x5566778811223344n, 0x7fff, 1]);
  emms(c);
  assertEquals(c.st16[Fpu.FTW >> 1], 0xffff);
  assert(fpuStack(c).every((s) => s.empty));
});

test("FXSAVE's abridged tags and back: non-empty registers get the tag their contents give", () => {
  const h = new CpuHarness("protected");
  // fninit; fld1; fldz: R7 = 1.0 (valid), R6 = +0 (zero)
  h.write(CODE, [0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xee, 0xf4]);
  h.vcpu.setRegs({ rsp: 0x80000, rflags: 2, rip: CODE });
  h.run(100);
  const c = h.vcpu.cpu;
  assertEquals(fpuAbridgedTags(c), 0xc0);
  assertEquals(fpuTagWord(c), 0x0fff | (Tag.ZERO << 12) | (Tag.VALID << 14));
  fpuSetAbridgedTags(c, 0xc1); // R0 holds +0 from RESET: tagged zero
  assertEquals(c.st16[Fpu.FTW >> 1], 0x0ffd | (Tag.ZERO << 12) | (Tag.VALID << 14) | Tag.ZERO);
});
