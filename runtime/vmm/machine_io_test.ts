/**
 * The OUT/IN path to a script's IO hook (issue 4's fast path): what a hook sees and returns, the
 * counts, a throwing hook, and the traced stages around a hook.
 */
import { test } from "node:test";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { type IoAccess, Machine, MachineError } from "./machine.ts";

/** A 32-bit protected-mode machine running `code` at 0x100000 (raw image, flat segments). */
function pm(code: number[], opts: ConstructorParameters<typeof Machine>[0] = {}): Machine {
  const m = new Machine({ mode: "protected", ...opts });
  m.load(new Uint8Array(code), { format: "raw" });
  return m;
}

test("a hook sees the port, size and value of OUTs of each size (32-bit values unsigned)", () => {
  // mov edx,0x1f0; mov eax,0xdeadbeef; out dx,eax; out dx,ax; out dx,al; out 0x80,al; hlt
  const m = pm([0xba, 0xf0, 0x01, 0, 0, 0xb8, 0xef, 0xbe, 0xad, 0xde, 0xef, 0x66, 0xef, 0xee, 0xe6, 0x80, 0xf4], { devices: { post: false } });
  const seen: IoAccess[] = [];
  m.onIo({ port: 0x1f0, direction: "out", handler: (io) => void seen.push({ ...io }) });
  m.onIo({ port: 0x80, direction: "out", handler: (io) => void seen.push({ ...io }) });
  const r = m.run();
  assertEquals(r.exit.reason, "hlt");
  assertEquals(seen, [
    { port: 0x1f0, size: 4, direction: "out", value: 0xdeadbeef },
    { port: 0x1f0, size: 2, direction: "out", value: 0xbeef },
    { port: 0x1f0, size: 1, direction: "out", value: 0xef },
    { port: 0x80, size: 1, direction: "out", value: 0xef },
  ]);
  assertEquals(r.userspaceExits, { io: 4, hlt: 1 });
  assertEquals(r.exits.io_instruction, 4);
  assertEquals(r.instructions, 7);
  assertEquals(m.portCounts()["0x1f0"], { out: 3 });
});

test("an IN hook's value is delivered at each size, and undefined reads as all ones", () => {
  // mov edx,0x1f0; in eax,dx; mov ebx,eax; in ax,dx; mov ecx,eax; in al,dx; mov esi,eax; in al,0x71; hlt
  const m = pm([0xba, 0xf0, 0x01, 0, 0, 0xed, 0x89, 0xc3, 0x66, 0xed, 0x89, 0xc1, 0xec, 0x89, 0xc6, 0xe4, 0x71, 0xf4]);
  const values = [0x89abcdef, 0x1234, 0x56];
  const sizes: number[] = [];
  m.onIo({ port: 0x1f0, direction: "in", handler: (io) => { sizes.push(io.size); return values.shift(); } });
  m.onIo({ port: 0x71, direction: "in", handler: () => undefined });
  m.vcpu.setRegs({ rax: 0 });
  assertEquals(m.run().exit.reason, "hlt");
  const regs = m.vcpu.getRegs();
  assertEquals(sizes, [4, 2, 1]);
  assertEquals(regs.rbx, 0x89abcdef);
  assertEquals(regs.rcx, 0x89ab1234, "a 16-bit IN replaces AX only");
  assertEquals(regs.rsi, 0x89ab1256, "an 8-bit IN replaces AL only");
  assertEquals(regs.rax, 0x89ab12ff, "undefined from the hook reads as all ones");
});

test("a size the hook does not take is an open bus: IN reads all ones, OUT is dropped, both counted", () => {
  // mov dx,0x300; in ax,dx; out dx,ax; in al,dx; hlt
  const m = pm([0x66, 0xba, 0x00, 0x03, 0x66, 0xed, 0x66, 0xef, 0xec, 0xf4]);
  const calls: string[] = [];
  m.onIo({ port: 0x300, sizes: [1], handler: (io) => { calls.push(`${io.direction}${io.size}`); return 0x11; } });
  m.vcpu.setRegs({ rax: 0 });
  assertEquals(m.run().exit.reason, "hlt");
  assertEquals(calls, ["in1"]);
  assertEquals(m.vcpu.getRegs().rax & 0xffff, 0xff11);
  assertEquals(m.portCounts()["0x300"], { in: 2, out: 1 });
});

test("a throwing IN hook ends the run with a MachineError naming the hook and the port; the next run completes the IN", () => {
  // in al,0x64; hlt
  const m = pm([0xe4, 0x64, 0xf4]);
  let fail = true;
  m.onIo({ port: 0x64, direction: "in", name: "kbd status", handler: () => { if (fail) throw new Error("not ready"); return 0x1c; } });
  const e = assertThrows(() => m.run(), MachineError, 'Hook "kbd status" threw on KVM_EXIT_IO in port 0x64: not ready') as MachineError;
  assertEquals(e.kind, "hook");
  assert(e.cause instanceof Error && e.cause.message === "not ready");
  assertEquals(m.vcpu.getRegs().rip, 0x100000, "the IN has not completed");
  // KVM completes the exit on the next KVM_RUN with what kvm_run.data holds (all ones: the hook never answered).
  fail = false;
  assertEquals(m.run().exit.reason, "hlt");
  assertEquals(m.vcpu.getRegs().rax & 0xff, 0xff);
});

test("removing a hook sends the port back to the open bus", () => {
  // out 0x90,al; out 0x90,al; hlt
  const m = pm([0xe6, 0x90, 0xe6, 0x90, 0xf4]);
  let n = 0;
  const off = m.onIo({ port: 0x90, handler: () => { n++; off(); } });
  assertEquals(m.run().exit.reason, "hlt");
  assertEquals(n, 1);
  assertEquals(m.portCounts()["0x90"], { out: 2 });
});

test("with tracing on, an OUT to a hook still shows every kernel stage, and the hook runs between KVM_RUNs", () => {
  // mov al,5; out 0x80,al; hlt
  const m = pm([0xb0, 0x05, 0xe6, 0x80, 0xf4], { trace: true, devices: { post: false } });
  const t = m.vm.tracer!;
  t.clear();
  let atHook: string[] = [];
  m.onIo({ port: 0x80, direction: "out", handler: () => { atHook = t.stages(); } });
  assertEquals(m.run().exit.reason, "hlt");
  const enter = ["vcpuEnterGuest", "vmxVcpuRun", "vmxHandleExit"];
  assertEquals(atHook, ["kvmVcpuIoctl", "kvmArchVcpuIoctlRun", "__vcpuRun", ...enter, "handleIo", "kvmEmulatePio"]);
  assertEquals(t.stages().slice(atHook.length), ["kvmVcpuIoctl", "kvmArchVcpuIoctlRun", "completeIo", "__vcpuRun", ...enter, "kvmEmulateHalt"]);
  assertEquals(t.events.find((e) => e.stage === "kvmEmulatePio")?.args, { port: 0x80, size: 1, direction: "out" });
});

test("an exit hook on KVM_EXIT_IO still sees IO exits first and can take them over", () => {
  // out 0x80,al; out 0x80,al; hlt
  const m = pm([0xe6, 0x80, 0xe6, 0x80, 0xf4], { devices: { post: false } });
  let hook = 0, exitHook = 0;
  m.onIo({ port: 0x80, handler: () => { hook++; } });
  m.onExit("io", () => { exitHook++; return exitHook === 1 ? "resume" : undefined; });
  assertEquals(m.run().exit.reason, "hlt");
  assertEquals([exitHook, hook], [2, 1], "the first IO exit was resumed by the exit hook, the second went on to the IO hook");
});
