/**
 * External interrupts through the KVM layer, KVM-selftest style: the in-kernel PIC and PIT
 * (KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_IRQ_LINE), HLT that waits in the kernel, the interrupt
 * window, the STI shadow, and KVM_INTERRUPT with a userspace irqchip. Guests are real-mode code at
 * CODE (0000:1000); their nasm source is in the comments.
 */
import { test } from "node:test";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { ExitReason } from "../cpu/vmcs.ts";
import { pitTicksAt, pitTickTime } from "../devices/i8254.ts";
import { CODE, realModeGuest } from "./_testing.ts";
import { KvmError } from "./kvm_main.ts";
import { KvmExit } from "./kvm_run.ts";
import type { Vcpu } from "./vcpu.ts";
import { kvmReadTsc } from "./x86.ts";

function runExpect(vcpu: Vcpu, reason: number, what = "") {
  const run = vcpu.run();
  assertEquals(run.exitReason, reason, `exit reason ${what}`);
  return run;
}
const word = (vcpu: Vcpu, gpa: number) => {
  const b = vcpu.vm.readGuest(gpa, 2);
  return b[0] | (b[1] << 8);
};

/*
 * IRQ0 handler at vector 8 counting ticks in [0x500] while the guest halts; the PIC programmed as
 * the BIOS does (vectors 8-15), the PIT at 1193 clocks (about 1 kHz) in mode 2.
 *     xor ax,ax / mov ds,ax / mov word [0x20],irq0 / mov word [0x22],0
 *     mov al,0x11 / out 0x20,al / mov al,0x08 / out 0x21,al      ; ICW1, ICW2
 *     mov al,0x04 / out 0x21,al / mov al,0x01 / out 0x21,al      ; ICW3, ICW4
 *     mov al,0x34 / out 0x43,al / mov ax,1193 / out 0x40,al / mov al,ah / out 0x40,al
 *     sti
 * idle: hlt / cmp word [0x500],5 / jb idle / cli / hlt
 * irq0: inc word [0x500] / push ax / mov al,0x20 / out 0x20,al / pop ax / iret
 */
const TICK = [
  0x31, 0xc0, 0x8e, 0xd8, 0xc7, 0x06, 0x20, 0x00, 0x38, 0x10, 0xc7, 0x06, 0x22, 0x00, 0x00, 0x00, 0xb0, 0x11, 0xe6,
  0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0x34, 0xe6, 0x43, 0xb8, 0xa9,
  0x04, 0xe6, 0x40, 0x88, 0xe0, 0xe6, 0x40, 0xfb, 0xf4, 0x83, 0x3e, 0x00, 0x05, 0x05, 0x72, 0xf8, 0xfa, 0xf4, 0xff,
  0x06, 0x00, 0x05, 0x50, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf,
];
/** Instructions before the OUT that writes the PIT count's MSB: the counter loads on the next PIT clock. */
const BEFORE_PIT_LOAD = 17;

test("a real-mode IRQ0 handler counts PIT ticks while the guest halts in a loop", () => {
  const { vm, vcpu } = realModeGuest(TICK, { irqchip: true });
  const run = runExpect(vcpu, KvmExit.HLT, "the final cli; hlt");
  assertEquals(word(vcpu, 0x500), 5);
  assertEquals(run.ifFlag, false);
  assertEquals(vcpu.getRegs().rip, CODE + 56);
  // 19 instructions up to STI, then per tick hlt + 6 in the handler + cmp + jb, then cli; hlt.
  assertEquals(vcpu.instructions, 19 + 5 * 9 + 2);
  // The counter loaded on PIT clock 1 (the first after the OUT at virtual time 17 ns); the fifth
  // edge is clock 1 + 5*1193, and 10 instructions ran after it was delivered.
  assertEquals(pitTicksAt(BEFORE_PIT_LOAD), 0);
  assertEquals(vm.clock(), pitTickTime(1 + 5 * 1193) + 10);
  assertEquals(kvmReadTsc(vcpu), vm.clock(), "the guest TSC ran on while the vCPU slept");
  assertEquals(vcpu.vmxExitCounts[ExitReason.HLT], 6, "five halts woken in the kernel, one to userspace");
  assertEquals(vcpu.userExitCounts.get(KvmExit.HLT), 1);
});

