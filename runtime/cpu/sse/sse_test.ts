/**
 * MMX and SSE behaviour the host-CPU vectors (tests/sse_oracle) cannot show from user mode: the
 * control-register checks (#UD, #NM), alignment (#GP), unmasked exceptions (#XM or #UD), LDMXCSR's
 * reserved bits, FXSAVE/FXRSTOR's image against the x87 layout, the MMX transition of the x87
 * state, memory forms, masked stores, the reciprocal estimates' error bound, CPUID and the
 * decoder's prefix rules. Expected values come from the SDM's definitions, worked out here.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../../../tests/assert.ts";
import { CpuHarness } from "../../../tests/cpu_harness.ts";

const CODE = 0x1000, DATA = 0x10000, HANDLER = 0x3000, STACK = 0x80000;
const h = new CpuHarness("protected");
const VECTORS = [6, 7, 13, 16, 19];
for (const v of VECTORS) h.setHandler(v, HANDLER + v * 16);
for (const v of VECTORS) h.write(HANDLER + v * 16, [0xbb, v, 0, 0, 0, 0xf4]); // mov ebx, v; hlt

const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
/** ModRM disp32 forms: [disp32] with reg = r. */
const mem = (r: number, addr: number) => [(r << 3) | 5, ...le32(addr)];
const OSFXSR = 1 << 9, OSXMMEXCPT = 1 << 10;

interface Out { ebx: number; eax: number; ecx: number; edx: number; errorCode: number; eip: number }
/**
 * Run `code` (HLT appended) with CR4/CR0 bits set; EBX = 0xFFFFFFFF unless a handler ran (then the
 * vector; the error code and faulting EIP are read from the handler's stack).
 */
function run(code: number[], o: { cr4?: number; cr0?: number; regs?: Record<string, number>; mem?: [number, number[]][] } = {}): Out {
  const s = h.vcpu.getSregs();
  s.cr4 = o.cr4 ?? (OSFXSR | OSXMMEXCPT);
  s.cr0 = (s.cr0 & ~0xe) | (o.cr0 ?? 0);
  h.vcpu.setSregs(s);
  h.write(DATA, new Uint8Array(0x2000));
  for (const [a, b] of o.mem ?? []) h.write(a, b);
  h.write(CODE, [...code, 0xf4]);
  h.vcpu.setRegs({ rax: 0, rbx: 0xffffffff, rcx: 0, rdx: 0, rsi: 0, rdi: 0, rbp: 0, rsp: STACK, rflags: 2, ...o.regs, rip: CODE });
  const r = h.run(10_000);
  assertEquals(r.exit.reason, "hlt");
  const ebx = r.regs.rbx >>> 0;
  const withCode = ebx === 13;
  const sp = r.regs.rsp;
  return {
    ebx, eax: r.regs.rax >>> 0, ecx: r.regs.rcx >>> 0, edx: r.regs.rdx >>> 0,
    errorCode: withCode ? h.read32(sp) : -1, eip: ebx !== 0xffffffff ? h.read32(withCode ? sp + 4 : sp) : -1,
  };
}
const st16 = (off: number) => h.vcpu.cpu.st16[off >> 1];
const st32 = (off: number) => h.vcpu.cpu.st[off >> 2] >>> 0;
const xmmBytes = (x: number) => Array.from(h.vcpu.cpu.st8.subarray(0x500 + 16 * x, 0x510 + 16 * x));
const bytes = (a: number, n: number) => Array.from(h.read(a, n));
const f32 = (...v: number[]) => Array.from(new Uint8Array(new Float32Array(v).buffer));
const f64 = (...v: number[]) => Array.from(new Uint8Array(new Float64Array(v).buffer));

const MOVUPS_X0 = [0x0f, 0x10, ...mem(0, DATA)]; // movups xmm0, [DATA]
const ADDPS = [0x0f, 0x58, 0xc1];

