/**
 * String IO (INS/OUTS, with and without REP) through kvmEmulatePioString and completeIo: what
 * userspace sees in kvm_run, what lands in guest memory, and where ECX/ESI/EDI end (SDM vol. 2,
 * INS/OUTS and REP: the index moves by the element size per element, backwards with DF=1; the
 * address size picks CX/SI/DI or ECX/ESI/EDI and leaves the upper halves alone in 16-bit form).
 */
import { test } from "node:test";
import { assertEquals } from "../../tests/assert.ts";
import { KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT, KvmExit, VmcsField } from "../mod.ts";
import { DebugCon } from "../devices/mod.ts";
import { ascii, CODE, protectedModeGuest, realModeGuest } from "./_testing.ts";
import type { Vcpu } from "./vcpu.ts";

const HLT = 0xf4;
const REP_OUTSB = [0xf3, 0x6e];
const REP_INSB = [0xf3, 0x6c];
const TEXT = "twenty bytes exactly"; // 20 bytes

function expectIo(vcpu: Vcpu) {
  const run = vcpu.run();
  assertEquals(run.exitReason, KvmExit.IO);
  return run;
}
function expectHlt(vcpu: Vcpu): void {
  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
}
function regs(vcpu: Vcpu) {
  const r = vcpu.getRegs();
  return { rcx: r.rcx, rsi: r.rsi, rdi: r.rdi, rip: r.rip };
}

test("rep outsb of 20 bytes reaches userspace as one exit with count 20 and the bytes", () => {
  // rep outsb; hlt   (DS:SI = 0:0x2000, CX = 20, DX = 0x3f8)
  const { vm, vcpu } = realModeGuest([...REP_OUTSB, HLT], { regs: { rcx: 20, rsi: 0x2000, rdx: 0x3f8 } });
  vm.writeGuest(0x2000, ascii(TEXT));
  const run = expectIo(vcpu);
  assertEquals({ ...run.io }, { direction: KVM_EXIT_IO_OUT, size: 1, port: 0x3f8, count: 20, dataOffset: 0 });
  assertEquals(new TextDecoder().decode(run.data.slice(run.io.dataOffset, run.io.dataOffset + 20)), TEXT);
  expectHlt(vcpu);
  assertEquals(regs(vcpu), { rcx: 0, rsi: 0x2014, rdi: 0, rip: CODE + 3 });
  assertEquals(vcpu.instructions, 21, "20 iterations, then the HLT");
});

test("rep insb fills guest memory with what userspace left in kvm_run.data", () => {
  // rep insb; hlt   (ES:DI = 0:0x3000, CX = 16, DX = 0x60)
  const { vm, vcpu } = realModeGuest([...REP_INSB, HLT], { regs: { rcx: 16, rdi: 0x3000, rdx: 0x60 } });
  const run = expectIo(vcpu);
  assertEquals({ ...run.io }, { direction: KVM_EXIT_IO_IN, size: 1, port: 0x60, count: 16, dataOffset: 0 });
  run.data.set(ascii("from userspace!!"), run.io.dataOffset);
  assertEquals([...vm.readGuest(0x3000, 16)], new Array(16).fill(0), "nothing is written before completion");
  expectHlt(vcpu);
  assertEquals(new TextDecoder().decode(vm.readGuest(0x3000, 17)), "from userspace!!\0");
  assertEquals(regs(vcpu), { rcx: 0, rsi: 0, rdi: 0x3010, rip: CODE + 3 });
});

test("16-bit address size: CX and SI move, the upper halves of ECX and ESI stay", () => {
  const { vm, vcpu } = realModeGuest([...REP_OUTSB, HLT], { regs: { rcx: 0xabcd_0014, rsi: 0x1234_2000, rdx: 0x3f8 } });
  vm.writeGuest(0x2000, ascii(TEXT));
  const run = expectIo(vcpu);
  assertEquals(run.io.count, 20);
  assertEquals((vcpu.vmcsRead(VmcsField.VMX_INSTRUCTION_INFO) >> 7) & 7, 0, "address size 16");
  expectHlt(vcpu);
  assertEquals(regs(vcpu), { rcx: 0xabcd_0000, rsi: 0x1234_2014, rdi: 0, rip: CODE + 3 });
});

test("16-bit address size: SI wraps from 0xffff to 0", () => {
  // rep outsb; hlt   (SI = 0xfffe, CX = 4)
  const { vm, vcpu } = realModeGuest([...REP_OUTSB, HLT], { regs: { rcx: 4, rsi: 0xfffe, rdx: 0x3f8 } });
  vm.writeGuest(0xfffe, new Uint8Array([0xa1, 0xa2]));
  vm.writeGuest(0x0000, new Uint8Array([0xb1, 0xb2]));
  const run = expectIo(vcpu);
  assertEquals([...run.data.slice(0, 4)], [0xa1, 0xa2, 0xb1, 0xb2]);
  expectHlt(vcpu);
  assertEquals(regs(vcpu).rsi, 2);
});

