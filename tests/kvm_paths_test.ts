/**
 * The seed's call paths (shared/seed/000_ba14005cbf5d9a71.txt), each checked as the traced order of
 * its stages: module init, KVM_CREATE_VCPU, KVM_RUN, and an IO exit handled in the kernel or in
 * userspace. Guests are a few hand-assembled real-mode instructions, loaded at 0x1000.
 */
import { test } from "node:test";
import { assert, assertEquals } from "./assert.ts";
import {
  defaultVmxCapabilities, Kvm, vmxModuleState, KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT, KvmExit, type TraceEvent, type Tracer,
} from "../runtime/mod.ts";
import { DebugCon } from "../runtime/devices/mod.ts";
import { ascii, CODE, realModeGuest } from "../runtime/kvm/_testing.ts";

/** The stages traced since the last call, then forget them. */
function drain(t: Tracer | null): string[] {
  assert(t !== null, "the VM was created with { trace: true }");
  const s = t.stages();
  t.clear();
  return s;
}
function eventsNamed(t: Tracer, stage: string): TraceEvent[] {
  return t.events.filter((e) => e.stage === stage);
}

const RUN_ENTRY = ["kvmVcpuIoctl", "kvmArchVcpuIoctlRun", "__vcpuRun"];
const ENTER_AND_EXIT = ["vcpuEnterGuest", "vmxVcpuRun", "vmxHandleExit"];

test("module init runs vmxInit → kvmInit → kvmArchInit → kvmTimerInit → hardware setup → allocVmcsCpu", async () => {
  const kvm = await Kvm.open({ hardware: defaultVmxCapabilities() });
  assertEquals(kvm.moduleInitTrace.stages(), [
    "vmxInit", "kvmInit", "kvmArchInit", "kvmTimerInit", "kvmArchHardwareSetup", "hardwareSetup",
    "setupVmcsConfig", "allocKvmArea", "allocVmcsCpu",
  ]);
  assertEquals(kvm.moduleInitTrace.events.find((e) => e.stage === "kvmInit")?.args, { vendor: "kvm_intel" });
});

test("module init allocates one VMCS region per emulated processor", async () => {
  const kvm = await Kvm.open({ hardware: { ...defaultVmxCapabilities(), cpus: 3 } });
  const allocs = eventsNamed(kvm.moduleInitTrace, "allocVmcsCpu");
  assertEquals(allocs.map((e) => e.args), [{ cpu: 0 }, { cpu: 1 }, { cpu: 2 }]);
  assertEquals(vmxModuleState(kvm.module).vmxArea.length, 3);
  assert(vmxModuleState(kvm.module).vmxArea.every((v) => v.revisionId === defaultVmxCapabilities().basic.revisionId));
});

test("each Kvm.open with its own hardware loads a fresh module; the default one is shared", async () => {
  const a = await Kvm.open({ hardware: defaultVmxCapabilities() });
  const b = await Kvm.open({ hardware: defaultVmxCapabilities() });
  assert(a.module !== b.module);
  assertEquals(b.moduleInitTrace.stages()[0], "vmxInit");
  assert((await Kvm.open()).module === (await Kvm.open()).module);
});

test("KVM_CREATE_VCPU runs kvmVmIoctl → kvmArchVcpuCreate → vmxCreateVcpu → allocVmcs, then vmxVcpuSetup → vmcsWritel → guestWriteTsc", async () => {
  const kvm = await Kvm.open({ hardware: defaultVmxCapabilities() });
  const vm = kvm.createVm({ trace: true });
  const vcpu = vm.createVcpu(0);
  const stages = drain(vm.tracer);
  // vmx_vcpu_setup writes several natural-width fields; what matters is their place in the path.
  const squashed = stages.filter((s, k) => s !== stages[k - 1]);
  assertEquals(squashed, [
    "kvmVmIoctl", "kvmVmIoctlCreateVcpu", "kvmArchVcpuCreate", "vmxCreateVcpu", "allocVmcs", "allocVmcsCpu",
    "vmxVcpuSetup", "vmcsWritel", "guestWriteTsc",
  ]);
  assertEquals(vm.tracer!.events.length, 0);
  assertEquals(vcpu.vmcs.revisionId, defaultVmxCapabilities().basic.revisionId);
});