test("SSE needs CR4.OSFXSR (else #UD), CR0.EM clear (else #UD); CR0.TS gives #NM (SDM vol. 3, 13.1)", () => {
  assertEquals(run(ADDPS).ebx, 0xffffffff);
  assertEquals(run(ADDPS, { cr4: 0 }).ebx, 6);
  assertEquals(run(ADDPS, { cr0: 4 }).ebx, 6);
  assertEquals(run(ADDPS, { cr0: 8 }).ebx, 7);
  assertEquals(run(ADDPS, { cr0: 4 | 8 }).ebx, 6); // #UD before #NM
  const ldmxcsr = [0x0f, 0xae, ...mem(2, DATA)];
  assertEquals(run(ldmxcsr, { cr4: 0, mem: [[DATA, le32(0x1f80)]] }).ebx, 6);
});

test("MMX needs no OSFXSR; CR0.EM gives #UD, CR0.TS #NM, a pending x87 exception #MF", () => {
  const paddb = [0x0f, 0xfc, 0xc1];
  assertEquals(run(paddb, { cr4: 0 }).ebx, 0xffffffff);
  assertEquals(run(paddb, { cr0: 4 }).ebx, 6);
  assertEquals(run(paddb, { cr0: 8 }).ebx, 7);
  h.vcpu.cpu.st16[0x402 >> 1] = 0x80; // FSW.ES
  const r = run(paddb);
  h.vcpu.cpu.st16[0x402 >> 1] = 0;
  assertEquals(r.ebx, 16);
});

test("an MMX instruction sets TOP = 0, every tag valid, and bytes 8-9 of the register it writes to all ones", () => {
  h.vcpu.cpu.st16[0x402 >> 1] = 5 << 11; // TOP = 5
  h.vcpu.cpu.st16[0x404 >> 1] = 0xffff; // all empty
  h.vcpu.cpu.st16[(0x420 + 16 * 2 + 8) >> 1] = 0x1234;
  // movq mm2, [DATA]; paddb mm2, mm2
  run([0x0f, 0x6f, ...mem(2, DATA), 0x0f, 0xfc, 0xd2], { mem: [[DATA, [1, 2, 3, 4, 5, 6, 7, 0x80]]] });
  assertEquals((st16(0x402) >> 11) & 7, 0);
  assertEquals(st16(0x404), 0);
  assertEquals(st16(0x420 + 16 * 2 + 8), 0xffff);
  assertEquals(Array.from(h.vcpu.cpu.st8.subarray(0x440, 0x448)), [2, 4, 6, 8, 10, 12, 14, 0]);
});

test("16-byte operands must be aligned except for MOVUPS/MOVDQU/LDDQU; scalar operands need not be (#GP(0))", () => {
  const data: [number, number[]][] = [[DATA, f32(1, 2, 3, 4, 5)]];
  assertEquals(run([0x0f, 0x10, ...mem(0, DATA + 4)], { mem: data }).ebx, 0xffffffff); // movups
  assertEquals(xmmBytes(0), f32(2, 3, 4, 5));
  const movaps = run([0x0f, 0x28, ...mem(0, DATA + 4)], { mem: data });
  assertEquals([movaps.ebx, movaps.errorCode, movaps.eip], [13, 0, CODE]);
  assertEquals(run([0x0f, 0x58, ...mem(0, DATA + 4)], { mem: data }).ebx, 13); // addps
  assertEquals(run([0xf3, 0x0f, 0x58, ...mem(0, DATA + 4)], { mem: data }).ebx, 0xffffffff); // addss
  assertEquals(run([0xf2, 0x0f, 0xf0, ...mem(0, DATA + 4)], { mem: data }).ebx, 0xffffffff); // lddqu
  assertEquals(run([0x66, 0x0f, 0x7f, ...mem(0, DATA + 8)]).ebx, 13); // movdqa store
  assertEquals(run([0x0f, 0x2b, ...mem(0, DATA + 8)]).ebx, 13); // movntps
  assertEquals(run([0x0f, 0x2b, 0xc0]).ebx, 6); // movntps with a register destination: #UD
});

