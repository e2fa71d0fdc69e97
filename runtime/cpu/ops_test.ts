/**
 * Instruction semantics, one test per family, for the 32-bit forms gcc emits. Each test runs real
 * machine code in flat protected mode (tests/cpu_harness.ts) and checks the result against values
 * worked out from the SDM's definitions: by hand, or by an independent formula in this file
 * (BigInt arithmetic, bit loops), never by calling the processor's own helpers.
 *
 * Flags the SDM leaves undefined are not checked (AF after logic ops, OF after multi-bit shifts,
 * SF/ZF/AF/PF after MUL and IMUL, all arithmetic flags after DIV).
 */
import { test } from "node:test";
import { assert, assertEquals } from "../../tests/assert.ts";
import { CpuHarness, type RunResult } from "../../tests/cpu_harness.ts";
import type { KvmRegs } from "../kvm/vcpu.ts";

const CODE = 0x1000;
const DATA = 0x10000;
const STACK = 0x80000;
const h = new CpuHarness("protected");

/** Run `code` (HLT appended) with the given registers (others zero, EFLAGS 0x2) and memory. */
function run(code: number[], regs: Partial<KvmRegs> = {}, mem: [number, ArrayLike<number>][] = []): RunResult {
  h.write(DATA, new Uint8Array(0x2000));
  for (const [a, b] of mem) h.write(a, b);
  h.write(CODE, [...code, 0xf4]);
  h.vcpu.setRegs({
    rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0, rbp: 0, rsp: STACK, rflags: 0x2, ...regs, rip: CODE,
  });
  const r = h.run(100_000);
  assertEquals(r.exit.reason, "hlt");
  return r;
}

const F = { CF: 0x1, PF: 0x4, AF: 0x10, ZF: 0x40, SF: 0x80, DF: 0x400, OF: 0x800 } as const;
type FlagName = keyof typeof F;
/** The named flags of an EFLAGS value, as 0/1. */
function flags(v: number, names: FlagName[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, v & F[n] ? 1 : 0]));
}
const ARITH: FlagName[] = ["CF", "PF", "AF", "ZF", "SF", "OF"];
const u32 = (v: number) => v >>> 0;
function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}
function imm32(v: number): number[] {
  return le32(v);
}

// ---------------------------------------------------------------------------------------------
// Reference arithmetic (SDM vol. 1, 3.4.3.1: CF carry/borrow out of the MSB, OF signed overflow,
// AF carry/borrow out of bit 3, PF even parity of the low byte, ZF zero, SF the MSB).
// ---------------------------------------------------------------------------------------------
function parityFlag(v: number): number {
  let ones = 0;
  for (let k = 0; k < 8; k++) ones += (v >> k) & 1;
  return ones % 2 === 0 ? 1 : 0;
}
function refAddSub(sub: boolean, a: number, b: number, cin: number): { res: number; f: Record<string, number> } {
  const A = BigInt(u32(a)), B = BigInt(u32(b)), C = BigInt(cin);
  const full = sub ? A - B - C : A + B + C;
  const res = Number(BigInt.asUintN(32, full));
  const sA = BigInt.asIntN(32, A), sB = BigInt.asIntN(32, B);
  const sFull = sub ? sA - sB - C : sA + sB + C;
  const nib = sub ? (a & 0xf) - (b & 0xf) - cin : (a & 0xf) + (b & 0xf) + cin;
  return {
    res,
    f: {
      CF: full < 0n || full > 0xffffffffn ? 1 : 0,
      PF: parityFlag(res & 0xff),
      AF: nib < 0 || nib > 0xf ? 1 : 0,
      ZF: res === 0 ? 1 : 0,
      SF: res >>> 31,
      OF: sFull < -(2n ** 31n) || sFull >= 2n ** 31n ? 1 : 0,
    },
  };
}

const EDGES = [0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff, 0x12345678, 0xdeadbeef];

test("ADD, ADC, SUB, SBB and CMP set CF, OF, AF, PF, ZF, SF by the SDM's definitions on edge operands", () => {
  // op eax, ebx (01 D8, 11 D8, 29 D8, 19 D8, 39 D8) with CF preset to 0 or 1.
  const ops: [string, number, boolean, boolean, boolean][] = [
    // name, opcode, subtract, uses carry in, writes the result
    ["add", 0x01, false, false, true], ["adc", 0x11, false, true, true], ["sub", 0x29, true, false, true],
    ["sbb", 0x19, true, true, true], ["cmp", 0x39, true, false, false],
  ];
  for (const [name, opc, sub, carry, writes] of ops) {
    for (const a of EDGES) {
      for (const b of EDGES) {
        for (const cf of carry ? [0, 1] : [1]) {
          const r = run([opc, 0xd8], { rax: a, rbx: b, rflags: 0x2 | cf });
          const want = refAddSub(sub, a, b, carry ? cf : 0);
          const what = `${name} ${a.toString(16)}, ${b.toString(16)} (CF=${cf})`;
          assertEquals(r.regs.rax, writes ? want.res : a, what);
          assertEquals(flags(r.flags, ARITH), want.f, what);
        }
      }
    }
  }
});

