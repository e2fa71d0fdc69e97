/**
 * Tracing: off by default, and then it costs nothing observable — no tracer, no trace calls, and
 * the same exits, registers and instruction counts as a traced run.
 */
import { test } from "node:test";
import { assert, assertEquals } from "../../tests/assert.ts";
import { Kvm, KvmExit, type TraceEvent, Tracer } from "../mod.ts";
import { DebugCon } from "../devices/mod.ts";
import { realModeGuest } from "./_testing.ts";

const HLT = 0xf4;
// mov al,'A'; out 0xe9,al; out 0x80,al; cpuid; rdtsc; hlt — an in-kernel OUT, a userspace OUT, and
// exits KVM answers itself.
const PROGRAM = [0xb0, 0x41, 0xe6, 0xe9, 0xe6, 0x80, 0x0f, 0xa2, 0x0f, 0x31, HLT];

function runProgram(trace: boolean) {
  const { vm, vcpu } = realModeGuest(PROGRAM, { trace });
  vm.attachKernelDevice(new DebugCon(() => {}));
  const exits: number[] = [];
  for (;;) {
    const run = vcpu.run();
    exits.push(run.exitReason);
    if (run.exitReason !== KvmExit.IO) break;
  }
  return { vm, vcpu, exits, regs: vcpu.getRegs(), instructions: vcpu.instructions, vmxExits: [...vcpu.vmxExitCounts] };
}

test("a VM has no tracer unless it asks for one", async () => {
  const kvm = await Kvm.open();
  assertEquals(kvm.createVm().tracer, null);
  assertEquals(kvm.createVm({ trace: false }).tracer, null);
  assert(kvm.createVm({ trace: true }).tracer instanceof Tracer);
});

test("with tracing off, running a guest calls no trace point at all", () => {
  const { vm, vcpu } = realModeGuest(PROGRAM);
  vm.attachKernelDevice(new DebugCon(() => {}));
  const original = Tracer.prototype.record;
  let calls = 0;
  Tracer.prototype.record = function (this: Tracer, stage: string, args?: Record<string, unknown>) {
    calls++;
    original.call(this, stage, args);
  };
  try {
    while (vcpu.run().exitReason === KvmExit.IO) { /* complete the OUT to 0x80 */ }
    realModeGuest([HLT]).vcpu.run(); // creating a VM and a vCPU is not traced either
  } finally {
    Tracer.prototype.record = original;
  }
  assertEquals(vm.tracer, null);
  assertEquals(calls, 0);
});

test("tracing changes nothing the guest or the VMM can see", () => {
  const off = runProgram(false);
  const on = runProgram(true);
  assertEquals(off.vm.tracer, null);
  assert(on.vm.tracer!.events.length > 0);
  assertEquals(off.exits, [KvmExit.IO, KvmExit.HLT]);
  assertEquals(on.exits, off.exits);
  assertEquals(on.regs, off.regs);
  assertEquals(on.instructions, off.instructions);
  assertEquals(on.vmxExits, off.vmxExits);
});

test("setTrace turns tracing on and off on a running VM", () => {
  const { vm, vcpu } = realModeGuest([0xe6, 0x80, 0xe6, 0x80, HLT]);
  assertEquals(vm.tracer, null);
  const t = vm.setTrace(true)!;
  assertEquals(vcpu.run().exitReason, KvmExit.IO);
  const seen = t.events.length;
  assert(seen > 0);
  assertEquals(vm.setTrace(false), null);
  assertEquals(vm.tracer, null);
  assertEquals(vcpu.run().exitReason, KvmExit.IO);
  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(t.events.length, seen, "the old tracer hears nothing more");
});

test("a trace sink receives each event as it happens without the tracer keeping them", () => {
  const got: TraceEvent[] = [];
  const { vm, vcpu } = realModeGuest([HLT], { trace: false });
  vm.setTrace((e) => got.push(e));
  vcpu.run();
  assertEquals(got.map((e) => e.stage), [
    "kvmVcpuIoctl", "kvmArchVcpuIoctlRun", "__vcpuRun", "vcpuEnterGuest", "vmxVcpuRun", "vmxHandleExit", "kvmEmulateHalt",
  ]);
  assertEquals(vm.tracer!.events, []);
});

test("trace events carry their arguments: the exit reason and qualification at vmxHandleExit", () => {
  // out 0x80,al
  const { vm, vcpu } = realModeGuest([0xe6, 0x80, HLT], { trace: true });
  vcpu.run();
  const e = vm.tracer!.events.find((x) => x.stage === "vmxHandleExit")!;
  assertEquals(e.args, { reason: "IO_INSTRUCTION", qualification: (0x80 << 16) | 0x40 });
  assertEquals(vm.tracer!.events.find((x) => x.stage === "kvmEmulatePio")!.args, { port: 0x80, size: 1, direction: "out" });
});