test("an unmasked exception is #XM with CR4.OSXMMEXCPT, else #UD; the destination keeps its value, MXCSR gets the flag", () => {
  const mx = 0x1f80 & ~(1 << 9); // ZM clear
  // ldmxcsr [DATA]; movups xmm0, [DATA+32]; movups xmm1, [DATA+16]; divps xmm0, xmm1
  const code = [0x0f, 0xae, ...mem(2, DATA), 0x0f, 0x10, ...mem(0, DATA + 32), 0x0f, 0x10, ...mem(1, DATA + 16), 0x0f, 0x5e, 0xc1];
  const m = (v: number): [number, number[]][] => [[DATA, le32(v)], [DATA + 16, f32(1, 2, 0, 4)], [DATA + 32, f32(1, 1, 1, 1)]];
  const r = run(code, { mem: m(mx) });
  assertEquals([r.ebx, r.eip], [19, CODE + 21]);
  assertEquals(st32(0x4a0), mx | 4);
  assertEquals(xmmBytes(0), f32(1, 1, 1, 1));
  assertEquals(run(code, { mem: m(mx), cr4: OSFXSR }).ebx, 6);
  // Masked (the reset MXCSR), the same division gives infinity in lane 2 and sets ZE.
  assertEquals(run(code, { mem: m(0x1f80) }).ebx, 0xffffffff);
  assertEquals(st32(0x4a0), 0x1f80 | 4);
  assertEquals(xmmBytes(0), f32(1, 0.5, Infinity, 0.25));
});

test("LDMXCSR with a reserved bit set is #GP(0); STMXCSR stores MXCSR", () => {
  const r = run([0x0f, 0xae, ...mem(2, DATA)], { mem: [[DATA, le32(0x10000 | 0x1f80)]] });
  assertEquals([r.ebx, r.errorCode], [13, 0]);
  run([0x0f, 0xae, ...mem(2, DATA), 0x0f, 0xae, ...mem(3, DATA + 4)], { mem: [[DATA, le32(0xffff)]] });
  assertEquals(h.read32(DATA + 4) >>> 0, 0xffff);
  run([0x0f, 0xae, ...mem(2, DATA)], { mem: [[DATA, le32(0x1f80)]] });
});

test("FXSAVE stores the x87 environment, the abridged tag word, ST(i) in stack order, MXCSR, its mask and XMM0-7 (SDM vol. 1, table 10-2)", () => {
  const c = h.vcpu.cpu;
  c.st16[0x400 >> 1] = 0x037f;
  c.st16[0x402 >> 1] = (6 << 11) | 0x21; // TOP = 6
  c.st16[0x404 >> 1] = 0b11_11_00_01_11_11_10_11; // R0 empty, R1 special, R2/R3 empty, R4 zero, R5 valid, R6/R7 empty
  c.st16[0x406 >> 1] = 0x5d9;
  c.st[0x408 >> 2] = 0x12345678; c.st16[0x40c >> 1] = 0x08; c.st[0x410 >> 2] = 0x9abcdef0; c.st16[0x414 >> 1] = 0x10;
  for (let r = 0; r < 8; r++) for (let k = 0; k < 10; k++) c.st8[0x420 + 16 * r + k] = r * 16 + k;
  for (let b = 0; b < 128; b++) c.st8[0x500 + b] = (b * 7) & 0xff;
  const img = DATA + 0x400;
  assertEquals(run([0x0f, 0xae, ...mem(0, img)]).ebx, 0xffffffff);
  assertEquals(h.read16(img), 0x037f);
  assertEquals(h.read16(img + 2), (6 << 11) | 0x21);
  assertEquals(h.read8(img + 4), 0b0011_0010); // R1, R4, R5 not empty
  assertEquals(h.read16(img + 6), 0x5d9);
  assertEquals([h.read32(img + 8), h.read16(img + 12), h.read32(img + 16) >>> 0, h.read16(img + 20)], [0x12345678, 8, 0x9abcdef0, 0x10]);
  assertEquals([h.read32(img + 24), h.read32(img + 28)], [0x1f80, 0xffff]);
  for (let i = 0; i < 8; i++) {
    const r = (6 + i) & 7;
    assertEquals(bytes(img + 32 + 16 * i, 10), Array.from({ length: 10 }, (_, k) => r * 16 + k), `ST(${i}) is R${r}`);
  }
  assertEquals(bytes(img + 160, 128), Array.from({ length: 128 }, (_, b) => (b * 7) & 0xff));
  assertEquals(run([0x0f, 0xae, ...mem(0, img + 8)]).ebx, 13); // misaligned
  assertEquals(run([0x0f, 0xae, ...mem(0, img)], { cr0: 8 }).ebx, 7);
});