test("32-bit address size in real mode (0x67): ECX and ESI are used whole", () => {
  // a32 rep outsb; hlt   (f3 67 6e)
  const { vm, vcpu } = realModeGuest([0xf3, 0x67, 0x6e, HLT], { regs: { rcx: 20, rsi: 0x2000, rdx: 0x3f8 } });
  vm.writeGuest(0x2000, ascii(TEXT));
  const run = expectIo(vcpu);
  assertEquals(run.io.count, 20);
  assertEquals((vcpu.vmcsRead(VmcsField.VMX_INSTRUCTION_INFO) >> 7) & 7, 1, "address size 32");
  assertEquals(vcpu.vmcsRead(VmcsField.VM_EXIT_INSTRUCTION_LEN), 3);
  expectHlt(vcpu);
  assertEquals(regs(vcpu), { rcx: 0, rsi: 0x2014, rdi: 0, rip: CODE + 4 });
});

test("32-bit protected mode: rep outsb and rep insb above 64 KiB", () => {
  // rep outsb; mov ecx,3; mov edi,0x13000; rep insb; hlt
  const code = [...REP_OUTSB, 0xb9, 0x03, 0x00, 0x00, 0x00, 0xbf, 0x00, 0x30, 0x01, 0x00, ...REP_INSB, HLT];
  const { vm, vcpu } = protectedModeGuest(code, { memSize: 0x20000, regs: { rcx: 20, rsi: 0x12000, rdx: 0x3f8 } });
  vm.writeGuest(0x12000, ascii(TEXT));
  let run = expectIo(vcpu);
  assertEquals([run.io.direction, run.io.count], [KVM_EXIT_IO_OUT, 20]);
  assertEquals(new TextDecoder().decode(run.data.slice(0, 20)), TEXT);
  run = expectIo(vcpu);
  assertEquals([run.io.direction, run.io.count], [KVM_EXIT_IO_IN, 3]);
  assertEquals(regs(vcpu), { rcx: 3, rsi: 0x12014, rdi: 0x13000, rip: CODE + 12 });
  run.data.set([7, 8, 9]);
  expectHlt(vcpu);
  assertEquals([...vm.readGuest(0x13000, 4)], [7, 8, 9, 0]);
  assertEquals(regs(vcpu), { rcx: 0, rsi: 0x12014, rdi: 0x13003, rip: CODE + 15 });
  assertEquals(vcpu.instructions, 20 + 2 + 3 + 1);
});

test("16-bit address size in protected mode (0x67): DI wraps and the upper half of EDI stays", () => {
  // a16 rep insb; hlt   (f3 67 6c; EDI = 0x0001_fffe, ECX = 0x0005_0004: DI and CX only)
  const { vm, vcpu } = protectedModeGuest([0xf3, 0x67, 0x6c, HLT], { memSize: 0x20000, regs: { rcx: 0x5_0004, rdi: 0x1_fffe, rdx: 0x60 } });
  const run = expectIo(vcpu);
  assertEquals(run.io.count, 4);
  assertEquals((vcpu.vmcsRead(VmcsField.VMX_INSTRUCTION_INFO) >> 7) & 7, 0);
  run.data.set([1, 2, 3, 4]);
  expectHlt(vcpu);
  assertEquals([...vm.readGuest(0xfffe, 2)], [1, 2]);
  assertEquals([...vm.readGuest(0x0000, 2)], [3, 4]);
  assertEquals(regs(vcpu), { rcx: 0x5_0000, rsi: 0, rdi: 0x1_0002, rip: CODE + 4 });
});

test("with DF=1 rep outsw walks backwards, two bytes per element", () => {
  // std; rep outsw; hlt   (SI = 0x2004, CX = 3)
  const { vm, vcpu } = realModeGuest([0xfd, 0xf3, 0x6f, HLT], { regs: { rcx: 3, rsi: 0x2004, rdx: 0x60 } });
  vm.writeGuest(0x2000, new Uint8Array([1, 2, 3, 4, 5, 6]));
  const run = expectIo(vcpu);
  assertEquals([run.io.size, run.io.count], [2, 3]);
  assertEquals([...run.data.slice(0, 6)], [5, 6, 3, 4, 1, 2]);
  expectHlt(vcpu);
  assertEquals(regs(vcpu), { rcx: 0, rsi: 0x1ffe, rdi: 0, rip: CODE + 4 });
});

