/**
 * The OUT exit path after its speed work (issue 4): the hot VMCS fields kept outside the field map,
 * the dense exit counts, the paged PIO counts and the 32-bit preemption timer under long budgets
 * behave as the generic versions did.
 */
import { test } from "node:test";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { CpuBased, PinBased, Vmcs, VmcsError, VmcsField } from "../cpu/vmcs.ts";
import { KvmExit } from "./kvm_run.ts";
import { ExitCounts } from "./vcpu.ts";
import { CODE, protectedModeGuest, realModeGuest } from "./_testing.ts";

test("hot VMCS fields read back what VMWRITE stored, with the field's width, and count as stored fields", () => {
  const v = new Vmcs();
  const hot = [
    VmcsField.PIN_BASED_VM_EXEC_CONTROL, VmcsField.CPU_BASED_VM_EXEC_CONTROL, VmcsField.EXCEPTION_BITMAP,
    VmcsField.VM_EXIT_CONTROLS, VmcsField.VM_ENTRY_INTR_INFO_FIELD, VmcsField.VMX_PREEMPTION_TIMER_VALUE,
  ];
  for (const f of hot) assertEquals(v.read(f), 0, "unwritten fields read as zero");
  assertEquals(v.storedFields().size, 0);
  for (const f of hot) v.write(f, -1);
  for (const f of hot) assertEquals(v.read(f), 0xffffffff, "32-bit fields keep 32 bits");
  v.write(VmcsField.TSC_OFFSET, -(2 ** 40));
  assertEquals(v.read(VmcsField.TSC_OFFSET), -(2 ** 40), "TSC_OFFSET is 64 bits wide");
  assertEquals([...v.storedFields().keys()], [...hot, VmcsField.TSC_OFFSET].sort((a, b) => a - b));
  assertEquals(v.pinBasedCtl, 0xffffffff, "the property is the field");
});

test("VMWRITEs of hot control fields bump the version the processor caches controls by; the preemption timer does not", () => {
  const v = new Vmcs();
  const v0 = v.version;
  v.write(VmcsField.CPU_BASED_VM_EXEC_CONTROL, CpuBased.HLT_EXITING);
  v.write(VmcsField.PIN_BASED_VM_EXEC_CONTROL, PinBased.PREEMPTION_TIMER);
  assertEquals(v.version, v0 + 2);
  v.write(VmcsField.VMX_PREEMPTION_TIMER_VALUE, 100);
  assertEquals(v.version, v0 + 2);
  v.write(VmcsField.CR3_TARGET_COUNT, 0);
  assertEquals(v.version, v0 + 3, "other control fields still do");
});

test("exit-information fields stay read-only and unknown fields unsupported", () => {
  const v = new Vmcs();
  assertThrows(() => v.write(VmcsField.EXIT_REASON, 1), VmcsError);
  assertThrows(() => v.write(0x7777, 1), VmcsError);
  assertThrows(() => v.read(0x7777), VmcsError);
});

test("ExitCounts reads like the Map it replaced: get, has, size, entries in reason order", () => {
  const c = new ExitCounts();
  assertEquals(c.get(KvmExit.IO), undefined);
  assertEquals(c.size, 0);
  c.add(KvmExit.HLT);
  c.add(KvmExit.BUDGET);
  c.add(KvmExit.IO);
  c.add(KvmExit.IO);
  assertEquals(c.get(KvmExit.IO), 2);
  assertEquals(c.get(KvmExit.BUDGET), 1);
  assert(c.has(KvmExit.HLT) && !c.has(KvmExit.MMIO));
  assertEquals(c.size, 3);
  assertEquals([...c], [[KvmExit.IO, 2], [KvmExit.HLT, 1], [KvmExit.BUDGET, 1]]);
  assertEquals(new Map(c).get(KvmExit.HLT), 1);
});

test("KVM_RUN counts each return by exit reason", () => {
  // mov al,1; out 0x80,al; out 0x80,al; hlt
  const { vcpu } = realModeGuest([0xb0, 0x01, 0xe6, 0x80, 0xe6, 0x80, 0xf4]);
  while (vcpu.run().exitReason !== KvmExit.HLT) { /* OUTs to userspace */ }
  assertEquals([...vcpu.userExitCounts], [[KvmExit.IO, 2], [KvmExit.HLT, 1]]);
});