test("FXRSTOR loads the image and rebuilds the full tag word from the abridged one and the registers' contents", () => {
  const img = DATA + 0x400;
  const b = new Uint8Array(512);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, 0x027f, true);
  dv.setUint16(2, 2 << 11, true); // TOP = 2
  b[4] = 0b1110_0100; // R2, R5, R6, R7 in use
  dv.setUint32(24, 0x3f80, true);
  // ST(0) = R2: 1.0 (valid); ST(3) = R5: zero; ST(4) = R6: a denormal (special); ST(5) = R7: unnormal (special)
  const put = (i: number, sig: bigint, se: number) => { dv.setBigUint64(32 + 16 * i, sig, true); dv.setUint16(40 + 16 * i, se, true); };
  put(0, 1n << 63n, 0x3fff);
  put(3, 0n, 0);
  put(4, 5n, 0);
  put(5, 1n << 62n, 0x4000);
  for (let k = 0; k < 128; k++) b[160 + k] = 255 - k;
  const r = run([0x0f, 0xae, ...mem(1, img)], { mem: [[img, Array.from(b)]] });
  assertEquals(r.ebx, 0xffffffff);
  assertEquals([st16(0x400), st16(0x402), st32(0x4a0)], [0x027f, 2 << 11, 0x3f80]);
  // tags: R0 R1 R3 R4 empty (11), R2 valid (00), R5 zero (01), R6 special (10), R7 special (10)
  assertEquals(st16(0x404), 0b10_10_01_11_11_00_11_11);
  assertEquals(xmmBytes(7), Array.from({ length: 16 }, (_, k) => 255 - 112 - k));
  // A reserved MXCSR bit in the image: #GP(0), nothing loaded
  dv.setUint32(24, 0x20000, true);
  assertEquals(run([0x0f, 0xae, ...mem(1, img)], { mem: [[img, Array.from(b)]] }).ebx, 13);
  run([0x0f, 0xae, ...mem(2, DATA)], { mem: [[DATA, le32(0x1f80)]] });
});

test("memory forms: MOVSS/MOVSD loads zero the rest, MOVLPS/MOVHPS move one half, MOVQ stores 8 bytes, CVTSI2SD reads memory", () => {
  const m: [number, number[]][] = [[DATA, f32(1, 2, 3, 4)], [DATA + 16, f32(9, 8, 7, 6)]];
  run([...MOVUPS_X0, 0xf3, 0x0f, 0x10, ...mem(0, DATA + 16)], { mem: m });
  assertEquals(xmmBytes(0), f32(9, 0, 0, 0));
  run([...MOVUPS_X0, 0xf2, 0x0f, 0x10, ...mem(0, DATA + 16)], { mem: m });
  assertEquals(xmmBytes(0), f32(9, 8, 0, 0));
  run([...MOVUPS_X0, 0x0f, 0x12, ...mem(0, DATA + 16)], { mem: m }); // movlps
  assertEquals(xmmBytes(0), f32(9, 8, 3, 4));
  run([...MOVUPS_X0, 0x0f, 0x16, ...mem(0, DATA + 16)], { mem: m }); // movhps
  assertEquals(xmmBytes(0), f32(1, 2, 9, 8));
  run([...MOVUPS_X0, 0x0f, 0x17, ...mem(0, DATA + 32)], { mem: m }); // movhps store
  assertEquals(bytes(DATA + 32, 12), [...f32(3, 4), 0, 0, 0, 0]);
  run([...MOVUPS_X0, 0x66, 0x0f, 0xd6, ...mem(0, DATA + 32)], { mem: m }); // movq store
  assertEquals(bytes(DATA + 32, 12), [...f32(1, 2), 0, 0, 0, 0]);
  run([...MOVUPS_X0, 0xf2, 0x0f, 0x2a, ...mem(0, DATA + 64)], { mem: [...m, [DATA + 64, le32(-5 >>> 0)]] });
  assertEquals(xmmBytes(0), [...f64(-5), ...f32(3, 4)]);
  // movnti [DATA+32], ecx
  run([0x0f, 0xc3, ...mem(1, DATA + 32)], { regs: { rcx: 0xcafef00d } });
  assertEquals(h.read32(DATA + 32) >>> 0, 0xcafef00d);
  assertEquals(run([0x0f, 0xc3, 0xc8]).ebx, 6); // register destination: #UD
  // pinsrw xmm0, [DATA+64], 5; pextrw eax, xmm0, 5
  const r = run([...MOVUPS_X0, 0x66, 0x0f, 0xc4, ...mem(0, DATA + 64), 5, 0x66, 0x0f, 0xc5, 0xc0, 5], { mem: [...m, [DATA + 64, [0x34, 0x12, 0xff, 0xff]]] });
  assertEquals(r.eax, 0x1234);
});

