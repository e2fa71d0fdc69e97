/**
 * Self-modifying code under the JIT: a loop that rewrites an immediate inside its own block, code
 * written by a store into a block that runs later, and code replaced from userspace between runs.
 */
import { test } from "node:test";
import { assertEquals } from "../tests/assert.ts";
import { firstDifference, runGuest } from "../tests/jit_diff.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { useEngine } from "../runtime/vmm/tiering.ts";

const LOAD = 0x100000;

// 100000: mov ecx, 5
//         xor eax, eax
// 100007: l: inc byte [10000f]   ; the imm8 of the ADD below, in the same block
// 10000d: add eax, 1             ; 83 C0 <imm8 at 10000f>
// 100010: dec ecx
//         jnz l
//         hlt
const selfPatch = new Uint8Array([
  0xb9, 0x05, 0x00, 0x00, 0x00, // mov ecx, 5
  0x31, 0xc0, // xor eax, eax
  0xfe, 0x05, 0x0f, 0x00, 0x10, 0x00, // inc byte [0x10000f]
  0x83, 0xc0, 0x01, // add eax, 1
  0x49, // dec ecx
  0x75, 0xf4, // jnz -12 (to 0x100007)
  0xf4, // hlt
]);

test("a loop that rewrites an immediate in its own block sees every new value under jit", async () => {
  const g = { mode: "protected" as const, image: selfPatch, load: LOAD, regs: { rip: LOAD, rsp: 0x200000 } };
  const a = await runGuest(g, "interp");
  const b = await runGuest(g, "jit");
  // add eax, 2 + 3 + 4 + 5 + 6 (the INC runs before each ADD)
  assertEquals(a.sum.regs.rax, 20);
  assertEquals(firstDifference(a.sum, b.sum), null);
  assertEquals(b.jit!.stats.invalidated > 0, true);
});

// A store writes `mov eax, 0x1234` over a NOP sled that runs afterwards (another block on the same page).
const writeAhead = new Uint8Array([
  0xc7, 0x05, 0x40, 0x00, 0x10, 0x00, 0xb8, 0x34, 0x12, 0x00, // mov dword [0x100040], 0x001234b8
  0xc6, 0x05, 0x44, 0x00, 0x10, 0x00, 0x00, // mov byte [0x100044], 0
  0xeb, 0x2d, // jmp 0x100040
  ...new Array(0x40 - 0x13).fill(0x90),
  0x90, 0x90, 0x90, 0x90, 0x90, 0xf4, // 100040: nops, then hlt at 100045
]);

test("code written by a store before it first runs executes the new bytes under jit", async () => {
  const g = { mode: "protected" as const, image: writeAhead, load: LOAD, regs: { rip: LOAD, rsp: 0x200000 } };
  const a = await runGuest(g, "interp");
  const b = await runGuest(g, "jit");
  assertEquals(a.sum.regs.rax, 0x1234);
  assertEquals(firstDifference(a.sum, b.sum), null);
});

test("code replaced from userspace between runs is recompiled", async () => {
  const m = new Machine({ mode: "protected" });
  // mov eax, 7; hlt
  m.load(new Uint8Array([0xb8, 0x07, 0, 0, 0, 0xf4]), { format: "raw", loadAddr: LOAD });
  const jit = (await useEngine(m, "jit"))!;
  m.run({ budget: 100 });
  assertEquals(m.vcpu.getRegs().rax, 7);
  m.vm.writeGuest(LOAD + 1, new Uint8Array([0x09]));
  m.vcpu.setRegs({ rip: LOAD });
  m.run({ budget: 100 });
  assertEquals(m.vcpu.getRegs().rax, 9);
  assertEquals(jit.stats.regions >= 2, true);
});

// ADC and SBB read the carry and write memory: when the write bails (here: a byte on the page
// holding the code), the interpreter runs the instruction again and must see the carry as it was
// before, not the one the translated ADC had already put in the flag record. (Found by the whole
// 80286 corpus under the JIT: `adc [cs:bx-80h],dh` wrote 0x1a where silicon writes 0x19.)
// 100000: mov al, 0x10
//         add al, 0x20          ; CF = 0
//         adc byte [100020], 0x20 ; 0xF0 + 0x20 + CF: 0x10, carry out
//         sbb byte [100021], 0x01 ; 0x05 - 0x01 - CF(1): 0x03
//         hlt
// 100020: db 0xF0, 0x05
const carryIntoCodePage = new Uint8Array([
  0xb0, 0x10, // mov al, 0x10
  0x04, 0x20, // add al, 0x20
  0x80, 0x15, 0x20, 0x00, 0x10, 0x00, 0x20, // adc byte [0x100020], 0x20
  0x80, 0x1d, 0x21, 0x00, 0x10, 0x00, 0x01, // sbb byte [0x100021], 0x01
  0xf4, // hlt
  ...new Array(0x20 - 0x13).fill(0x90),
  0xf0, 0x05,
]);

test("ADC and SBB whose memory write bails (a code page) keep the carry they read under jit", async () => {
  const g = { mode: "protected" as const, image: carryIntoCodePage, load: LOAD, regs: { rip: LOAD, rsp: 0x200000 } };
  const a = await runGuest(g, "interp");
  const b = await runGuest(g, "jit");
  const bytes = b.m.vm.memoryView(LOAD + 0x20, 2);
  assertEquals([bytes[0], bytes[1]], [0x10, 0x03]);
  assertEquals(firstDifference(a.sum, b.sum), null);
});