test("INC and DEC keep CF and set OF at the signed boundaries", () => {
  // inc eax (40), dec eax (48)
  for (const cf of [0, 1]) {
    let r = run([0x40], { rax: 0x7fffffff, rflags: 0x2 | cf });
    assertEquals([r.regs.rax, flags(r.flags, ["CF", "OF", "SF", "ZF", "AF"])], [0x80000000, { CF: cf, OF: 1, SF: 1, ZF: 0, AF: 1 }]);
    r = run([0x40], { rax: 0xffffffff, rflags: 0x2 | cf });
    assertEquals([r.regs.rax, flags(r.flags, ["CF", "OF", "ZF", "PF"])], [0, { CF: cf, OF: 0, ZF: 1, PF: 1 }]);
    r = run([0x48], { rax: 0x80000000, rflags: 0x2 | cf });
    assertEquals([r.regs.rax, flags(r.flags, ["CF", "OF", "SF", "AF"])], [0x7fffffff, { CF: cf, OF: 1, SF: 0, AF: 1 }]);
    r = run([0x48], { rax: 0, rflags: 0x2 | cf });
    assertEquals([r.regs.rax, flags(r.flags, ["CF", "OF", "SF", "ZF"])], [0xffffffff, { CF: cf, OF: 0, SF: 1, ZF: 0 }]);
  }
});

test("NEG sets CF unless the operand is 0, and OF for 0x80000000", () => {
  // neg eax (F7 D8): 0 - eax
  for (const a of EDGES) {
    const r = run([0xf7, 0xd8], { rax: a });
    const want = refAddSub(true, 0, a, 0);
    assertEquals([r.regs.rax, flags(r.flags, ARITH)], [want.res, want.f], `neg ${a.toString(16)}`);
    assertEquals(flags(r.flags, ["CF"]).CF, a === 0 ? 0 : 1);
  }
  assertEquals(flags(run([0xf7, 0xd8], { rax: 0x80000000 }).flags, ["OF"]), { OF: 1 });
});

test("AND, OR, XOR and TEST clear CF and OF and set ZF, SF, PF from the result; NOT changes no flag", () => {
  const ops: [number, (a: number, b: number) => number, boolean][] = [
    [0x21, (a, b) => a & b, true], [0x09, (a, b) => a | b, true], [0x31, (a, b) => a ^ b, true], [0x85, (a, b) => a & b, false],
  ];
  for (const [opc, fn, writes] of ops) {
    for (const a of EDGES) {
      for (const b of [0, 0xff, 0x80000000, 0xffffffff, 0x0f0f0f0f]) {
        const r = run([opc, 0xd8], { rax: a, rbx: b, rflags: 0x2 | F.CF | F.OF });
        const res = u32(fn(a, b));
        assertEquals(r.regs.rax, writes ? res : a);
        assertEquals(flags(r.flags, ["CF", "OF", "ZF", "SF", "PF"]), { CF: 0, OF: 0, ZF: res === 0 ? 1 : 0, SF: res >>> 31, PF: parityFlag(res & 0xff) });
      }
    }
  }
  const r = run([0xf7, 0xd0], { rax: 0x0f0f00ff, rflags: 0x2 | F.CF | F.ZF | F.OF }); // not eax
  assertEquals([r.regs.rax, r.flags & 0xfff], [0xf0f0ff00, 0x2 | F.CF | F.ZF | F.OF]);
});

// ---------------------------------------------------------------------------------------------
// Multiply and divide
// ---------------------------------------------------------------------------------------------
const MUL_VALUES = [0, 1, 2, 3, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0x10000, 0xffff, 0x12345678, 0x9abcdef0];

test("MUL EBX gives EDX:EAX = EAX x EBX unsigned, CF = OF = (EDX != 0)", () => {
  for (const a of MUL_VALUES) {
    for (const b of MUL_VALUES) {
      const r = run([0xf7, 0xe3], { rax: a, rbx: b });
      const p = BigInt(a) * BigInt(b);
      const hi = Number(p >> 32n), lo = Number(p & 0xffffffffn);
      assertEquals([r.regs.rax, r.regs.rdx], [lo, hi], `mul ${a.toString(16)} ${b.toString(16)}`);
      assertEquals(flags(r.flags, ["CF", "OF"]), { CF: hi ? 1 : 0, OF: hi ? 1 : 0 });
    }
  }
});

test("IMUL in its one-, two- and three-operand forms: signed product, CF = OF = the result did not fit", () => {
  for (const a of MUL_VALUES) {
    for (const b of MUL_VALUES) {
      const p = BigInt.asIntN(32, BigInt(a)) * BigInt.asIntN(32, BigInt(b));
      const lo = Number(BigInt.asUintN(32, p));
      const fits = p === BigInt.asIntN(32, p) ? 0 : 1;
      const what = `imul ${a.toString(16)} ${b.toString(16)}`;
      // imul ebx (F7 EB): EDX:EAX
      let r = run([0xf7, 0xeb], { rax: a, rbx: b });
      assertEquals([r.regs.rax, r.regs.rdx], [lo, Number(BigInt.asUintN(32, p >> 32n))], what);
      assertEquals(flags(r.flags, ["CF", "OF"]), { CF: fits, OF: fits }, what);
      // imul eax, ebx (0F AF C3)
      r = run([0x0f, 0xaf, 0xc3], { rax: a, rbx: b, rdx: 0x5555 });
      assertEquals([r.regs.rax, r.regs.rdx, flags(r.flags, ["CF", "OF"])], [lo, 0x5555, { CF: fits, OF: fits }], what);
      // imul eax, ebx, imm32 (69 C3 id)
      r = run([0x69, 0xc3, ...imm32(a)], { rbx: b });
      assertEquals([r.regs.rax, flags(r.flags, ["CF", "OF"])], [lo, { CF: fits, OF: fits }], what);
    }
  }
  // imul ecx, ebx, imm8 (6B CB ib): the byte is sign-extended.
  const r = run([0x6b, 0xcb, 0xfd], { rbx: 7 });
  assertEquals([r.regs.rcx, flags(r.flags, ["CF", "OF"])], [u32(-21), { CF: 0, OF: 0 }]);
});