test("MASKMOVDQU and MASKMOVQ store the selected bytes at DS:EDI and nothing else", () => {
  const src = Array.from({ length: 16 }, (_, k) => 0xa0 + k);
  const maskBytes = Array.from({ length: 16 }, (_, k) => (k % 3 === 0 ? 0x80 : 0x7f));
  const m: [number, number[]][] = [[DATA, src], [DATA + 16, maskBytes], [DATA + 0x100, new Array(16).fill(0x55)]];
  // movups xmm0, [DATA]; movups xmm1, [DATA+16]; maskmovdqu xmm0, xmm1
  run([...MOVUPS_X0, 0x0f, 0x10, ...mem(1, DATA + 16), 0x66, 0x0f, 0xf7, 0xc1], { mem: m, regs: { rdi: DATA + 0x100 } });
  assertEquals(bytes(DATA + 0x100, 16), src.map((v, k) => (k % 3 === 0 ? v : 0x55)));
  // movq mm0, [DATA]; movq mm1, [DATA+16]; maskmovq mm0, mm1
  run([0x0f, 0x6f, ...mem(0, DATA), 0x0f, 0x6f, ...mem(1, DATA + 16), 0x0f, 0xf7, 0xc1], { mem: m, regs: { rdi: DATA + 0x100 } });
  assertEquals(bytes(DATA + 0x100, 16), src.map((v, k) => (k < 8 && k % 3 === 0 ? v : 0x55)));
});

test("fences, CLFLUSH, PREFETCH and PAUSE run; CLFLUSH of a register is #UD", () => {
  const code = [0x0f, 0xae, 0xe8, 0x0f, 0xae, 0xf0, 0x0f, 0xae, 0xf8, 0x0f, 0xae, ...mem(7, DATA), 0x0f, 0x18, ...mem(1, DATA), 0xf3, 0x90];
  assertEquals(run(code).ebx, 0xffffffff);
  assertEquals(run([0x0f, 0xae, 0x38 | 0]).ebx, 0xffffffff); // clflush [eax]
  assertEquals(run([0x0f, 0xae, 0xc0]).ebx, 6); // 0F AE /0 with mod 3: #UD
});

test("RCPPS and RSQRTPS stay within the SDM's bound, |error| <= 1.5 * 2^-12 of the exact value", () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let t = 0; t < 50; t++) {
    const v = [0, 1, 2, 3].map(() => Math.fround((0.001 + rnd() * 1000) * (rnd() < 0.5 ? 1 : 1e-20)));
    for (const [opc, f] of [[0x53, (x: number) => 1 / x], [0x52, (x: number) => 1 / Math.sqrt(x)]] as const) {
      run([0x0f, 0x10, ...mem(1, DATA), 0x0f, opc, 0xc1], { mem: [[DATA, f32(...v)]] });
      const got = new Float32Array(new Uint8Array(xmmBytes(0)).buffer);
      for (let k = 0; k < 4; k++) {
        const exact = f(v[k]);
        assert(Math.abs(got[k] - exact) <= 1.5 * 2 ** -12 * Math.abs(exact), `${opc.toString(16)} of ${v[k]}: ${got[k]}`);
      }
    }
  }
});