// The same with the ADC's write landing on code: the immediate of the SBB right after it, in the
// same block. The write bails, the interpreter redoes the ADC with the carry it read, and the SBB
// runs with its new immediate.
// 100000: mov al, 0xF0
//         add al, 0x20               ; CF = 1
//         adc byte [100011], 0x20    ; the SBB's imm8: 0x01 + 0x20 + 1 = 0x22, CF = 0
// 10000b: sbb byte [100021], 0x01    ; runs as sbb ..., 0x22: 0x05 - 0x22 - 0 = 0xE3
// 100012: hlt
// 100021: db 0x05
const carryIntoCode = new Uint8Array([
  0xb0, 0xf0, 0x04, 0x20,
  0x80, 0x15, 0x11, 0x00, 0x10, 0x00, 0x20,
  0x80, 0x1d, 0x21, 0x00, 0x10, 0x00, 0x01,
  0xf4,
  ...new Array(0x21 - 0x13).fill(0x90),
  0x05,
]);

test("an ADC whose write hits the next instruction's immediate bails and keeps its carry under jit", async () => {
  const g = { mode: "protected" as const, image: carryIntoCode, load: LOAD, regs: { rip: LOAD, rsp: 0x200000 } };
  const a = await runGuest(g, "interp");
  const b = await runGuest(g, "jit");
  const m = b.m.vm.memoryView(LOAD, 0x22);
  assertEquals([m[0x11], m[0x21]], [0x22, 0xe3]);
  assertEquals(firstDifference(a.sum, b.sum), null);
});

// Byte granularity (issue 15): a loop whose store lands on its own page, after the code, touching
// none of the code's bytes.
// 100000: mov ecx, 100000
// 100005: l: mov [100040], ecx
//         add [100044], ecx
//         dec ecx
//         jnz l
//         hlt
// 100040: dd 0, 0
const dataNextToCode = new Uint8Array([
  0xb9, 0xa0, 0x86, 0x01, 0x00, // mov ecx, 100000
  0x89, 0x0d, 0x40, 0x00, 0x10, 0x00, // mov [0x100040], ecx
  0x01, 0x0d, 0x44, 0x00, 0x10, 0x00, // add [0x100044], ecx
  0x49, // dec ecx
  0x75, 0xf1, // jnz l
  0xf4, // hlt
  ...new Array(0x40 - 0x15).fill(0x00),
  0, 0, 0, 0, 0, 0, 0, 0,
]);

for (const engine of ["interp", "jit", "auto"] as const) {
  test(`stores next to the code on its page keep the decoded${engine === "interp" ? "" : " and compiled"} code (${engine})`, async () => {
    const g = { mode: "protected" as const, image: dataNextToCode, load: LOAD, regs: { rip: LOAD, rsp: 0x200000 } };
    const r = await runGuest(g, engine);
    const mem = new DataView(r.m.vm.memoryView(LOAD + 0x40, 8).slice().buffer);
    // The last store wrote ECX = 1; the sum is 100000 * 100001 / 2 mod 2^32.
    assertEquals([mem.getUint32(0, true), mem.getUint32(4, true)], [1, (100000 * 100001 / 2) % 2 ** 32]);
    assertEquals(r.m.vcpu.cpu.codeInvalidations, 0);
    if (engine !== "interp") {
      assertEquals(r.jit!.stats.invalidated, 0);
      assertEquals(r.jit!.stats.failures, 0);
      // Compiled code kept running: a handful of runs of its region, not one per iteration.
      assertEquals(r.jit!.stats.runs < 100, true, `runs ${r.jit!.stats.runs}`);
    }
  });
}

// A loop that patches another block on its page (the `mov al, imm8` it jumps to afterwards): that
// block is dropped at every write, the loop's own code is not hit and keeps running.
// 100000: mov ecx, 1000
// 100005: l: mov [100021], cl        ; imm8 of the MOV at 100020
//         dec ecx
//         jnz l
//         jmp 100020
// 100020: mov al, 0 ; hlt
const patchOther = new Uint8Array([
  0xb9, 0xe8, 0x03, 0x00, 0x00, // mov ecx, 1000
  0x88, 0x0d, 0x21, 0x00, 0x10, 0x00, // mov [0x100021], cl
  0x49, // dec ecx
  0x75, 0xf7, // jnz l
  0xeb, 0x10, // jmp 0x100020
  ...new Array(0x20 - 0x10).fill(0x90),
  0xb0, 0x00, // mov al, 0
  0xf4, // hlt
]);

test("a loop patching another block on its page runs that block's new bytes, under interp, jit and auto alike", async () => {
  const g = { mode: "protected" as const, image: patchOther, load: LOAD, regs: { rip: LOAD, rsp: 0x200000, rax: 0x12345678 } };
  const a = await runGuest(g, "interp");
  assertEquals(a.sum.regs.rax, 0x12345601, "the last write (CL = 1) is the MOV's immediate");
  for (const engine of ["jit", "auto"] as const) {
    const b = await runGuest(g, engine, engine === "auto" ? { threshold: 2 } : {});
    assertEquals(firstDifference(a.sum, b.sum), null, engine);
    // Once written to, the patched block stays out of the loop's region: not a region per write.
    assertEquals(b.jit!.stats.regions < 20, true, `${engine}: ${b.jit!.stats.regions} regions for 1,000 writes`);
  }
});
