import { test } from "node:test";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { Machine, MachineError } from "./machine.ts";
import { ExitReason } from "../cpu/vmcs.ts";

/** A real-mode machine running `code` at 0x1000. */
function rm(code: number[], opts: ConstructorParameters<typeof Machine>[0] = {}): Machine {
  const m = new Machine({ mode: "real", ...opts });
  m.load(new Uint8Array(code), { format: "raw" });
  return m;
}
const OUT_E9_HLT = [0xb0, 0x41, 0xe6, 0xe9, 0xf4]; // mov al,'A'; out 0xe9,al; hlt

test("Machine prints debug-console bytes from the in-kernel device without leaving KVM_RUN", () => {
  const m = rm(OUT_E9_HLT);
  const r = m.run();
  assertEquals(m.console, "A");
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.userspaceExits, { hlt: 1 });
  assertEquals(r.exits.io_instruction, 1);
});

test("Machine.onIo() hook receives OUTs in a port range with size and value", () => {
  // mov dx,0x500; mov ax,0x1234; out dx,ax; inc dx; out dx,al; hlt
  const m = rm([0xba, 0x00, 0x05, 0xb8, 0x34, 0x12, 0xef, 0x42, 0xee, 0xf4]);
  const seen: string[] = [];
  m.onIo({ port: [0x500, 0x50f], direction: "out", name: "range", handler: (io) => void seen.push(`${io.port.toString(16)}/${io.size}/${io.value.toString(16)}`) });
  assertEquals(m.run().exit.reason, "hlt");
  assertEquals(seen, ["500/2/1234", "501/1/34"]);
});

test("Machine.onIo() IN hook's value reaches AL", () => {
  // in al,0x70; mov [0x2000],al; hlt
  const m = rm([0xe4, 0x70, 0xa2, 0x00, 0x20, 0xf4]);
  m.onIo({ port: 0x70, direction: "in", handler: () => 0x5a });
  m.run();
  assertEquals(m.vcpu.getRegs().rax & 0xff, 0x5a);
  assertEquals(m.vm.readGuest(0x2000, 1)[0], 0x5a);
});

test("Machine.onIo() sees each element of a REP OUTSB", () => {
  // mov si,0x1100; mov cx,3; mov dx,0x600; rep outsb; hlt ; data at 0x1100
  const code = new Array(0x100).fill(0x90);
  code.splice(0, 12, 0xbe, 0x00, 0x11, 0xb9, 0x03, 0x00, 0xba, 0x00, 0x06, 0xf3, 0x6e, 0xf4);
  code.push(0x61, 0x62, 0x63);
  const m = rm(code);
  const got: number[] = [];
  m.onIo({ port: 0x600, handler: (io) => void got.push(io.value) });
  assertEquals(m.run().exit.reason, "hlt");
  assertEquals(got, [0x61, 0x62, 0x63]);
  assertEquals(m.vcpu.getRegs().rcx & 0xffff, 0);
});

test("Machine refuses overlapping IO registrations with a clear error", () => {
  const m = rm(OUT_E9_HLT);
  m.onIo({ port: [0x100, 0x10f], name: "first", handler: () => {} });
  const e = assertThrows(() => m.onIo({ port: 0x108, name: "second", handler: () => {} }), MachineError);
  assertEquals(e.message, 'Cannot register IO hook "second" for ports 0x108: port 0x108 is claimed by IO hook "first"');
  assertThrows(() => m.onIo({ port: 0xe9, handler: () => {} }), MachineError, 'claimed by in-kernel device "debugcon"');
  assertThrows(() => m.onIo({ port: 0x3fd, handler: () => {} }), MachineError, 'claimed by userspace device "serial"');
  // An IN-only hook and an OUT-only hook may share a port.
  m.onIo({ port: 0x200, direction: "in", handler: () => 1 });
  m.onIo({ port: 0x200, direction: "out", handler: () => {} });
});