test("the same timer guest gives the same instruction count, clock and exits every run", () => {
  const a = realModeGuest(TICK, { irqchip: true });
  const b = realModeGuest(TICK, { irqchip: true });
  runExpect(a.vcpu, KvmExit.HLT);
  runExpect(b.vcpu, KvmExit.HLT);
  assertEquals(a.vcpu.instructions, b.vcpu.instructions);
  assertEquals(a.vm.clock(), b.vm.clock());
  assertEquals([...a.vcpu.vmxExitCounts], [...b.vcpu.vmxExitCounts]);
});

/*
 * A guest spinning with IF=1 while the PIT runs 100 clocks in mode 2; the first IRQ0 records its
 * return IP in [0x502] and stops.
 *     (the PIC and PIT setup of TICK, count 100) / xor si,si / sti
 * spin: inc si / jmp spin
 * irq0: mov bp,sp / mov ax,[bp] / mov [0x502],ax / cli / hlt
 */
const SPIN = [
  0x31, 0xc0, 0x8e, 0xd8, 0xc7, 0x06, 0x20, 0x00, 0x33, 0x10, 0xc7, 0x06, 0x22, 0x00, 0x00, 0x00, 0xb0, 0x11, 0xe6,
  0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0x34, 0xe6, 0x43, 0xb8, 0x64,
  0x00, 0xe6, 0x40, 0x88, 0xe0, 0xe6, 0x40, 0x31, 0xf6, 0xfb, 0x46, 0xeb, 0xfd, 0x89, 0xe5, 0x8b, 0x46, 0x00, 0xa3,
  0x02, 0x05, 0xfa, 0xf4,
];

test("the PIT interrupts a spinning guest at exactly the instruction its virtual time says", () => {
  const { vcpu } = realModeGuest(SPIN, { irqchip: true });
  runExpect(vcpu, KvmExit.HLT);
  // Clock 1 + 100 is at virtual time pitTickTime(101) ns = that many retired instructions.
  const at = pitTickTime(101);
  assertEquals(at, 84648);
  const loop = at - 20; // instructions retired in the spin loop (20 before it)
  assertEquals(vcpu.getRegs().rsi & 0xffff, Math.ceil(loop / 2));
  assertEquals(word(vcpu, 0x502), loop % 2 === 0 ? CODE + 48 : CODE + 49, "between INC and JMP or after JMP");
  assertEquals(vcpu.instructions, at + 5);
  assertEquals(vcpu.vmxExitCounts[ExitReason.EXTERNAL_INTERRUPT], 1, "the timer arrived as a host interrupt exit");
});

/*
 * The timer arrives in the middle of a REP STOSB of 60000 bytes; the handler records CX and its
 * return IP in [0x502] and [0x504], and the string finishes after IRET.
 *     (the PIC and PIT setup of TICK, count 50) / mov ax,0x2000 / mov es,ax / xor di,di
 *     mov cx,60000 / mov al,0x5a / sti / rep stosb / cli / hlt
 * irq0: mov [0x502],cx / mov bp,sp / mov bx,[bp] / mov [0x504],bx
 *       push ax / mov al,0x20 / out 0x20,al / pop ax / iret
 */
const REP_STOS = [
  0x31, 0xc0, 0x8e, 0xd8, 0xc7, 0x06, 0x20, 0x00, 0x3e, 0x10, 0xc7, 0x06, 0x22, 0x00, 0x00, 0x00, 0xb0, 0x11, 0xe6,
  0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0x34, 0xe6, 0x43, 0xb8, 0x32,
  0x00, 0xe6, 0x40, 0x88, 0xe0, 0xe6, 0x40, 0xb8, 0x00, 0x20, 0x8e, 0xc0, 0x31, 0xff, 0xb9, 0x60, 0xea, 0xb0, 0x5a,
  0xfb, 0xf3, 0xaa, 0xfa, 0xf4, 0x89, 0x0e, 0x02, 0x05, 0x89, 0xe5, 0x8b, 0x5e, 0x00, 0x89, 0x1e, 0x04, 0x05, 0x50,
  0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf,
];