test("KVM_RUN runs kvmVcpuIoctl → kvmArchVcpuIoctlRun → __vcpuRun → vcpuEnterGuest → vmxVcpuRun → vmxHandleExit", () => {
  // hlt
  const { vm, vcpu } = realModeGuest([0xf4], { trace: true });
  drain(vm.tracer);
  const run = vcpu.run();
  assertEquals(run.exitReason, KvmExit.HLT);
  assertEquals(drain(vm.tracer), [...RUN_ENTRY, ...ENTER_AND_EXIT, "kvmEmulateHalt"]);
});

test("an OUT to a port of an in-kernel device goes handleIo → kvmEmulatePio → kernelPio → completeIo → vcpuEnterGuest, never to userspace", () => {
  // mov al,'A'; out 0xe9,al; mov al,'B'; out 0xe9,al; hlt
  const { vm, vcpu } = realModeGuest([0xb0, 0x41, 0xe6, 0xe9, 0xb0, 0x42, 0xe6, 0xe9, 0xf4], { trace: true });
  let printed = "";
  vm.attachKernelDevice(new DebugCon((b) => (printed += String.fromCharCode(b))));
  drain(vm.tracer);
  const run = vcpu.run(); // one KVM_RUN: both OUTs complete inside it
  assertEquals(run.exitReason, KvmExit.HLT);
  assertEquals(printed, "AB");
  const inKernelOut = ["handleIo", "kvmEmulatePio", "kernelPio", "completeIo"];
  assertEquals(drain(vm.tracer), [
    ...RUN_ENTRY,
    ...ENTER_AND_EXIT, ...inKernelOut,
    ...ENTER_AND_EXIT, ...inKernelOut,
    ...ENTER_AND_EXIT, "kvmEmulateHalt",
  ]);
  assertEquals(vcpu.instructions, 5);
});

test("the in-kernel IO path records the port and device it took", () => {
  // mov al,'A'; out 0xe9,al; hlt
  const { vm, vcpu } = realModeGuest([0xb0, 0x41, 0xe6, 0xe9, 0xf4], { trace: true });
  vm.attachKernelDevice(new DebugCon(() => {}));
  vcpu.run();
  const t = vm.tracer!;
  assertEquals(eventsNamed(t, "handleIo")[0].args, { port: 0xe9, size: 1, direction: "out", string: false });
  assertEquals(eventsNamed(t, "kernelPio")[0].args, { port: 0xe9, device: "debugcon" });
  assertEquals(eventsNamed(t, "vmxHandleExit")[0].args?.reason, "IO_INSTRUCTION");
});

test("an IN from an in-kernel device lands in AL within the same KVM_RUN", () => {
  // mov dx,0xe9; in al,dx; hlt
  const { vm, vcpu } = realModeGuest([0xba, 0xe9, 0x00, 0xec, 0xf4], { trace: true, regs: { rax: 0x1234 } });
  vm.attachKernelDevice(new DebugCon(() => {}, { readback: 0x5a }));
  drain(vm.tracer);
  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax, 0x125a);
  assert(drain(vm.tracer).join(" ").includes("handleIo kvmEmulatePio kernelPio completeIo vcpuEnterGuest"));
});

test("an OUT no in-kernel device claims returns to userspace with kvm_run.io filled, and completes on the next KVM_RUN", () => {
  // mov al,0x42; out 0x80,al; hlt
  const { vm, vcpu } = realModeGuest([0xb0, 0x42, 0xe6, 0x80, 0xf4], { trace: true });
  drain(vm.tracer);
  const run = vcpu.run();
  assertEquals(drain(vm.tracer), [...RUN_ENTRY, ...ENTER_AND_EXIT, "handleIo", "kvmEmulatePio"]);
  assertEquals(run.exitReason, KvmExit.IO);
  assertEquals({ ...run.io }, { direction: KVM_EXIT_IO_OUT, size: 1, port: 0x80, count: 1, dataOffset: 0 });
  assertEquals(run.data[run.io.dataOffset], 0x42);
  assertEquals(vcpu.getRegs().rip, CODE + 2, "RIP stays at the OUT until userspace completes it");

  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(drain(vm.tracer), [
    "kvmVcpuIoctl", "kvmArchVcpuIoctlRun", "completeIo", "__vcpuRun", ...ENTER_AND_EXIT, "kvmEmulateHalt",
  ]);
});

