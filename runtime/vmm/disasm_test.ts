import { test } from "node:test";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { disassemble, disassemblerLoaded, disassembleSync, loadDisassembler, MAX_DISASM_INPUT } from "./disasm.ts";

test("disassembleSync() refuses to run before the disassembler is loaded", () => {
  assertEquals(disassemblerLoaded(), false, "importing disasm.ts must not load Capstone");
  assertThrows(
    () => disassembleSync(new Uint8Array([0x90]), 0, 32),
    Error,
    "Disassembler is not loaded: await loadDisassembler() first",
  );
});

test("disassemble() decodes 16-bit code at its address", async () => {
  const code = new Uint8Array([0xba, 0xf8, 0x03, 0xb0, 0x41, 0xee, 0x0f, 0xa2, 0xf4]);
  const insns = await disassemble(code, 0x7c00, 16);
  assertEquals(insns.map((i) => i.text), ["mov dx, 0x3f8", "mov al, 0x41", "out dx, al", "cpuid", "hlt"]);
  assertEquals(insns[0], {
    address: 0x7c00,
    bytes: [0xba, 0xf8, 0x03],
    mnemonic: "mov",
    operands: "dx, 0x3f8",
    text: "mov dx, 0x3f8",
  });
  assertEquals(insns.map((i) => i.address), [0x7c00, 0x7c03, 0x7c05, 0x7c06, 0x7c08]);
  assertEquals(insns[3].operands, "");
  assertEquals(disassemblerLoaded(), true);
});

test("disassemble() decodes 32-bit code", async () => {
  const insns = await disassemble(new Uint8Array([0xf3, 0xa5, 0x0f, 0xa2, 0xb8, 0x78, 0x56, 0x34, 0x12]), 0x100000, 32);
  assertEquals(insns.map((i) => i.text), [
    "rep movsd dword ptr es:[edi], dword ptr [esi]",
    "cpuid",
    "mov eax, 0x12345678",
  ]);
  assertEquals(insns[0].mnemonic, "rep movsd");
});

test("disassemble() decodes the same bytes differently in 16- and 32-bit modes", async () => {
  const bytes = new Uint8Array([0xba, 0xf8, 0x03, 0x00, 0x00]);
  assertEquals((await disassemble(bytes, 0, 32))[0].text, "mov edx, 0x3f8");
  assertEquals((await disassemble(bytes, 0, 16))[0].text, "mov dx, 0x3f8");
});

test("disassemble() decodes 64-bit code", async () => {
  const insns = await disassemble(new Uint8Array([0x48, 0x89, 0xe5, 0x0f, 0x01, 0xc1]), 0xffff800000, 64);
  assertEquals(insns.map((i) => i.text), ["mov rbp, rsp", "vmcall"]);
  assertEquals(insns[1].address, 0xffff800003);
});

test("disassemble() stops after count instructions", async () => {
  const nops = new Uint8Array(100).fill(0x90);
  assertEquals((await disassemble(nops, 0, 32, 3)).length, 3);
  assertEquals((await disassemble(nops, 0, 32, 0)).length, 0);
  assertEquals((await disassemble(nops, 0, 32)).length, 100);
});

test("disassemble() stops at bytes that do not decode", async () => {
  assertEquals(await disassemble(new Uint8Array([0xff, 0xff]), 0, 32), []);
  const insns = await disassemble(new Uint8Array([0x90, 0x90, 0xff, 0xff, 0x90]), 0, 32);
  assertEquals(insns.map((i) => i.text), ["nop", "nop"]);
  assertEquals(await disassemble(new Uint8Array(0), 0, 32), []);
});

test("disassemble() looks at no more than 32 KiB of input", async () => {
  const big = new Uint8Array(MAX_DISASM_INPUT * 4).fill(0x90);
  assertEquals((await disassemble(big, 0, 32)).length, MAX_DISASM_INPUT);
  // Capstone still works afterwards.
  assertEquals((await disassemble(new Uint8Array([0x0f, 0xa2]), 0, 16))[0].text, "cpuid");
});

test("disassemble() rejects a bad address, mode or count", async () => {
  const nop = new Uint8Array([0x90]);
  await assertRejects(() => disassemble(nop, -1, 32), RangeError, "Invalid disassembly address: -1");
  // deno-lint-ignore no-explicit-any
  await assertRejects(() => disassemble(nop, 0, 8 as any), RangeError, "Invalid disassembly mode: 8 bits");
  await assertRejects(() => disassemble(nop, 0, 32, 1.5), RangeError, "Invalid instruction count: 1.5");
});

test("disassembleSync() decodes one instruction at a time after loadDisassembler()", async () => {
  await loadDisassembler();
  const code = new Uint8Array([0xfa, 0x31, 0xc0, 0x8e, 0xd8]);
  const seen: string[] = [];
  let offset = 0;
  while (offset < code.length) {
    const [insn] = disassembleSync(code.subarray(offset), 0x7c00 + offset, 16, 1);
    assert(insn !== undefined);
    seen.push(`${insn.address.toString(16)} ${insn.text}`);
    offset += insn.bytes.length;
  }
  assertEquals(seen, ["7c00 cli", "7c01 xor ax, ax", "7c03 mov ds, ax"]);
});