test("the timer interrupts a REP string instruction between iterations and the string resumes", () => {
  const { vm, vcpu } = realModeGuest(REP_STOS, { irqchip: true, memSize: 0x40000 });
  runExpect(vcpu, KvmExit.HLT);
  const at = pitTickTime(51); // clock 1 + 50
  const iterations = at - 24; // each iteration is an instruction; 24 ran before the REP
  assertEquals(word(vcpu, 0x502), 60000 - iterations, "CX when the interrupt came");
  assertEquals(word(vcpu, 0x504), CODE + 58, "the return IP is the REP instruction itself");
  const regs = vcpu.getRegs();
  assertEquals([regs.rcx & 0xffff, regs.rdi & 0xffff], [0, 60000]);
  assertEquals(vm.readGuest(0x20000 + 59999, 2), new Uint8Array([0x5a, 0]));
});

/*
 * Like TICK but halting forever: `idle: hlt / jmp idle`, the handler only sends EOI.
 */
const FOREVER = [
  0x31, 0xc0, 0x8e, 0xd8, 0xc7, 0x06, 0x20, 0x00, 0x31, 0x10, 0xc7, 0x06, 0x22, 0x00, 0x00, 0x00, 0xb0, 0x11, 0xe6,
  0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0x34, 0xe6, 0x43, 0xb8, 0xa9,
  0x04, 0xe6, 0x40, 0x88, 0xe0, 0xe6, 0x40, 0xfb, 0xf4, 0xeb, 0xfd, 0x50, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf,
];

test("the instruction budget ends a guest that halts and wakes on the timer forever", () => {
  const { vm, vcpu } = realModeGuest(FOREVER, { irqchip: true });
  vcpu.setBudget(1000);
  runExpect(vcpu, KvmExit.BUDGET);
  assertEquals(vcpu.instructions, 1000);
  assert(vm.clock() > 100 * 1193 * 838, "about a hundred ticks of virtual time went by");
});

test("the wall-clock deadline ends a guest that halts and wakes on the timer forever", () => {
  const { vcpu } = realModeGuest(FOREVER, { irqchip: true });
  vcpu.setDeadline(performance.now() + 30);
  runExpect(vcpu, KvmExit.INTR);
  assert(vcpu.instructions > 1000);
});

/*
 *     mov al,0x11 / out 0x20,al / mov al,0x08 / out 0x21,al / mov al,0x04 / out 0x21,al
 *     mov al,0x01 / out 0x21,al / mov al,0xff / out 0x21,al     ; every IRQ masked
 *     mov al,0x34 / out 0x43,al / mov al,0x10 / out 0x40,al / out 0x40,al
 *     sti / hlt
 */
const MASKED = [
  0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xff, 0xe6,
  0x21, 0xb0, 0x34, 0xe6, 0x43, 0xb0, 0x10, 0xe6, 0x40, 0xe6, 0x40, 0xfb, 0xf4,
];

test("HLT with IF=1 exits to userspace when the PIT's IRQ0 is masked", () => {
  const { vm, vcpu } = realModeGuest(MASKED, { irqchip: true });
  const run = runExpect(vcpu, KvmExit.HLT);
  assertEquals(run.ifFlag, true);
  assertEquals(vm.clock(), vcpu.instructions, "no time was skipped");
});

test("HLT with IF=1 exits to userspace when the PIT was never programmed", () => {
  const { vcpu } = realModeGuest([0xfb, 0xf4], { irqchip: true }); // sti; hlt
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, CODE + 2);
});

test("HLT with IF=0 exits to userspace even with the timer running", () => {
  // TICK with its STI turned into CLI
  const code = [...TICK];
  code[45] = 0xfa;
  const { vcpu } = realModeGuest(code, { irqchip: true });
  const run = runExpect(vcpu, KvmExit.HLT);
  assertEquals(run.ifFlag, false);
  assertEquals(vcpu.getRegs().rip, CODE + 47);
  assertEquals(word(vcpu, 0x500), 0);
});

/*
 * IRQ1 (vector 9) handler at 0x1100 records its return IP in [0x500] and sends EOI:
 *     mov bp,sp / mov ax,[bp] / mov [0x500],ax / mov al,0x20 / out 0x20,al / iret
 * The guest sets IVT[9], programs the PIC with only IRQ1 unmasked, and exits to userspace with
 * IF=0 (out 0x80,al) so that the host can raise IRQ1 before the code under test runs.
 */