test("an IN no in-kernel device claims goes to userspace, and the value it leaves in kvm_run.data lands in AL", () => {
  // in al,0x60; mov dx,0x61; in ax,dx; hlt
  const { vm, vcpu } = realModeGuest([0xe4, 0x60, 0xba, 0x61, 0x00, 0xed, 0xf4], { trace: true, regs: { rax: 0xaabbccdd } });
  drain(vm.tracer);
  let run = vcpu.run();
  assertEquals(run.exitReason, KvmExit.IO);
  assertEquals({ ...run.io }, { direction: KVM_EXIT_IO_IN, size: 1, port: 0x60, count: 1, dataOffset: 0 });
  assertEquals(drain(vm.tracer), [...RUN_ENTRY, ...ENTER_AND_EXIT, "handleIo", "kvmEmulatePio"]);
  run.data[run.io.dataOffset] = 0x5a;

  run = vcpu.run();
  assertEquals(vcpu.getRegs().rax, 0xaabbcc5a, "the byte from userspace is in AL, the rest of EAX untouched");
  assertEquals(drain(vm.tracer), [
    "kvmVcpuIoctl", "kvmArchVcpuIoctlRun", "completeIo", "__vcpuRun", ...ENTER_AND_EXIT, "handleIo", "kvmEmulatePio",
  ]);
  assertEquals(run.exitReason, KvmExit.IO);
  assertEquals({ ...run.io }, { direction: KVM_EXIT_IO_IN, size: 2, port: 0x61, count: 1, dataOffset: 0 });
  run.data.set([0x34, 0x12], run.io.dataOffset);

  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax, 0xaabb1234);
});

test("an IN that userspace leaves untouched reads as an open bus (all ones)", () => {
  // in al,0x60; hlt
  const { vcpu } = realModeGuest([0xe4, 0x60, 0xf4], { regs: { rax: 0 } });
  assertEquals(vcpu.run().exitReason, KvmExit.IO);
  vcpu.run();
  assertEquals(vcpu.getRegs().rax, 0xff);
});

test("the classic KVM hello prints 4 and a newline, then halts with RIP past the HLT", async () => {
  const kvm = await Kvm.open();
  const vm = kvm.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x1000, memorySize: 0x1000 });
  // mov dx,0x3f8; add al,bl; add al,'0'; out dx,al; mov al,'\n'; out dx,al; hlt
  vm.writeGuest(0x1000, new Uint8Array([0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4]));
  const vcpu = vm.createVcpu(0);
  const sregs = vcpu.getSregs();
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  vcpu.setSregs(sregs);
  vcpu.setRegs({ rip: 0x1000, rax: 2, rbx: 2, rflags: 0x2 });
  let out = "";
  const exits: number[] = [];
  for (;;) {
    const run = vcpu.run();
    exits.push(run.exitReason);
    if (run.exitReason === KvmExit.IO) {
      assertEquals([run.io.direction, run.io.size, run.io.port, run.io.count], [KVM_EXIT_IO_OUT, 1, 0x3f8, 1]);
      out += String.fromCharCode(run.data[run.io.dataOffset]);
    } else if (run.exitReason === KvmExit.HLT) break;
    else throw new Error(`unexpected exit ${run.exitReason}`);
  }
  assertEquals(out, "4\n");
  assertEquals(exits, [KvmExit.IO, KvmExit.IO, KvmExit.HLT]);
  assertEquals(vcpu.getRegs().rip, 0x100c);
  assertEquals(vcpu.instructions, 7);
});

test("a REP OUTSB to an in-kernel device is emulated without leaving KVM_RUN", () => {
  // rep outsb; hlt   (DS:SI = 0:0x2000, CX = 5, DX = 0xe9)
  const { vm, vcpu } = realModeGuest([0xf3, 0x6e, 0xf4], { trace: true, regs: { rcx: 5, rsi: 0x2000, rdx: 0xe9 } });
  vm.writeGuest(0x2000, ascii("hello"));
  let printed = "";
  vm.attachKernelDevice(new DebugCon((b) => (printed += String.fromCharCode(b))));
  drain(vm.tracer);
  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(printed, "hello");
  const stages = drain(vm.tracer);
  assertEquals(stages.filter((s) => s === "kernelPio").length, 1, "one exit carries all five bytes");
  assertEquals(stages.filter((s) => s === "kvmVcpuIoctl").length, 1);
  assertEquals(vcpu.instructions, 6, "each REP iteration retires as one instruction");
});