/** Run with a #DE handler (HLT at 0x3000) and report where the fault left things. */
function runDivide(code: number[], regs: Partial<KvmRegs>): { r: RunResult; faulted: boolean; pushedEip: number } {
  h.setHandler(0, 0x3000);
  h.write(0x3000, [0xf4]);
  const r = run(code, regs);
  const faulted = r.regs.rip === 0x3001;
  return { r, faulted, pushedEip: faulted ? h.read32(r.regs.rsp) : -1 };
}

test("DIV EBX divides EDX:EAX unsigned; a zero divisor or a quotient over 32 bits raises #DE at the DIV", () => {
  const cases: [bigint, number][] = [
    [100n, 7], [0xffffffffn, 1], [0x1_0000_0000n, 2], [0xffff_fffe_ffff_ffffn, 0xffffffff], [12345678901234n, 98765],
    [5n, 0], [0x1_0000_0000n, 1], [0xffff_ffff_ffff_ffffn, 0xffffffff],
  ];
  for (const [n, d] of cases) {
    const rdx = Number(n >> 32n), rax = Number(n & 0xffffffffn);
    // nop; div ebx (F7 F3): the fault must push the DIV's address, not the NOP's or the next one's
    const { r, faulted, pushedEip } = runDivide([0x90, 0xf7, 0xf3], { rax, rdx, rbx: d });
    const what = `div ${n.toString(16)} / ${d.toString(16)}`;
    if (d === 0 || n / BigInt(d) > 0xffffffffn) {
      assertEquals([faulted, pushedEip, r.regs.rax, r.regs.rdx], [true, CODE + 1, rax, rdx], what);
    } else {
      assertEquals(faulted, false, what);
      assertEquals([r.regs.rax, r.regs.rdx], [Number(n / BigInt(d)), Number(n % BigInt(d))], what);
    }
  }
});