const IRQ1_HANDLER = [0x89, 0xe5, 0x8b, 0x46, 0x00, 0xa3, 0x00, 0x05, 0xb0, 0x20, 0xe6, 0x20, 0xcf];
const IRQ1_PROLOGUE = [
  0x31, 0xc0, 0x8e, 0xd8, 0xc7, 0x06, 0x24, 0x00, 0x00, 0x11, 0xc7, 0x06, 0x26, 0x00, 0x00, 0x00, 0xb0, 0x11, 0xe6,
  0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfd, 0xe6, 0x21, 0xe6, 0x80,
];
const AFTER = CODE + IRQ1_PROLOGUE.length;
const STI = 0xfb, CLI = 0xfa, NOP = 0x90, HLT = 0xf4;

/** Run the prologue to its OUT, raise IRQ1 with KVM_IRQ_LINE, and run `tail` until a HLT exit. */
function irq1Pending(tail: number[]) {
  const g = realModeGuest([...IRQ1_PROLOGUE, ...tail], { irqchip: true });
  g.vm.writeGuest(0x1100, new Uint8Array(IRQ1_HANDLER));
  const run = runExpect(g.vcpu, KvmExit.IO, "out 0x80");
  assertEquals(run.readyForInterruptInjection, true, "always with an in-kernel irqchip");
  g.vm.irqLine(1, 1);
  g.vm.irqLine(1, 0);
  assertEquals(g.vm.pic!.output, true);
  runExpect(g.vcpu, KvmExit.HLT);
  return g;
}

test("KVM_IRQ_LINE: an IRQ raised while IF=0 is delivered after STI and the one instruction it shadows", () => {
  const { vcpu } = irq1Pending([STI, NOP, CLI, HLT]);
  assertEquals(word(vcpu, 0x500), AFTER + 2, "returns to the CLI: the NOP ran first");
  assertEquals(vcpu.vmxExitCounts[ExitReason.INTERRUPT_WINDOW], 1, "KVM waited for the window");
});

test("sti; hlt takes the interrupt after the HLT starts, not before STI completes", () => {
  const { vcpu } = irq1Pending([STI, HLT, CLI, HLT]);
  assertEquals(word(vcpu, 0x500), AFTER + 2, "returns past the HLT, which woke for it");
  assertEquals(vcpu.vmxExitCounts[ExitReason.HLT], 2);
  assertEquals(vcpu.getRegs().rip, AFTER + 4);
});

test("MOV SS right after STI holds the interrupt off for one more instruction", () => {
  // xor ax,ax; sti; mov ss,ax; nop; cli; hlt
  const { vcpu } = irq1Pending([0x31, 0xc0, STI, 0x8e, 0xd0, NOP, CLI, HLT]);
  assertEquals(word(vcpu, 0x500), AFTER + 6, "returns to the CLI: MOV SS shadowed the NOP");
});

test("sti; cli never opens the interrupt window", () => {
  const { vm, vcpu } = irq1Pending([STI, CLI, HLT]);
  assertEquals(word(vcpu, 0x500), 0, "not delivered");
  assertEquals(vm.pic!.output, true, "still pending");
  assertEquals(vcpu.vmxExitCounts[ExitReason.INTERRUPT_WINDOW], 0);
});

test("KVM_IRQ_LINE wakes a guest whose HLT went to userspace", () => {
  // sti; hlt; cli; hlt: the first HLT has no wake source in the kernel
  const g = realModeGuest([...IRQ1_PROLOGUE, STI, HLT, CLI, HLT], { irqchip: true });
  g.vm.writeGuest(0x1100, new Uint8Array(IRQ1_HANDLER));
  runExpect(g.vcpu, KvmExit.IO);
  runExpect(g.vcpu, KvmExit.HLT);
  assertEquals(g.vcpu.getRegs().rip, AFTER + 2);
  g.vm.irqLine(1, true);
  runExpect(g.vcpu, KvmExit.HLT);
  assertEquals(word(g.vcpu, 0x500), AFTER + 2);
  assertEquals(g.vcpu.getRegs().rip, AFTER + 4);
});

