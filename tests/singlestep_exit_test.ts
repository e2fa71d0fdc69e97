/** The trap flag after instructions that exit to the kernel (KVM emulates them, then single-steps). */
import { test } from "node:test";
import { assertEquals } from "./assert.ts";
import { runCode } from "./cpu_harness.ts";

test("single-step traps after an OUT that KVM completes, with RIP past the OUT and DR6.BS set", () => {
  // pushf; pop ax; or ax,0x100; push ax; popf   (TF=1: the trap comes after the next instruction)
  // out 0x80,al ; nop ; hlt       #DB handler at 0x2000: hlt
  const code = [0x9c, 0x58, 0x0d, 0x00, 0x01, 0x50, 0x9d, 0xe6, 0x80, 0x90, 0xf4];
  const r = runCode(code, { mem: [[1 * 4, [0x00, 0x20, 0x00, 0x00]], [0x2000, [0xf4]]] });
  assertEquals(r.regs.rip, 0x2001);
  // The frame on the stack: IP of the instruction after the OUT (0x1009), CS 0, FLAGS with TF.
  const sp = r.regs.rsp & 0xffff;
  assertEquals(r.h.read16(sp), 0x1009);
  assertEquals(r.h.read16(sp + 4) & 0x100, 0x100);
  assertEquals(r.h.vcpu.cpu.st[48 + 12] & 0x4000, 0x4000);
});