test("Machine: a hook that throws ends the run with an error naming the hook and the exit; the VM stays inspectable", () => {
  const m = rm([0xb0, 0x07, 0xe6, 0x44, 0xf4]); // mov al,7; out 0x44,al; hlt
  m.onIo({ port: 0x44, name: "boom", handler: () => { throw new Error("kaboom"); } });
  const e = assertThrows(() => m.run(), MachineError, 'Hook "boom" threw on KVM_EXIT_IO out port 0x44: kaboom');
  assertEquals((e as MachineError).kind, "hook");
  const regs = m.vcpu.getRegs();
  assertEquals(regs.rax & 0xff, 7);
  assertEquals(regs.rip, 0x1002); // still at the OUT: KVM completes it on the next KVM_RUN
});

test("Machine: a hook can stop the run and change registers", () => {
  // out 0x44,al; inc ax; hlt
  const m = rm([0xe6, 0x44, 0x40, 0xf4]);
  m.onIo({ port: 0x44, handler: (_io, ctx) => { ctx.setRegs({ rbx: 99 }); ctx.stop("seen 0x44"); } });
  const r = m.run();
  assertEquals(r.exit, { reason: "stopped", detail: "seen 0x44" });
  assertEquals(m.vcpu.getRegs().rbx, 99);
  // Resuming continues after the OUT.
  const r2 = m.run();
  assertEquals(r2.exit.reason, "hlt");
  assertEquals(m.vcpu.getRegs().rax & 0xffff, 1);
});

test("Machine.onExit() hooks run in registration order and may resume the guest", () => {
  // hlt; mov al,'B'; out 0xe9,al; hlt
  const m = rm([0xf4, 0xb0, 0x42, 0xe6, 0xe9, 0xf4]);
  const order: string[] = [];
  let first = true;
  m.onExit("hlt", () => void order.push("a"));
  m.onExit("hlt", () => { order.push("b"); if (first) { first = false; return "resume"; } });
  const r = m.run();
  assertEquals(r.exit.reason, "hlt");
  assertEquals(order, ["a", "b", "a", "b"]);
  assertEquals(m.console, "B");
});

test("Machine.onHypercall() answers VMCALL and unknown hypercalls get -KVM_ENOSYS", () => {
  // mov ax,5; vmcall; mov [0x2000],eax; mov ax,6; vmcall; mov [0x2004],eax; hlt
  const m = rm([0xb8, 0x05, 0x00, 0x0f, 0x01, 0xc1, 0x66, 0xa3, 0x00, 0x20, 0xb8, 0x06, 0x00, 0x0f, 0x01, 0xc1, 0x66, 0xa3, 0x04, 0x20, 0xf4]);
  m.vcpu.setRegs({ rbx: 40, rcx: 2 });
  m.onHypercall(5, (args) => args[0] + args[1]);
  assertEquals(m.run().exit.reason, "hlt");
  const dv = new DataView(m.vm.readGuest(0x2000, 8).buffer);
  assertEquals(dv.getInt32(0, true), 42);
  assertEquals(dv.getInt32(4, true), -1000);
});

test("Machine.onMmio() serves reads and writes outside RAM", () => {
  // protected mode: mov eax,[0xfee00000]; mov [0xfee00010],eax; add eax,1; hlt
  const m = new Machine({ mode: "protected" });
  m.load(new Uint8Array([0xa1, 0x00, 0x00, 0xe0, 0xfe, 0xa3, 0x10, 0x00, 0xe0, 0xfe, 0x83, 0xc0, 0x01, 0xf4]));
  const writes: [number, number, number][] = [];
  m.onMmio({ base: 0xfee00000, size: 0x1000, name: "apic", read: () => 0x11223344, write: (a, s, v) => void writes.push([a, s, v]) });
  const r = m.run();
  assertEquals(r.exit.reason, "hlt");
  assertEquals(m.vcpu.getRegs().rax, 0x11223345);
  assertEquals(writes, [[0xfee00010, 4, 0x11223344]]);
  assertEquals(r.userspaceExits.mmio, 2);
});

