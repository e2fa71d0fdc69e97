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