test("mandatory prefixes: F3 wins over 66, a column without an instruction is #UD, LOCK is #UD", () => {
  // xmm0 = [1, 2, 3, 4], xmm1 = [10, 20, 30, 40]
  const setup = [...MOVUPS_X0, 0x0f, 0x10, ...mem(1, DATA + 16)];
  const m: [number, number[]][] = [[DATA, f32(1, 2, 3, 4)], [DATA + 16, f32(10, 20, 30, 40)]];
  run([...setup, 0x66, 0xf3, 0x0f, 0x58, 0xc1], { mem: m }); // addss (66 ignored)
  assertEquals(xmmBytes(0), f32(11, 2, 3, 4));
  run([...setup, 0x0f, 0x58, 0xc1], { mem: m }); // addps
  assertEquals(xmmBytes(0), f32(11, 22, 33, 44));
  assertEquals(run([0xf3, 0x0f, 0x54, 0xc1]).ebx, 6); // F3 0F 54: no such instruction
  assertEquals(run([0xf0, 0x0f, 0x58, 0xc1]).ebx, 6);
  assertEquals(run([0x0f, 0x01, 0xc8]).ebx, 6); // MONITOR: not reported by CPUID, #UD
});

test("CPUID leaf 1 reports MMX, FXSR, SSE, SSE2, SSE3 and CLFLUSH with a 64-byte line", () => {
  const r = run([0xb8, 1, 0, 0, 0, 0x0f, 0xa2, 0x89, 0xdf]); // mov eax, 1; cpuid; mov edi, ebx
  const edx = r.edx, ecx = r.ecx;
  for (const bit of [19, 23, 24, 25, 26]) assert(edx & (1 << bit), `EDX bit ${bit}`);
  assertEquals(ecx & 1, 1);
  assertEquals(ecx & (1 << 3), 0); // no MONITOR/MWAIT
  assertEquals((h.vcpu.getRegs().rdi >> 8) & 0xff, 8);
});

test("SSE in real mode: 16-bit addressing and a segment base", () => {
  const r = new CpuHarness("real");
  const s = r.vcpu.getSregs();
  s.cr4 = OSFXSR;
  s.ds = { ...s.ds, selector: 0x100, base: 0x1000 };
  r.vcpu.setSregs(s);
  r.write(0x1000 + 0x200, f32(1, 2, 3, 4));
  r.write(0x1000 + 0x210, f32(0.5, 0.25, -3, 8));
  // movups xmm0, [0x200]; addps xmm0, [bx+si] (BX = 0x200, SI = 0x10: 16-byte aligned); movups [0x220], xmm0; hlt
  r.write(0x7000, [0x0f, 0x10, 0x06, 0x00, 0x02, 0x0f, 0x58, 0x00, 0x0f, 0x11, 0x06, 0x20, 0x02, 0xf4]);
  r.vcpu.setRegs({ rax: 0, rbx: 0x200, rcx: 0, rdx: 0, rsi: 0x10, rdi: 0, rbp: 0, rsp: 0x6000, rflags: 2, rip: 0x7000 });
  const out = r.run(100);
  assertEquals(out.exit.reason, "hlt");
  assertEquals(Array.from(r.read(0x1000 + 0x220, 16)), f32(1.5, 2.25, 0, 12));
});

test("MOV CR4 sets OSFXSR and OSXMMEXCPT (bits 9 and 10) and reads them back", () => {
  // mov eax, 0x600; mov cr4, eax; mov ecx, cr4; addps xmm0, xmm1
  const r = run([0xb8, 0x00, 0x06, 0, 0, 0x0f, 0x22, 0xe0, 0x0f, 0x20, 0xe1, 0x0f, 0x58, 0xc1], { cr4: 0 });
  assertEquals([r.ebx, r.ecx & 0x600], [0xffffffff, 0x600]);
});