test("rep outsd carries four-byte elements", () => {
  // rep outsd; hlt   (32-bit code)
  const { vm, vcpu } = protectedModeGuest([0xf3, 0x6f, HLT], { regs: { rcx: 2, rsi: 0x2000, rdx: 0xcf8 } });
  vm.writeGuest(0x2000, new Uint8Array([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]));
  const run = expectIo(vcpu);
  assertEquals([run.io.size, run.io.count, run.io.port], [4, 2, 0xcf8]);
  assertEquals([...run.data.slice(0, 8)], [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
  expectHlt(vcpu);
  assertEquals(regs(vcpu).rsi, 0x2008);
});

test("a segment override on OUTS is honoured (VM-exit instruction information, bits 17:15)", () => {
  // mov ax,0x200; mov es,ax; rep es outsb; hlt   (ES:SI = 0200:0000 = physical 0x2000)
  const { vm, vcpu } = realModeGuest([0xb8, 0x00, 0x02, 0x8e, 0xc0, 0xf3, 0x26, 0x6e, HLT], { regs: { rcx: 5, rsi: 0, rdx: 0x3f8 } });
  vm.writeGuest(0x2000, ascii("es ok"));
  vm.writeGuest(0x0000, ascii("ds!!!"));
  const run = expectIo(vcpu);
  assertEquals((vcpu.vmcsRead(VmcsField.VMX_INSTRUCTION_INFO) >> 15) & 7, 0, "segment ES");
  assertEquals(new TextDecoder().decode(run.data.slice(0, 5)), "es ok");
  expectHlt(vcpu);
});

test("more than a page of elements takes several exits; ECX counts down between them", () => {
  // rep outsb; hlt   (5000 bytes)
  const { vcpu } = realModeGuest([...REP_OUTSB, HLT], { regs: { rcx: 5000, rsi: 0x2000, rdx: 0x3f8 } });
  let run = expectIo(vcpu);
  assertEquals(run.io.count, 4096);
  run = expectIo(vcpu);
  assertEquals(run.io.count, 904);
  assertEquals(regs(vcpu), { rcx: 904, rsi: 0x3000, rdi: 0, rip: CODE });
  expectHlt(vcpu);
  assertEquals(regs(vcpu), { rcx: 0, rsi: 0x2000 + 5000, rdi: 0, rip: CODE + 3 });
  assertEquals(vcpu.instructions, 5001);
});

test("rep outsb with CX = 0 does nothing and never exits", () => {
  const { vcpu } = realModeGuest([...REP_OUTSB, HLT], { regs: { rcx: 0, rsi: 0x2000, rdx: 0x3f8 } });
  expectHlt(vcpu);
  assertEquals(regs(vcpu), { rcx: 0, rsi: 0x2000, rdi: 0, rip: CODE + 3 });
});

test("outsb without REP moves one byte and leaves CX alone", () => {
  // outsb; hlt
  const { vm, vcpu } = realModeGuest([0x6e, HLT], { regs: { rcx: 7, rsi: 0x2000, rdx: 0x3f8 } });
  vm.writeGuest(0x2000, ascii("x"));
  const run = expectIo(vcpu);
  assertEquals([run.io.count, run.data[0]], [1, 0x78]);
  expectHlt(vcpu);
  assertEquals(regs(vcpu), { rcx: 7, rsi: 0x2001, rdi: 0, rip: CODE + 2 });
});

test("rep insb from an in-kernel device fills memory within one KVM_RUN", () => {
  // rep insb; hlt   (DX = 0xe9: the debug console reads back 0xe9)
  const { vm, vcpu } = realModeGuest([...REP_INSB, HLT], { regs: { rcx: 3, rdi: 0x3000, rdx: 0xe9 } });
  vm.attachKernelDevice(new DebugCon(() => {}));
  expectHlt(vcpu);
  assertEquals([...vm.readGuest(0x3000, 4)], [0xe9, 0xe9, 0xe9, 0]);
  assertEquals(regs(vcpu), { rcx: 0, rsi: 0, rdi: 0x3003, rip: CODE + 3 });
  assertEquals(vm.pioCounts[0xe9 * 2], 3, "three IN elements counted");
});

test("the instruction budget splits a REP OUTSB and resumes it where it stopped", () => {
  // rep outsb; hlt   (20 bytes, budget 8)
  const { vm, vcpu } = realModeGuest([...REP_OUTSB, HLT], { regs: { rcx: 20, rsi: 0x2000, rdx: 0x3f8 } });
  vm.writeGuest(0x2000, ascii(TEXT));
  vcpu.setBudget(8);
  let run = expectIo(vcpu);
  assertEquals(run.io.count, 8);
  assertEquals(vcpu.run().exitReason, KvmExit.BUDGET);
  assertEquals(vcpu.instructions, 8);
  assertEquals(regs(vcpu), { rcx: 12, rsi: 0x2008, rdi: 0, rip: CODE });
  vcpu.setBudget(null);
  run = expectIo(vcpu);
  assertEquals(new TextDecoder().decode(run.data.slice(0, run.io.count)), TEXT.slice(8));
  expectHlt(vcpu);
  assertEquals(vcpu.instructions, 21);
});