test("PIO counts by port and direction, in ascending port order, sparse pages and the dense copy agree", () => {
  // mov dx,0x3f8; out dx,al; in al,dx; mov dx,0x80; out dx,al; mov dx,0xff00; out dx,al; out dx,al; hlt
  const { vm, vcpu } = realModeGuest([
    0xba, 0xf8, 0x03, 0xee, 0xec, 0xba, 0x80, 0x00, 0xee, 0xba, 0x00, 0xff, 0xee, 0xee, 0xf4,
  ]);
  while (vcpu.run().exitReason !== KvmExit.HLT) { /* userspace leaves the IO alone */ }
  assertEquals(vm.pioCountEntries(), [[0x80, 0, 1], [0x3f8, 1, 1], [0xff00, 0, 2]]);
  const dense = vm.pioCounts;
  assertEquals([dense[0x3f8 * 2], dense[0x3f8 * 2 + 1], dense[0xff00 * 2 + 1], dense[0x81 * 2 + 1]], [1, 1, 2, 0]);
  vm.resetPioCounts();
  assertEquals(vm.pioCountEntries(), []);
});

test("a budget beyond the 32-bit preemption timer is not cut short: the timer runs in rounds", () => {
  // inc eax; inc eax; inc eax; inc eax; hlt
  const { vcpu } = protectedModeGuest([0x40, 0x40, 0x40, 0x40, 0xf4]);
  vcpu.setBudget(2 ** 32 + 2);
  assertEquals(vcpu.run().exitReason, KvmExit.HLT, "2^32 + 2 instructions is more than this guest runs");
  assertEquals(vcpu.instructions, 5);
  assertEquals(vcpu.getRegs().rip, CODE + 5);
  vcpu.setRegs({ rip: CODE });
  vcpu.setBudget(2);
  assertEquals(vcpu.run().exitReason, KvmExit.BUDGET);
  assertEquals(vcpu.instructions, 7);
});

test("after an exit the guest resumes at what is at RIP now: code rewritten by userspace, a new RIP, a new CS base", () => {
  // L: out 0x80,al; dec cx; jnz L; hlt      (the OUT's block links to the block after it once it has resumed there)
  const loop = [0xe6, 0x80, 0x49, 0x75, 0xfb, 0xf4];
  const { vm, vcpu } = realModeGuest(loop, { regs: { rcx: 10 } });
  for (let k = 0; k < 3; k++) assertEquals(vcpu.run().exitReason, KvmExit.IO);
  vm.writeGuest(CODE + 2, new Uint8Array([0xf4])); // dec cx → hlt
  assertEquals(vcpu.run().exitReason, KvmExit.HLT, "the rewritten instruction runs, not the decoded one");
  assertEquals(vcpu.getRegs().rip, CODE + 3);
  assertEquals(vcpu.getRegs().rcx, 8);

  // A new RIP set by userspace between exits.
  const b = realModeGuest(loop, { regs: { rcx: 10 } });
  b.vm.writeGuest(0x3000, new Uint8Array([0x43, 0xf4])); // inc bx; hlt
  for (let k = 0; k < 3; k++) assertEquals(b.vcpu.run().exitReason, KvmExit.IO);
  b.vcpu.run(); // completes the OUT, resumes the loop: the fourth OUT
  b.vcpu.setRegs({ rip: 0x3000 });
  // The OUT completes (RIP += 2 from 0x3000), so the guest resumes at 0x3002: put the code there.
  b.vm.writeGuest(0x3002, new Uint8Array([0x43, 0xf4]));
  assertEquals(b.vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(b.vcpu.getRegs().rip, 0x3004);
  assertEquals(b.vcpu.getRegs().rbx, 1);

  // A new CS base written through the VMCS between exits: the same IP is other code.
  const c = realModeGuest(loop, { regs: { rcx: 10 } });
  c.vm.writeGuest(0x2000 + CODE + 2, new Uint8Array([0x43, 0xf4])); // at CS base 0x2000: inc bx; hlt
  for (let k = 0; k < 3; k++) assertEquals(c.vcpu.run().exitReason, KvmExit.IO);
  c.vcpu.vmcsWrite(VmcsField.GUEST_CS_BASE, 0x2000);
  assertEquals(c.vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(c.vcpu.getRegs().rbx, 1);
  assertEquals(c.vcpu.getRegs().rcx, 8);
});