test("IDIV EBX truncates toward zero, the remainder takes the dividend's sign, and INT_MIN / -1 raises #DE", () => {
  const cases: [bigint, number][] = [
    [7n, 2], [-7n, 2], [7n, -2], [-7n, -2], [-(2n ** 31n), 1], [2n ** 31n - 1n, -1], [-(2n ** 31n), -1],
    [2n ** 31n, 1], [-(2n ** 31n) - 1n, 1], [123456789012n, 1000], [-123456789012n, 1000], [9n, 0],
  ];
  for (const [n, d] of cases) {
    const bits = BigInt.asUintN(64, n);
    const rdx = Number(bits >> 32n), rax = Number(bits & 0xffffffffn);
    const { r, faulted, pushedEip } = runDivide([0x90, 0xf7, 0xfb], { rax, rdx, rbx: u32(d) });
    const what = `idiv ${n} / ${d}`;
    const q = d === 0 ? 0n : n / BigInt(d); // BigInt division truncates toward zero
    if (d === 0 || q > 2n ** 31n - 1n || q < -(2n ** 31n)) {
      assertEquals([faulted, pushedEip, r.regs.rax, r.regs.rdx], [true, CODE + 1, rax, rdx], what);
    } else {
      assertEquals(faulted, false, what);
      assertEquals([r.regs.rax, r.regs.rdx], [Number(BigInt.asUintN(32, q)), Number(BigInt.asUintN(32, n % BigInt(d)))], what);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Shifts and rotates (SDM SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR)
// ---------------------------------------------------------------------------------------------
/** Reference shifts, one bit at a time as the SDM's pseudo-code does. */
function refShift(kind: number, a: number, cf0: number, count: number): { res: number; cf: number } {
  let v = a >>> 0, cf = cf0;
  const n = count & 0x1f;
  for (let k = 0; k < n; k++) {
    const msb = v >>> 31, lsb = v & 1;
    switch (kind) {
      case 0: v = ((v << 1) | msb) >>> 0; cf = msb; break; // ROL
      case 1: v = ((v >>> 1) | (lsb << 31)) >>> 0; cf = lsb; break; // ROR
      case 2: v = ((v << 1) | cf) >>> 0; cf = msb; break; // RCL
      case 3: v = ((v >>> 1) | (cf << 31)) >>> 0; cf = lsb; break; // RCR
      case 4: v = (v << 1) >>> 0; cf = msb; break; // SHL
      case 5: v = v >>> 1; cf = lsb; break; // SHR
      case 7: v = ((v >>> 1) | (msb << 31)) >>> 0; cf = lsb; break; // SAR
    }
  }
  return { res: v, cf };
}
const SHIFT_NAMES = ["rol", "ror", "rcl", "rcr", "shl", "shr", "", "sar"];

test("shifts and rotates by CL: the result and CF per bit-by-bit definition, counts masked to 5 bits", () => {
  const values = [0, 1, 0x80000000, 0x80000001, 0x7fffffff, 0xffffffff, 0x12345678, 0xf0f0f0f0];
  for (const kind of [0, 1, 2, 3, 4, 5, 7]) {
    for (const a of values) {
      for (const count of [1, 2, 7, 8, 16, 31, 32, 33, 63]) {
        for (const cf0 of [0, 1]) {
          // shift eax, cl: D3 /kind
          const r = run([0xd3, 0xc0 | (kind << 3)], { rax: a, rcx: count, rflags: 0x2 | cf0 });
          const want = refShift(kind, a, cf0, count);
          const what = `${SHIFT_NAMES[kind]} ${a.toString(16)}, ${count} (CF=${cf0})`;
          assertEquals(r.regs.rax, want.res, what);
          if ((count & 0x1f) !== 0) assertEquals(flags(r.flags, ["CF"]).CF, want.cf, what);
          if (kind >= 4 && (count & 0x1f) !== 0) {
            const res = want.res;
            assertEquals(flags(r.flags, ["ZF", "SF", "PF"]), { ZF: res === 0 ? 1 : 0, SF: res >>> 31, PF: parityFlag(res & 0xff) }, what);
          }
        }
      }
    }
  }
});

test("a shift by 0 (or 32) changes neither the operand nor any flag, even right after an ADD", () => {
  for (const kind of [0, 1, 2, 3, 4, 5, 7]) {
    for (const count of [0, 32]) {
      // add edx, ebx (01 DA) leaves flags pending; then shift eax, cl
      const r = run([0x01, 0xda, 0xd3, 0xc0 | (kind << 3)], { rax: 0x81234567, rdx: 0xffffffff, rbx: 1, rcx: count });
      const add = refAddSub(false, 0xffffffff, 1, 0);
      assertEquals(r.regs.rax, 0x81234567, SHIFT_NAMES[kind]);
      assertEquals(flags(r.flags, ARITH), add.f, SHIFT_NAMES[kind]);
    }
  }
});

test("shifts and rotates by 1 set OF as the SDM defines for a 1-bit count", () => {
  for (const kind of [0, 1, 2, 3, 4, 5, 7]) {
    for (const a of [0x40000000, 0x80000000, 0xc0000000, 0x00000001, 0x80000001]) {
      for (const cf0 of [0, 1]) {
        // shift eax, 1: D1 /kind
        const r = run([0xd1, 0xc0 | (kind << 3)], { rax: a, rflags: 0x2 | cf0 });
        const want = refShift(kind, a, cf0, 1);
        const msbOut = want.res >>> 31, msb2 = (want.res >>> 30) & 1, msbIn = a >>> 31;
        // ROL, RCL, SHL: OF = MSB(result) XOR CF; ROR, RCR: the two top bits of the result differ;
        // SHR: OF = MSB of the original operand; SAR: OF = 0.
        const of = kind === 0 || kind === 2 || kind === 4 ? msbOut ^ want.cf : kind === 1 || kind === 3 ? msbOut ^ msb2 : kind === 5 ? msbIn : 0;
        const what = `${SHIFT_NAMES[kind]} ${a.toString(16)}, 1 (CF=${cf0})`;
        assertEquals([r.regs.rax, flags(r.flags, ["CF", "OF"])], [want.res, { CF: want.cf, OF: of }], what);
      }
    }
  }
});

test("shifts by an immediate (C1 /r ib) agree with shifts by CL", () => {
  for (const kind of [0, 1, 4, 5, 7]) {
    for (const count of [1, 5, 31, 37]) {
      const a = 0x9abcdef1;
      const r = run([0xc1, 0xc0 | (kind << 3), count], { rax: a });
      const want = refShift(kind, a, 0, count);
      assertEquals([r.regs.rax, flags(r.flags, ["CF"]).CF], [want.res, want.cf], `${SHIFT_NAMES[kind]} ${count}`);
    }
  }
});

test("SHLD and SHRD shift bits of the source in; count 0 changes nothing; CF is the last bit out", () => {
  const dst = 0x12345678, src = 0x9abcdef0;
  for (const count of [0, 1, 4, 16, 31, 32, 36]) {
    const n = count & 31;
    // shld eax, ebx, cl (0F A5 D8); shrd eax, ebx, cl (0F AD D8)
    const both = (BigInt(dst) << 32n) | BigInt(src); // dst:src for SHLD
    const wantL = n === 0 ? dst : Number((both << BigInt(n) >> 32n) & 0xffffffffn);
    const cfL = n === 0 ? -1 : Number((BigInt(dst) >> BigInt(32 - n)) & 1n);
    const pair = (BigInt(src) << 32n) | BigInt(dst); // src:dst for SHRD
    const wantR = n === 0 ? dst : Number((pair >> BigInt(n)) & 0xffffffffn);
    const cfR = n === 0 ? -1 : Number((BigInt(dst) >> BigInt(n - 1)) & 1n);
    for (const [opc, want, cf] of [[0xa5, wantL, cfL], [0xad, wantR, cfR]]) {
      const r = run([0x0f, opc, 0xd8], { rax: dst, rbx: src, rcx: count, rflags: 0x2 | F.CF | F.ZF });
      const what = `${opc === 0xa5 ? "shld" : "shrd"} by ${count}`;
      assertEquals([r.regs.rax, r.regs.rbx], [want, src], what);
      if (cf < 0) assertEquals(r.flags & 0xfff, 0x2 | F.CF | F.ZF, what);
      else assertEquals(flags(r.flags, ["CF", "ZF", "SF"]), { CF: cf, ZF: want === 0 ? 1 : 0, SF: want >>> 31 }, what);
    }
    // The immediate forms: shld eax, ebx, ib (0F A4 D8 ib) and shrd (0F AC D8 ib).
    assertEquals(run([0x0f, 0xa4, 0xd8, count], { rax: dst, rbx: src }).regs.rax, wantL, `shld imm ${count}`);
    assertEquals(run([0x0f, 0xac, 0xd8, count], { rax: dst, rbx: src }).regs.rax, wantR, `shrd imm ${count}`);
  }
  // A 1-bit SHLD sets OF when the sign changes: 0x40000000 << 1 with a zero bit in.
  assertEquals(flags(run([0x0f, 0xa4, 0xd8, 1], { rax: 0x40000000, rbx: 0 }).flags, ["OF"]), { OF: 1 });
});

// ---------------------------------------------------------------------------------------------
// Bit operations
// ---------------------------------------------------------------------------------------------
test("BT, BTS, BTR, BTC on a register: CF is the selected bit (offset mod 32), and the bit is set, cleared, flipped", () => {
  const v = 0x80000005;
  const ops: [number, number, (x: number, m: number) => number][] = [
    [0xa3, 4, (x) => x], [0xab, 5, (x, m) => x | m], [0xb3, 6, (x, m) => x & ~m], [0xbb, 7, (x, m) => x ^ m],
  ];
  for (const [opc, grp, fn] of ops) {
    for (const bit of [0, 1, 2, 31, 32, 33, 63]) {
      const m = 1 << (bit & 31);
      const want = u32(fn(v, m)), cf = (v >>> (bit & 31)) & 1;
      // op eax, ebx (0F xx D8)
      let r = run([0x0f, opc, 0xd8], { rax: v, rbx: bit });
      assertEquals([r.regs.rax, flags(r.flags, ["CF"]).CF], [want, cf], `0F ${opc.toString(16)} bit ${bit}`);
      // op eax, imm8 (0F BA /grp ib)
      r = run([0x0f, 0xba, 0xc0 | (grp << 3), bit], { rax: v });
      assertEquals([r.regs.rax, flags(r.flags, ["CF"]).CF], [want, cf], `0F BA /${grp} bit ${bit}`);
    }
  }
});

test("BTS with a memory operand and a register offset addresses the bit string beyond the dword, negative offsets too", () => {
  // bts [esi], ebx (0F AB 1E) with esi = DATA + 0x100
  const base = DATA + 0x100;
  for (const bit of [0, 31, 32, 100, -1, -33]) {
    const r = run([0x0f, 0xab, 0x1e], { rsi: base, rbx: u32(bit) });
    const byte = base + Math.floor(bit / 8);
    assertEquals([h.read8(byte), flags(r.flags, ["CF"]).CF], [1 << (((bit % 8) + 8) % 8), 0], `bts bit ${bit}`);
  }
  // BT with a set bit reports CF = 1 and writes nothing.
  const r = run([0x0f, 0xa3, 0x1e], { rsi: base, rbx: 45 }, [[base + 5, [0x20]]]);
  assertEquals([flags(r.flags, ["CF"]).CF, h.read8(base + 5)], [1, 0x20]);
});

test("BSF and BSR find the lowest and highest set bit; a zero source sets ZF", () => {
  for (const v of [1, 2, 0x80000000, 0x00f00000, 0x12345678, 0xffffffff]) {
    let lo = 0;
    while (!((v >>> lo) & 1)) lo++;
    let hi = 31;
    while (!((v >>> hi) & 1)) hi--;
    // bsf eax, ebx (0F BC C3); bsr eax, ebx (0F BD C3)
    const f = run([0x0f, 0xbc, 0xc3], { rbx: v, rflags: 0x2 | F.ZF });
    const b = run([0x0f, 0xbd, 0xc3], { rbx: v, rflags: 0x2 | F.ZF });
    assertEquals([f.regs.rax, flags(f.flags, ["ZF"]).ZF, b.regs.rax, flags(b.flags, ["ZF"]).ZF], [lo, 0, hi, 0], v.toString(16));
  }
  assertEquals(flags(run([0x0f, 0xbc, 0xc3], { rbx: 0 }).flags, ["ZF"]).ZF, 1);
  assertEquals(flags(run([0x0f, 0xbd, 0xc3], { rbx: 0 }).flags, ["ZF"]).ZF, 1);
});

test("BSWAP reverses the bytes of a 32-bit register", () => {
  assertEquals(run([0x0f, 0xc8], { rax: 0x12345678 }).regs.rax, 0x78563412); // bswap eax
  assertEquals(run([0x0f, 0xcf], { rdi: 0xff000080 }).regs.rdi, 0x800000ff); // bswap edi
});

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------
/** The condition codes of SDM appendix B, computed from what CMP a, b compares. */
function refCond(cc: number, a: number, b: number): boolean {
  const sa = a | 0, sb = b | 0;
  const diff = u32(a - b);
  const of = refAddSub(true, a, b, 0).f.OF === 1;
  const r = [
    of, u32(a) < u32(b), a === b, u32(a) <= u32(b), diff >>> 31 === 1, parityFlag(diff & 0xff) === 1, sa < sb, sa <= sb,
  ][cc >> 1];
  return cc & 1 ? !r : r;
}

test("SETcc and CMOVcc after CMP follow the 16 conditions (signed, unsigned, sign, parity, overflow)", () => {
  const pairs = [[0, 0], [1, 2], [2, 1], [0x80000000, 1], [1, 0x80000000], [0xffffffff, 0], [0x7fffffff, 0xffffffff], [3, 3], [0x100, 0x1]];
  for (const [a, b] of pairs) {
    for (let cc = 0; cc < 16; cc++) {
      const want = refCond(cc, a, b);
      // cmp eax, ebx (39 D8); setcc cl (0F 9x C1); cmovcc edx, esi (0F 4x D6)
      const r = run([0x39, 0xd8, 0x0f, 0x90 | cc, 0xc1, 0x0f, 0x40 | cc, 0xd6], { rax: a, rbx: b, rcx: 0xaaaaaaaa, rdx: 0x1111, rsi: 0x2222 });
      const what = `cc ${cc} after cmp ${a.toString(16)}, ${b.toString(16)}`;
      assertEquals(r.regs.rcx, (0xaaaaaa00 | (want ? 1 : 0)) >>> 0, what);
      assertEquals(r.regs.rdx, want ? 0x2222 : 0x1111, what);
    }
  }
  // SETcc to memory (0F 94 06: sete [esi]) and CMOVcc from memory (0F 44 06: cmove eax, [esi]).
  const r = run([0x39, 0xdb, 0x0f, 0x94, 0x06, 0x0f, 0x44, 0x46, 0x04], { rsi: DATA }, [[DATA, [0xaa, 0, 0, 0, 0x78, 0x56, 0x34, 0x12]]]);
  assertEquals([h.read8(DATA), r.regs.rax], [1, 0x12345678]);
});

// ---------------------------------------------------------------------------------------------
// String instructions
// ---------------------------------------------------------------------------------------------
test("REP MOVSB and REP MOVSD copy ECX elements forward, and backward with DF=1, leaving ESI/EDI past the end", () => {
  const src = Array.from({ length: 32 }, (_, k) => k + 1);
  // rep movsb (F3 A4)
  let r = run([0xf3, 0xa4], { rsi: DATA, rdi: DATA + 0x100, rcx: 32 }, [[DATA, src]]);
  assertEquals([...h.read(DATA + 0x100, 32)], src);
  assertEquals([r.regs.rcx, r.regs.rsi, r.regs.rdi], [0, DATA + 32, DATA + 0x120]);
  // std; rep movsd (FD F3 A5): from the last dword down
  r = run([0xfd, 0xf3, 0xa5], { rsi: DATA + 28, rdi: DATA + 0x11c, rcx: 8 }, [[DATA, src]]);
  assertEquals([...h.read(DATA + 0x100, 32)], src);
  assertEquals([r.regs.rcx, r.regs.rsi, r.regs.rdi, flags(r.flags, ["DF"]).DF], [0, DATA - 4, DATA + 0xfc, 1]);
  // An overlapping move down in memory with DF=1 (memmove's backward copy): bytes 0..7 to 2..9.
  r = run([0xfd, 0xf3, 0xa4], { rsi: DATA + 7, rdi: DATA + 9, rcx: 8 }, [[DATA, [1, 2, 3, 4, 5, 6, 7, 8]]]);
  assertEquals([...h.read(DATA, 10)], [1, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
  // ECX = 0: nothing moves.
  r = run([0xf3, 0xa4], { rsi: DATA, rdi: DATA + 0x100, rcx: 0 }, [[DATA, [9]]]);
  assertEquals([h.read8(DATA + 0x100), r.regs.rsi, r.regs.rdi], [0, DATA, DATA + 0x100]);
});

test("REP STOSD fills, LODSD loads and advances ESI", () => {
  let r = run([0xf3, 0xab], { rax: 0xdeadbeef, rdi: DATA, rcx: 3 });
  assertEquals([h.read32(DATA), h.read32(DATA + 8), h.read32(DATA + 12), r.regs.rdi, r.regs.rcx], [0xdeadbeef, 0xdeadbeef, 0, DATA + 12, 0]);
  r = run([0xad, 0xad], { rsi: DATA }, [[DATA, [1, 0, 0, 0, 2, 0, 0, 0]]]); // lodsd; lodsd
  assertEquals([r.regs.rax, r.regs.rsi], [2, DATA + 8]);
});

test("REPE CMPSB stops after the first difference and REPNE SCASB after the first match (strlen, memcmp)", () => {
  // repe cmpsb (F3 A6): "abcX" vs "abcY" stops after comparing the 4th byte.
  let r = run([0xf3, 0xa6], { rsi: DATA, rdi: DATA + 0x100, rcx: 10 }, [[DATA, [0x61, 0x62, 0x63, 0x58]], [DATA + 0x100, [0x61, 0x62, 0x63, 0x59]]]);
  assertEquals([r.regs.rcx, r.regs.rsi, r.regs.rdi], [6, DATA + 4, DATA + 0x104]);
  assertEquals(flags(r.flags, ["ZF", "CF"]), { ZF: 0, CF: 1 }); // 0x58 - 0x59 borrows
  // Equal for all ECX bytes: ZF stays 1 and ECX runs out.
  r = run([0xf3, 0xa6], { rsi: DATA, rdi: DATA + 0x100, rcx: 3 }, [[DATA, [1, 2, 3]], [DATA + 0x100, [1, 2, 3]]]);
  assertEquals([r.regs.rcx, flags(r.flags, ["ZF"]).ZF], [0, 1]);
  // strlen: xor eax, eax (31 C0); ecx = -1; repne scasb (F2 AE); not ecx (F7 D1); dec ecx (49)
  r = run([0x31, 0xc0, 0xf2, 0xae, 0xf7, 0xd1, 0x49], { rdi: DATA, rcx: 0xffffffff }, [[DATA, [...new TextEncoder().encode("hello, world"), 0]]]);
  assertEquals([r.regs.rcx, r.regs.rdi], [12, DATA + 13]);
});

// ---------------------------------------------------------------------------------------------
// Stack frames and conversions
// ---------------------------------------------------------------------------------------------
test("ENTER and LEAVE build and drop frames, with nesting levels copying the outer frame pointers", () => {
  // enter 16, 0 (C8 10 00 00): push ebp; ebp = esp; esp -= 16
  let r = run([0xc8, 0x10, 0x00, 0x00], { rbp: 0xabcd });
  assertEquals([r.regs.rbp, r.regs.rsp, h.read32(STACK - 4)], [STACK - 4, STACK - 4 - 16, 0xabcd]);
  // enter 8, 2: push ebp; frame = esp; push [ebp-4]; push frame; esp -= 8 (SDM ENTER, level 2)
  const outer = STACK - 0x40;
  r = run([0xc8, 0x08, 0x00, 0x02], { rbp: outer }, [[outer - 4, le32(0x1111)]]);
  const frame = STACK - 4;
  assertEquals([h.read32(STACK - 4), h.read32(STACK - 8), h.read32(STACK - 12)], [outer, 0x1111, frame]);
  assertEquals([r.regs.rbp, r.regs.rsp], [frame, frame - 8 - 8]);
  // enter 4, 1: push ebp; push frame; esp -= 4
  r = run([0xc8, 0x04, 0x00, 0x01], { rbp: 0x5555 });
  assertEquals([h.read32(STACK - 4), h.read32(STACK - 8), r.regs.rbp, r.regs.rsp], [0x5555, STACK - 4, STACK - 4, STACK - 12]);
  // leave (C9): esp = ebp; pop ebp
  r = run([0xc9], { rbp: STACK - 0x20 }, [[STACK - 0x20, le32(0x7777)]]);
  assertEquals([r.regs.rsp, r.regs.rbp], [STACK - 0x1c, 0x7777]);
  // enter then leave restores ESP and EBP.
  r = run([0xc8, 0x20, 0x00, 0x00, 0xc9], { rbp: 0x4242 });
  assertEquals([r.regs.rsp, r.regs.rbp], [STACK, 0x4242]);
});

test("CBW, CWDE, CWD and CDQ sign-extend AL, AX and EAX", () => {
  assertEquals(run([0x66, 0x98], { rax: 0x12345680 }).regs.rax, 0x1234ff80); // cbw
  assertEquals(run([0x66, 0x98], { rax: 0x1234567f }).regs.rax, 0x1234007f);
  assertEquals(run([0x98], { rax: 0x12348000 }).regs.rax, 0xffff8000); // cwde
  assertEquals(run([0x98], { rax: 0xffff7fff }).regs.rax, 0x00007fff);
  let r = run([0x66, 0x99], { rax: 0x8000, rdx: 0x12345678 }); // cwd
  assertEquals(r.regs.rdx, 0x1234ffff);
  r = run([0x66, 0x99], { rax: 0x7fff, rdx: 0x12345678 });
  assertEquals(r.regs.rdx, 0x12340000);
  assertEquals(run([0x99], { rax: 0x80000000, rdx: 0 }).regs.rdx, 0xffffffff); // cdq
  assertEquals(run([0x99], { rax: 0x7fffffff, rdx: 0xffffffff }).regs.rdx, 0);
});

// ---------------------------------------------------------------------------------------------
// Atomics
// ---------------------------------------------------------------------------------------------
test("XADD exchanges and adds, with ADD's flags, in register and LOCKed memory forms", () => {
  // xadd eax, ebx (0F C1 D8): eax = eax + ebx, ebx = old eax
  let r = run([0x0f, 0xc1, 0xd8], { rax: 0xffffffff, rbx: 2 });
  assertEquals([r.regs.rax, r.regs.rbx, flags(r.flags, ARITH)], [1, 0xffffffff, refAddSub(false, 0xffffffff, 2, 0).f]);
  // lock xadd [esi], ebx (F0 0F C1 1E): the fetch-and-add of atomics
  r = run([0xf0, 0x0f, 0xc1, 0x1e], { rsi: DATA, rbx: 5 }, [[DATA, le32(40)]]);
  assertEquals([h.read32(DATA), r.regs.rbx], [45, 40]);
});

test("CMPXCHG compares with EAX: equal stores the source and sets ZF, unequal loads EAX, flags as CMP", () => {
  // lock cmpxchg [esi], ebx (F0 0F B1 1E)
  let r = run([0xf0, 0x0f, 0xb1, 0x1e], { rax: 7, rbx: 99, rsi: DATA }, [[DATA, le32(7)]]);
  assertEquals([h.read32(DATA), r.regs.rax, flags(r.flags, ARITH)], [99, 7, refAddSub(true, 7, 7, 0).f]);
  r = run([0xf0, 0x0f, 0xb1, 0x1e], { rax: 7, rbx: 99, rsi: DATA }, [[DATA, le32(0x80000000)]]);
  assertEquals([h.read32(DATA), r.regs.rax, flags(r.flags, ARITH)], [0x80000000, 0x80000000, refAddSub(true, 7, 0x80000000, 0).f]);
  // Register form: cmpxchg ecx, ebx (0F B1 D9)
  r = run([0x0f, 0xb1, 0xd9], { rax: 3, rcx: 3, rbx: 4 });
  assertEquals([r.regs.rcx, flags(r.flags, ["ZF"]).ZF], [4, 1]);
  // Byte form: cmpxchg [esi], bl (0F B0 1E)
  r = run([0x0f, 0xb0, 0x1e], { rax: 0x1234, rbx: 0x56, rsi: DATA }, [[DATA, [0x34]]]);
  assertEquals([h.read8(DATA), r.regs.rax], [0x56, 0x1234]);
});

test("CMPXCHG8B compares EDX:EAX with the qword: equal stores ECX:EBX, unequal loads EDX:EAX; only ZF changes", () => {
  const q = [...le32(0x11111111), ...le32(0x22222222)];
  // lock cmpxchg8b [esi] (F0 0F C7 0E)
  let r = run([0xf0, 0x0f, 0xc7, 0x0e], { rax: 0x11111111, rdx: 0x22222222, rbx: 0xaaaaaaaa, rcx: 0xbbbbbbbb, rsi: DATA, rflags: 0x2 | F.CF }, [[DATA, q]]);
  assertEquals([h.read32(DATA), h.read32(DATA + 4), r.flags & 0xfff], [0xaaaaaaaa, 0xbbbbbbbb, 0x2 | F.CF | F.ZF]);
  r = run([0xf0, 0x0f, 0xc7, 0x0e], { rax: 0x11111111, rdx: 0, rbx: 0xaaaaaaaa, rcx: 0xbbbbbbbb, rsi: DATA, rflags: 0x2 | F.ZF }, [[DATA, q]]);
  assertEquals([h.read32(DATA), h.read32(DATA + 4), r.regs.rax, r.regs.rdx, flags(r.flags, ["ZF"]).ZF], [0x11111111, 0x22222222, 0x11111111, 0x22222222, 0]);
});

test("LOCK on an instruction that cannot take it raises #UD at the LOCK prefix", () => {
  h.setHandler(6, 0x3000);
  h.write(0x3000, [0xf4]);
  // nop; lock add eax, ebx (F0 01 D8): a register destination
  const r = run([0x90, 0xf0, 0x01, 0xd8], { rax: 1, rbx: 2 });
  assertEquals([r.regs.rip, h.read32(r.regs.rsp), r.regs.rax], [0x3001, CODE + 1, 1]);
});

// ---------------------------------------------------------------------------------------------
// Rv/Mw forms (decoder fix: these wrote the wrong register with a 32-bit operand size)
// ---------------------------------------------------------------------------------------------
test("SMSW, SLDT, STR and MOV r32, Sreg write the whole ModRM.rm register and no other", () => {
  const regs = { rax: 0x11111111, rbx: 0x22222222, rcx: 0x33333333, rdx: 0x44444444, rsi: 0x55555555, rdi: 0x66666666, rbp: 0x77777777 };
  // smsw edi (0F 01 E7), mov esi, ds (8C DE), sldt ecx (0F 00 C1), str edx (0F 00 CA); after reset
  // LDTR and TR hold selector 0, so ECX and EDX become 0 whole.
  const r = run([0x0f, 0x01, 0xe7, 0x8c, 0xde, 0x0f, 0x00, 0xc1, 0x0f, 0x00, 0xca], regs);
  const cr0 = h.vcpu.getSregs().cr0;
  assertEquals([r.regs.rdi, r.regs.rsi, r.regs.rcx, r.regs.rdx], [cr0, 0x10, 0, 0]);
  assertEquals([r.regs.rax, r.regs.rbx, r.regs.rbp, r.regs.rsp], [0x11111111, 0x22222222, 0x77777777, STACK]);
  // The same with a 16-bit operand size writes only the low word: smsw di (66 0F 01 E7).
  assert((cr0 & 0xffff) !== 0);
  assertEquals(run([0x66, 0x0f, 0x01, 0xe7], regs).regs.rdi, (0x66660000 | (cr0 & 0xffff)) >>> 0);
});