test("the kernel path of a timer interrupt is traced", () => {
  const { vm, vcpu } = realModeGuest(TICK, { irqchip: true, trace: true });
  runExpect(vcpu, KvmExit.HLT);
  const stages = vm.tracer!.stages();
  for (const s of ["kvmEmulateHalt", "kvmVcpuBlock", "kvmPitTimerFn", "kvmVcpuWakeup", "kvmInjectIrq"]) {
    assert(stages.includes(s), `${s} in the trace`);
  }
  const inject = vm.tracer!.events.find((e) => e.stage === "kvmInjectIrq");
  assertEquals(inject?.args, { vector: 8, source: "pic" });
});

// ---------------------------------------------------------------------------------------------
// Creating the irqchip, and KVM_INTERRUPT with a userspace irqchip
// ---------------------------------------------------------------------------------------------

test("KVM_CREATE_IRQCHIP and KVM_CREATE_PIT2 refuse the wrong order and doubles", () => {
  const g = realModeGuest([HLT]);
  assertThrows(() => g.vm.createIrqchip(), KvmError, "after KVM_CREATE_VCPU");
  assertThrows(() => g.vm.createPit2(), KvmError, "needs the in-kernel irqchip");
  assertThrows(() => g.vm.irqLine(0, 1), KvmError, "KVM_IRQ_LINE needs the in-kernel irqchip");
  const h = realModeGuest([HLT], { irqchip: true });
  assertThrows(() => h.vm.createPit2(), KvmError, "already has one");
  assertThrows(() => h.vm.irqLine(16, 1), RangeError, "Invalid PIC IRQ: 16");
  assertThrows(() => h.vcpu.interrupt(0x20), KvmError, "in-kernel PIC");
  for (const p of [0x20, 0x21, 0xa0, 0xa1, 0x40, 0x43, 0x61]) assert(h.vm.pioBus.find(p) !== undefined, `port 0x${p.toString(16)}`);
});

/*
 * Vector 0x30 handler at 0x1100: out 0x81,al / iret
 *     xor ax,ax / mov ds,ax / mov word [0xc0],0x1100 / mov word [0xc2],0
 *     out 0x80,al / nop / sti / nop / nop / hlt
 */
const WINDOW = [
  0x31, 0xc0, 0x8e, 0xd8, 0xc7, 0x06, 0xc0, 0x00, 0x00, 0x11, 0xc7, 0x06, 0xc2, 0x00, 0x00, 0x00, 0xe6, 0x80, 0x90,
  0xfb, 0x90, 0x90, 0xf4,
];

test("request_interrupt_window: KVM_RUN returns KVM_EXIT_IRQ_WINDOW_OPEN when the guest can take an interrupt", () => {
  const { vm, vcpu } = realModeGuest(WINDOW);
  vm.writeGuest(0x1100, new Uint8Array([0xe6, 0x81, 0xcf]));
  let run = runExpect(vcpu, KvmExit.IO);
  assertEquals([run.ifFlag, run.readyForInterruptInjection], [false, false]);
  run.requestInterruptWindow = true;
  run = runExpect(vcpu, KvmExit.IRQ_WINDOW_OPEN);
  assertEquals(vcpu.getRegs().rip, CODE + 21, "after STI and the NOP in its shadow");
  assertEquals([run.ifFlag, run.readyForInterruptInjection], [true, true]);
  run.requestInterruptWindow = false;
  vcpu.interrupt(0x30);
  run = runExpect(vcpu, KvmExit.IO);
  assertEquals(run.io.port, 0x81);
  assertEquals([run.ifFlag, run.readyForInterruptInjection], [false, false], "in the handler");
  runExpect(vcpu, KvmExit.HLT, "without an in-kernel irqchip HLT always goes to userspace");
  assertEquals(vcpu.getRegs().rip, CODE + 23);
});

test("KVM_INTERRUPT queues one vector until the guest takes it", () => {
  const { vm, vcpu } = realModeGuest(WINDOW);
  vm.writeGuest(0x1100, new Uint8Array([0xe6, 0x81, 0xcf]));
  runExpect(vcpu, KvmExit.IO);
  vcpu.interrupt(0x30);
  assertThrows(() => vcpu.interrupt(0x31), KvmError, "vector 0x30 is still queued");
  assertThrows(() => vcpu.interrupt(256), RangeError);
  const run = runExpect(vcpu, KvmExit.IO);
  assertEquals(run.io.port, 0x81);
  assertEquals(vcpu.queuedIrq, -1);
  vcpu.interrupt(0x30); // accepted again once delivered
});