test("Machine: an MMIO access nobody claims ends the run with reason mmio", () => {
  const m = new Machine({ mode: "protected", memSize: 2 << 20 });
  m.load(new Uint8Array([0xa1, 0x00, 0x00, 0x00, 0x40, 0xf4])); // mov eax,[0x40000000]
  const r = m.run();
  assert(r.exit.reason === "mmio");
  if (r.exit.reason === "mmio") assertEquals([r.exit.physAddr, r.exit.len, r.exit.isWrite], [0x40000000, 4, false]);
});

test("Machine.onVmxExit() hooks handle an exit at vmxHandleExit or defer to KVM", () => {
  // cpuid; hlt
  const m = rm([0x66, 0x31, 0xc0, 0x0f, 0xa2, 0xf4]);
  let calls = 0;
  m.onVmxExit(ExitReason.CPUID, (vcpu) => {
    calls++;
    vcpu.setRegs({ rax: 0xabc, rip: vcpu.getRegs().rip + vcpu.vmcs.exitInstructionLen });
    vcpu.cpu.retire(1);
    return "resume";
  });
  m.run();
  assertEquals(calls, 1);
  assertEquals(m.vcpu.getRegs().rax, 0xabc);
  const m2 = rm([0x66, 0x31, 0xc0, 0x0f, 0xa2, 0xf4]);
  m2.onVmxExit(ExitReason.CPUID, () => "default");
  m2.run();
  assertEquals(m2.vcpu.getRegs().rbx, 0x756e6547); // "Genu" from KVM's CPUID table
});

test("Machine: the UART echoes what a script feeds it", () => {
  // wait for LSR.DR, read RBR, write it to THR, hlt
  const m = rm([0xba, 0xfd, 0x03, 0xec, 0xa8, 0x01, 0x74, 0xfb, 0xba, 0xf8, 0x03, 0xec, 0xee, 0xf4]);
  m.feedSerial("Z");
  assertEquals(m.run({ budget: 10000 }).exit.reason, "hlt");
  assertEquals(m.console, "Z");
});

test("Machine: a timeout ends a spinning guest", () => {
  const m = rm([0xeb, 0xfe]);
  const r = m.run({ timeoutMs: 50 });
  assertEquals(r.exit.reason, "timeout");
  assert(r.instructions > 1000);
});

test("Machine loads a ROM that ends at 1 MiB and at 4 GiB and starts from the reset vector", () => {
  const rom = new Uint8Array(0x1000).fill(0x90);
  // at 0xFFFF0 (offset 0xFF0): mov al,'R'; out 0xe9,al; hlt
  rom.set([0xb0, 0x52, 0xe6, 0xe9, 0xf4], 0xff0);
  const m = new Machine({ mode: "real" });
  m.load(rom, { format: "rom" });
  assertEquals(m.vcpu.getRegs().rip, 0xfff0);
  assertEquals(m.run().exit.reason, "hlt");
  assertEquals(m.console, "R");
  assertEquals(m.vm.readGuest(0xffff0, 1)[0], 0xb0);
  assertEquals(m.vm.readGuest(0xfffffff0, 1)[0], 0xb0);
});

test("Machine: stop() in an exit hook that does not resume ends the run", () => {
  const m = rm([0xf4, 0xf4]);
  m.onExit("hlt", (_e, ctx) => ctx.stop("halted once"));
  assertEquals(m.run().exit, { reason: "stopped", detail: "halted once" });
});

test("Machine: a timeout ends a guest that exits to the in-kernel bus all the time", () => {
  // l: out 0xe9,al; jmp l   (every OUT is a VM exit handled in the kernel)
  const m = rm([0xe6, 0xe9, 0xeb, 0xfc]);
  const t = performance.now();
  const r = m.run({ timeoutMs: 100 });
  assertEquals(r.exit.reason, "timeout");
  assert(performance.now() - t < 5000, "the deadline is checked across KVM_RUN entries");
});

test("Machine.takeConsole() returns the bytes so far and empties the buffer", () => {
  const m = rm(OUT_E9_HLT);
  m.run();
  assertEquals([...m.takeConsole()], [0x41]);
  assertEquals(m.console, "");
});
