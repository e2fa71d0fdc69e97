/**
 * The VMX vendor module: VMCS configuration from the capability MSRs, the VMCS as KVM reads it
 * after an exit, and every exit handler, each driven by a guest of a few hand-assembled
 * instructions (real mode at 0000:1000 unless a test says otherwise) and a host loop asserting
 * each exit, as KVM's selftests do.
 */
import { test } from "node:test";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { CpuBased, CpuBased2, EntryCtl, ExitCtl, IntrInfo, PinBased, VmcsError } from "../cpu/vmcs.ts";
import {
  defaultVmxCapabilities, vmxModuleState, ExitReason, Kvm, KvmError, KvmExit, type Vcpu, VmcsField, kvmVmxExitHandlers,
  type VmxCapabilities, KVM_EXIT_IO_OUT,
} from "../mod.ts";
import { KVM_ENOSYS, KvmInternalError } from "../kvm/kvm_run.ts";
import { DebugCon } from "../devices/mod.ts";
import { CODE, protectedModeGuest, realModeGuest } from "../kvm/_testing.ts";

const HLT = 0xf4;
/** The run must stop with `reason`; returns kvm_run for further checks. */
function runExpect(vcpu: Vcpu, reason: number, what = "") {
  const run = vcpu.run();
  assertEquals(run.exitReason, reason, `exit reason ${what}`);
  return run;
}
function withCaps(edit: (c: VmxCapabilities) => void): VmxCapabilities {
  const c = defaultVmxCapabilities();
  edit(c);
  return c;
}
async function hardwareError(caps: VmxCapabilities): Promise<KvmError> {
  const e = await assertRejects(() => Kvm.open({ hardware: caps }), KvmError);
  assertEquals((e as KvmError).kind, "hardware");
  return e as KvmError;
}
/** Default1 processor-based controls: must be 1 on a processor without the TRUE_* MSRs (SDM A.3.2). */
const PROC_DEFAULT1 = 0x0401e172;

// ---------------------------------------------------------------------------------------------
// setupVmcsConfig: controls from the capability MSRs
// ---------------------------------------------------------------------------------------------

test("setupVmcsConfig turns on HLT exiting and unconditional IO exiting with the default capabilities", async () => {
  const kvm = await Kvm.open({ hardware: defaultVmxCapabilities() });
  const { vcpu } = realModeGuest([HLT], { kvm });
  const proc = vcpu.vmcsRead(VmcsField.CPU_BASED_VM_EXEC_CONTROL);
  for (const bit of [CpuBased.HLT_EXITING, CpuBased.UNCOND_IO_EXITING, CpuBased.USE_TSC_OFFSETTING, CpuBased.ACTIVATE_SECONDARY_CONTROLS]) {
    assert(proc & bit, `CPU_BASED_VM_EXEC_CONTROL 0x${proc.toString(16)} has 0x${(bit >>> 0).toString(16)}`);
  }
  // Every IO and MSR access exits without bitmaps; RDTSC runs in the guest with TSC offsetting.
  assertEquals(proc & (CpuBased.USE_IO_BITMAPS | CpuBased.USE_MSR_BITMAPS | CpuBased.RDTSC_EXITING), 0);
  assertEquals(proc, vmxModuleState(kvm.module).vmcsConfig.cpuBasedExecCtrl);
  const proc2 = vcpu.vmcsRead(VmcsField.SECONDARY_VM_EXEC_CONTROL);
  assert(proc2 & CpuBased2.ENABLE_EPT && proc2 & CpuBased2.UNRESTRICTED_GUEST);
  const pin = vcpu.vmcsRead(VmcsField.PIN_BASED_VM_EXEC_CONTROL);
  assert(pin & PinBased.EXT_INTR_EXITING && pin & PinBased.NMI_EXITING);
  assertEquals(pin & PinBased.PREEMPTION_TIMER, 0, "the preemption timer is armed only for a budget");
  assert(vcpu.vmcsRead(VmcsField.VM_EXIT_CONTROLS) & ExitCtl.SAVE_PREEMPTION_TIMER);
  assert(vcpu.vmcsRead(VmcsField.VM_ENTRY_CONTROLS) & EntryCtl.LOAD_IA32_EFER);
});

test("setupVmcsConfig keeps the controls the allowed-0 settings force to 1", async () => {
  const kvm = await Kvm.open({ hardware: defaultVmxCapabilities() });
  const { vcpu } = realModeGuest([HLT], { kvm });
  const proc = vcpu.vmcsRead(VmcsField.CPU_BASED_VM_EXEC_CONTROL);
  assertEquals((proc & PROC_DEFAULT1) >>> 0, PROC_DEFAULT1, "default1 bits such as CR3-load exiting stay set");
});

test("a control forced on by allowed-0 takes effect: RDTSC exiting makes RDTSC exit to the kernel", async () => {
  const caps = withCaps((c) => {
    c.procBased.allowed0 |= CpuBased.RDTSC_EXITING;
  });
  const kvm = await Kvm.open({ hardware: caps });
  // rdtsc; hlt
  const { vcpu } = realModeGuest([0x0f, 0x31, HLT], { kvm });
  assert(vcpu.vmcsRead(VmcsField.CPU_BASED_VM_EXEC_CONTROL) & CpuBased.RDTSC_EXITING);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.vmxExitCounts[ExitReason.RDTSC], 1);
});

test("an optional control the processor does not allow is left off, and KVM still loads", async () => {
  const caps = withCaps((c) => {
    c.procBased.allowed1 &= ~CpuBased.RDPMC_EXITING;
    c.procBased2.allowed1 &= ~CpuBased2.ENABLE_VPID;
  });
  const kvm = await Kvm.open({ hardware: caps });
  assertEquals(vmxModuleState(kvm.module).vmcsConfig.cpuBasedExecCtrl & CpuBased.RDPMC_EXITING, 0);
  assertEquals(vmxModuleState(kvm.module).vmcsConfig.cpuBased2ndExecCtrl & CpuBased2.ENABLE_VPID, 0);
  const full = await Kvm.open({ hardware: defaultVmxCapabilities() });
  assert(vmxModuleState(full.module).vmcsConfig.cpuBasedExecCtrl & CpuBased.RDPMC_EXITING);
});

test("Kvm.open refuses a processor without HLT exiting and names the control", async () => {
  const e = await hardwareError(withCaps((c) => {
    c.procBased.allowed1 &= ~CpuBased.HLT_EXITING;
  }));
  assert(e.message.includes("processor-based controls HLT_EXITING"), e.message);
});

test("Kvm.open refuses a processor without EPT and names the control", async () => {
  const e = await hardwareError(withCaps((c) => {
    c.procBased2.allowed1 &= ~CpuBased2.ENABLE_EPT;
  }));
  assert(e.message.includes("secondary processor-based controls ENABLE_EPT"), e.message);
});

test("Kvm.open names every missing control at once", async () => {
  const e = await hardwareError(withCaps((c) => {
    c.procBased.allowed1 &= ~(CpuBased.HLT_EXITING | CpuBased.UNCOND_IO_EXITING);
  }));
  assert(e.message.includes("HLT_EXITING, UNCOND_IO_EXITING"), e.message);
});

test("Kvm.open refuses a processor without the preemption timer (the instruction budget)", async () => {
  const e = await hardwareError(withCaps((c) => {
    c.pinBased.allowed1 &= ~PinBased.PREEMPTION_TIMER;
  }));
  assert(e.message.includes("pin-based controls PREEMPTION_TIMER"), e.message);
});

// ---------------------------------------------------------------------------------------------
// The VMCS after an exit
// ---------------------------------------------------------------------------------------------

const IO_QUAL = { IN: 1 << 3, STRING: 1 << 4, REP: 1 << 5, IMM: 1 << 6 };
const ioCases: { asm: string; code: number[]; qual: number; len: number }[] = [
  { asm: "out 0x80,al", code: [0xe6, 0x80], qual: 0 | IO_QUAL.IMM | (0x80 << 16), len: 2 },
  { asm: "in ax,dx", code: [0xed], qual: 1 | IO_QUAL.IN | (0x1234 << 16), len: 1 },
  { asm: "out dx,eax", code: [0x66, 0xef], qual: 3 | (0x1234 << 16), len: 2 },
  { asm: "in eax,0x71", code: [0x66, 0xe5, 0x71], qual: 3 | IO_QUAL.IN | IO_QUAL.IMM | (0x71 << 16), len: 3 },
  { asm: "rep outsb", code: [0xf3, 0x6e], qual: 0 | IO_QUAL.STRING | IO_QUAL.REP | (0x1234 << 16), len: 2 },
  { asm: "insw", code: [0x6d], qual: 1 | IO_QUAL.IN | IO_QUAL.STRING | (0x1234 << 16), len: 1 },
  { asm: "rep insd", code: [0x66, 0xf3, 0x6d], qual: 3 | IO_QUAL.IN | IO_QUAL.STRING | IO_QUAL.REP | (0x1234 << 16), len: 3 },
];

test("an IO exit records reason 30, the SDM's exit qualification and the instruction length", () => {
  for (const c of ioCases) {
    const { vcpu } = realModeGuest([...c.code, HLT], { regs: { rdx: 0x1234, rcx: 2, rsi: 0x2000, rdi: 0x3000 } });
    runExpect(vcpu, KvmExit.IO, c.asm);
    assertEquals(vcpu.vmcsRead(VmcsField.EXIT_REASON), ExitReason.IO_INSTRUCTION, c.asm);
    assertEquals(vcpu.vmcsRead(VmcsField.EXIT_QUALIFICATION), c.qual >>> 0, `${c.asm}: qualification`);
    assertEquals(vcpu.vmcsRead(VmcsField.VM_EXIT_INSTRUCTION_LEN), c.len, `${c.asm}: length`);
    assertEquals(vcpu.vmcsRead(VmcsField.GUEST_RIP), CODE, `${c.asm}: RIP at the instruction`);
  }
});

test("VMREAD of guest-state fields equals KVM_GET_REGS and KVM_GET_SREGS", () => {
  // stc; std; mov sp,0x7000; out 0x80,al; hlt
  const { vcpu } = realModeGuest([0xf9, 0xfd, 0xbc, 0x00, 0x70, 0xe6, 0x80, HLT]);
  runExpect(vcpu, KvmExit.IO);
  const regs = vcpu.getRegs(), sregs = vcpu.getSregs();
  assertEquals(vcpu.vmcsRead(0x681e), regs.rip); // GUEST_RIP
  assertEquals(vcpu.vmcsRead(0x6820), regs.rflags); // GUEST_RFLAGS
  assertEquals(regs.rflags & 0x401, 0x401, "CF and DF set by the guest");
  assertEquals(vcpu.vmcsRead(VmcsField.GUEST_RSP), 0x7000);
  assertEquals(vcpu.vmcsRead(VmcsField.GUEST_CS_SELECTOR), sregs.cs.selector);
  assertEquals(vcpu.vmcsRead(VmcsField.GUEST_CS_BASE), sregs.cs.base);
  assertEquals(vcpu.vmcsRead(VmcsField.GUEST_CR0), sregs.cr0);
});

test("VMWRITE of GUEST_RIP moves the guest", () => {
  // out 0x80,al; hlt; (0x1003:) mov al,1; hlt
  const { vcpu } = realModeGuest([0xe6, 0x80, HLT, 0xb0, 0x01, HLT]);
  vcpu.vmcsWrite(VmcsField.GUEST_RIP, CODE + 3);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, CODE + 6);
});

test("VMWRITE of an exit-information field throws", () => {
  const { vcpu } = realModeGuest([HLT]);
  for (const f of [VmcsField.EXIT_REASON, VmcsField.EXIT_QUALIFICATION, VmcsField.VM_EXIT_INSTRUCTION_LEN, VmcsField.GUEST_PHYSICAL_ADDRESS]) {
    const e = assertThrows(() => vcpu.vmcsWrite(f, 1), VmcsError, "read-only");
    assertEquals((e as VmcsError).kind, "read-only");
  }
});

test("VMREAD and VMWRITE of an unknown field throw", () => {
  const { vcpu } = realModeGuest([HLT]);
  const e = assertThrows(() => vcpu.vmcsRead(0x1234), VmcsError, "0x1234");
  assertEquals((e as VmcsError).kind, "unsupported-field");
  assertThrows(() => vcpu.vmcsWrite(0x6bfe, 0), VmcsError, "unsupported");
});

// ---------------------------------------------------------------------------------------------
// Exit handlers
// ---------------------------------------------------------------------------------------------

test("handleCpuid answers from the table set with vm.setCpuid; unknown leaves read as zero", () => {
  // cpuid; mov edi,eax; mov eax,0x80000008; cpuid; hlt
  const { vm, vcpu } = realModeGuest([0x0f, 0xa2, 0x66, 0x89, 0xc7, 0x66, 0xb8, 0x08, 0x00, 0x00, 0x80, 0x0f, 0xa2, HLT], {
    regs: { rax: 0x4000_0000, rcx: 7 },
  });
  vm.setCpuid([
    { function: 0x4000_0000, index: 0, eax: 0x11, ebx: 0x22, ecx: 0x33, edx: 0x44 },
    { function: 0x8000_0008, index: 0, eax: 0x55, ebx: 0x66, ecx: 0x77, edx: 0x88 },
  ]);
  runExpect(vcpu, KvmExit.HLT);
  const r = vcpu.getRegs();
  assertEquals([r.rdi, r.rax, r.rbx, r.rcx, r.rdx], [0x11, 0x55, 0x66, 0x77, 0x88]);
  assertEquals(vcpu.vmxExitCounts[ExitReason.CPUID], 2);

  const other = realModeGuest([0x0f, 0xa2, HLT], { regs: { rax: 0x1234_5678, rbx: 1, rcx: 1, rdx: 1 } });
  runExpect(other.vcpu, KvmExit.HLT);
  const o = other.vcpu.getRegs();
  assertEquals([o.rax, o.rbx, o.rcx, o.rdx, o.rip], [0, 0, 0, 0, CODE + 3]);
});

test("handleCpuid matches the index only for leaves where it is significant", () => {
  // cpuid; hlt
  const code = [0x0f, 0xa2, HLT];
  const table = [
    { function: 7, index: 0, significantIndex: true, eax: 0, ebx: 0xa0, ecx: 0, edx: 0 },
    { function: 7, index: 1, significantIndex: true, eax: 0, ebx: 0xa1, ecx: 0, edx: 0 },
  ];
  for (const idx of [0, 1]) {
    const { vm, vcpu } = realModeGuest(code, { regs: { rax: 7, rcx: idx } });
    vm.setCpuid(table);
    runExpect(vcpu, KvmExit.HLT);
    assertEquals(vcpu.getRegs().rbx, 0xa0 + idx);
  }
});

test("the default CPUID table names the hypervisor at 0x40000000", () => {
  const { vcpu } = realModeGuest([0x0f, 0xa2, HLT], { regs: { rax: 0x4000_0000 } });
  runExpect(vcpu, KvmExit.HLT);
  const r = vcpu.getRegs();
  const name = [r.rbx, r.rcx, r.rdx].map((v) => String.fromCharCode(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24)).join("");
  assertEquals(name, "vmxlabvmxlab");
});

test("handleHalt exits with KVM_EXIT_HLT, RIP past the HLT, the HLT retired", () => {
  // nop; hlt
  const { vcpu } = realModeGuest([0x90, HLT]);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, CODE + 2);
  assertEquals(vcpu.instructions, 2);
  assertEquals(vcpu.vmcsRead(VmcsField.EXIT_REASON), ExitReason.HLT);
  assertEquals(vcpu.vmxExitCounts[ExitReason.HLT], 1);
});

// nop; nop; out 0x80,al; rdtsc; hlt — the OUT exit makes RDTSC start a block of its own.
const RDTSC_GUEST = [0x90, 0x90, 0xe6, 0x80, 0x0f, 0x31, HLT];
function rdtscAfterThree(rdtscExiting: boolean, tscOffset: number): { tsc: number; exits: number } {
  const { vcpu } = realModeGuest(RDTSC_GUEST, { regs: { rax: 0, rdx: 0 } });
  if (rdtscExiting) {
    vcpu.vmcsWrite(VmcsField.CPU_BASED_VM_EXEC_CONTROL, vcpu.vmcsRead(VmcsField.CPU_BASED_VM_EXEC_CONTROL) | CpuBased.RDTSC_EXITING);
  }
  vcpu.vmcsWrite(VmcsField.TSC_OFFSET, tscOffset);
  runExpect(vcpu, KvmExit.IO);
  runExpect(vcpu, KvmExit.HLT);
  const r = vcpu.getRegs();
  return { tsc: r.rax + r.rdx * 2 ** 32, exits: vcpu.vmxExitCounts[ExitReason.RDTSC] };
}

test("RDTSC without RDTSC exiting reads retired instructions plus TSC_OFFSET, in the guest", () => {
  assertEquals(rdtscAfterThree(false, 0), { tsc: 3, exits: 0 });
  assertEquals(rdtscAfterThree(false, 1000), { tsc: 1003, exits: 0 });
  assertEquals(rdtscAfterThree(false, 2 ** 33), { tsc: 2 ** 33 + 3, exits: 0 });
});

test("RDTSC with RDTSC exiting is answered by handleRdtsc with the same value", () => {
  assertEquals(rdtscAfterThree(true, 0), { tsc: 3, exits: 1 });
  assertEquals(rdtscAfterThree(true, 1000), { tsc: 1003, exits: 1 });
});

test("without TSC offsetting, RDTSC and RDMSR(IA32_TSC) ignore TSC_OFFSET alike", () => {
  for (const exiting of [false, true]) {
    // out 0x80,al; rdtsc; mov ebx,eax; mov ecx,0x10; rdmsr; hlt
    const { vcpu } = realModeGuest([0xe6, 0x80, 0x0f, 0x31, 0x66, 0x89, 0xc3, 0x66, 0xb9, 0x10, 0x00, 0x00, 0x00, 0x0f, 0x32, HLT]);
    const proc = vcpu.vmcsRead(VmcsField.CPU_BASED_VM_EXEC_CONTROL) & ~CpuBased.USE_TSC_OFFSETTING;
    vcpu.vmcsWrite(VmcsField.CPU_BASED_VM_EXEC_CONTROL, exiting ? proc | CpuBased.RDTSC_EXITING : proc);
    vcpu.vmcsWrite(VmcsField.TSC_OFFSET, 500);
    runExpect(vcpu, KvmExit.IO);
    runExpect(vcpu, KvmExit.HLT);
    assertEquals([vcpu.getRegs().rbx, vcpu.getRegs().rax], [1, 4], exiting ? "RDTSC exiting" : "RDTSC in the guest");
  }
});

test("RDTSC in the middle of a block counts the instructions before it", () => {
  // nop; nop; rdtsc; hlt
  const { vcpu } = realModeGuest([0x90, 0x90, 0x0f, 0x31, HLT]);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax, 2);
});

test("RDMSR of IA32_TSC agrees with RDTSC", () => {
  // out 0x80,al; rdtsc; mov ebx,eax; mov ecx,0x10; rdmsr; hlt
  const { vcpu } = realModeGuest([0xe6, 0x80, 0x0f, 0x31, 0x66, 0x89, 0xc3, 0x66, 0xb9, 0x10, 0x00, 0x00, 0x00, 0x0f, 0x32, HLT]);
  vcpu.vmcsWrite(VmcsField.TSC_OFFSET, 500);
  runExpect(vcpu, KvmExit.IO);
  runExpect(vcpu, KvmExit.HLT);
  const r = vcpu.getRegs();
  assertEquals(r.rbx, 501, "RDTSC after one instruction");
  assertEquals(r.rax, 504, "RDMSR(IA32_TSC) three instructions later");
});

test("WRMSR to IA32_TSC moves TSC_OFFSET (guest_write_tsc), so RDTSC follows it", () => {
  // mov ecx,0x10; mov eax,1000000; xor edx,edx; wrmsr; out 0x80,al; rdtsc; hlt
  const { vcpu } = realModeGuest([
    0x66, 0xb9, 0x10, 0x00, 0x00, 0x00, 0x66, 0xb8, 0x40, 0x42, 0x0f, 0x00, 0x66, 0x31, 0xd2, 0x0f, 0x30,
    0xe6, 0x80, 0x0f, 0x31, HLT,
  ]);
  runExpect(vcpu, KvmExit.IO);
  assertEquals(vcpu.vmcsRead(VmcsField.TSC_OFFSET), 1_000_000 - 3, "the TSC read 1000000 when three instructions had retired");
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax, 1_000_002);
});

test("VMCALL exits with KVM_EXIT_HYPERCALL, nr and args from RAX RBX RCX RDX RSI, and `ret` lands in EAX", () => {
  // mov eax,1; mov ebx,0x11111111; mov ecx,0x22222222; mov edx,0x33333333; mov esi,0x44444444; vmcall; hlt
  const code = [
    0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x66, 0xbb, 0x11, 0x11, 0x11, 0x11, 0x66, 0xb9, 0x22, 0x22, 0x22, 0x22,
    0x66, 0xba, 0x33, 0x33, 0x33, 0x33, 0x66, 0xbe, 0x44, 0x44, 0x44, 0x44, 0x0f, 0x01, 0xc1, HLT,
  ];
  const { vcpu } = realModeGuest(code);
  const run = runExpect(vcpu, KvmExit.HYPERCALL);
  assertEquals(run.hypercall.nr, 1);
  assertEquals(run.hypercall.args.slice(0, 4), [0x11111111, 0x22222222, 0x33333333, 0x44444444]);
  assertEquals(vcpu.vmcsRead(VmcsField.EXIT_REASON), ExitReason.VMCALL);
  assertEquals(vcpu.getRegs().rip, CODE + 0x1e, "RIP at the VMCALL until userspace answers");
  run.hypercall.ret = 0x3333_3333;
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax, 0x3333_3333);
  assertEquals(vcpu.getRegs().rip, CODE + 0x22);
  assertEquals(vcpu.instructions, 7);
});

test("a hypercall userspace does not answer returns -KVM_ENOSYS", () => {
  // mov eax,1; vmcall; hlt
  const { vcpu } = realModeGuest([0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x01, 0xc1, HLT]);
  runExpect(vcpu, KvmExit.HYPERCALL);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax, (-KVM_ENOSYS) >>> 0);
});

test("WRMSR then RDMSR of IA32_SYSENTER_CS round-trips in the kernel, and VMREAD sees it", () => {
  // mov ecx,0x174; mov eax,0x10; xor edx,edx; wrmsr; xor eax,eax; rdmsr; hlt
  const { vcpu } = realModeGuest([
    0x66, 0xb9, 0x74, 0x01, 0x00, 0x00, 0x66, 0xb8, 0x10, 0x00, 0x00, 0x00, 0x66, 0x31, 0xd2, 0x0f, 0x30,
    0x66, 0x31, 0xc0, 0x0f, 0x32, HLT,
  ]);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax, 0x10);
  assertEquals(vcpu.vmcsRead(VmcsField.GUEST_SYSENTER_CS), 0x10);
  assertEquals(vcpu.vmxExitCounts[ExitReason.MSR_WRITE], 1);
  assertEquals(vcpu.vmxExitCounts[ExitReason.MSR_READ], 1);
  assertEquals(vcpu.instructions, 7);
});

test("WRMSR to IA32_EFER is what KVM_GET_SREGS and VMREAD report; setting LME injects #GP", () => {
  // mov ecx,0xc0000080; mov eax,1 (SCE); xor edx,edx; wrmsr; hlt
  const { vcpu } = realModeGuest([
    0x66, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x66, 0x31, 0xd2, 0x0f, 0x30, HLT,
  ]);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getSregs().efer, 1);
  assertEquals(vcpu.vmcsRead(VmcsField.GUEST_IA32_EFER), 1);

  // the same with eax = 0x100 (LME); #GP goes through IVT entry 13 to a HLT at 0x1100
  const lme = realModeGuest([
    0x66, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x66, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x66, 0x31, 0xd2, 0x0f, 0x30, HLT,
  ]);
  lme.vm.writeGuest(13 * 4, new Uint8Array([0x00, 0x11, 0x00, 0x00]));
  lme.vm.writeGuest(0x1100, new Uint8Array([HLT]));
  runExpect(lme.vcpu, KvmExit.HLT);
  assertEquals(lme.vcpu.getRegs().rip, 0x1101);
  assertEquals(lme.vcpu.getSregs().efer, 0);
});

// mov ecx,0x1234; rdmsr; hlt
const RDMSR_UNKNOWN = [0x66, 0xb9, 0x34, 0x12, 0x00, 0x00, 0x0f, 0x32, HLT];

test("RDMSR of an unknown MSR injects #GP, a fault with RIP at the RDMSR", () => {
  const { vm, vcpu } = realModeGuest(RDMSR_UNKNOWN);
  vm.writeGuest(13 * 4, new Uint8Array([0x00, 0x11, 0x00, 0x00])); // IVT[13] = 0000:1100
  vm.writeGuest(0x1100, new Uint8Array([HLT]));
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, 0x1101, "in the #GP handler");
  const frame = vm.readGuest(0x8000 - 6, 6);
  assertEquals(frame[0] | (frame[1] << 8), CODE + 6, "the pushed IP is the RDMSR's");
});

test("in protected mode the #GP for an unknown MSR pushes its error code", () => {
  // mov ecx,0x1234; rdmsr; hlt   (32-bit code; IDT at 0x500 with an interrupt gate 13 → 0x08:0x1100)
  const { vm, vcpu } = protectedModeGuest([0xb9, 0x34, 0x12, 0x00, 0x00, 0x0f, 0x32, HLT]);
  const gdt = new DataView(new ArrayBuffer(24));
  gdt.setBigUint64(8, 0x00cf9a000000ffffn, true); // 0x08: flat code
  gdt.setBigUint64(16, 0x00cf92000000ffffn, true); // 0x10: flat data
  vm.writeGuest(0, new Uint8Array(gdt.buffer));
  vm.writeGuest(0x500 + 13 * 8, new Uint8Array([0x00, 0x11, 0x08, 0x00, 0x00, 0x8e, 0x00, 0x00]));
  vm.writeGuest(0x1100, new Uint8Array([HLT]));
  const s = vcpu.getSregs();
  s.gdt = { base: 0, limit: 23 };
  s.idt = { base: 0x500, limit: 0x7ff };
  vcpu.setSregs(s);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, 0x1101);
  assertEquals(vcpu.getRegs().rsp, 0x8000 - 16, "EFLAGS, CS, EIP and the error code");
  const frame = new DataView(vm.readGuest(0x8000 - 16, 16).buffer);
  assertEquals([frame.getUint32(0, true), frame.getUint32(4, true), frame.getUint32(8, true)], [0, CODE + 5, 0x08]);
});

test("with vm.userspaceMsr, RDMSR of an unknown MSR exits with KVM_EXIT_X86_RDMSR and the data lands in EDX:EAX", () => {
  const { vm, vcpu } = realModeGuest(RDMSR_UNKNOWN);
  vm.userspaceMsr = true;
  const run = runExpect(vcpu, KvmExit.X86_RDMSR);
  assertEquals(run.msr.index, 0x1234);
  run.msr.data = 0x1_0000_0002;
  runExpect(vcpu, KvmExit.HLT);
  const r = vcpu.getRegs();
  assertEquals([r.rax, r.rdx, r.rip], [2, 1, CODE + 9]);
});

test("with vm.userspaceMsr, an error from userspace injects #GP", () => {
  const { vm, vcpu } = realModeGuest(RDMSR_UNKNOWN);
  vm.userspaceMsr = true;
  vm.writeGuest(13 * 4, new Uint8Array([0x00, 0x11, 0x00, 0x00]));
  vm.writeGuest(0x1100, new Uint8Array([HLT]));
  runExpect(vcpu, KvmExit.X86_RDMSR).msr.error = 1;
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, 0x1101);
});

test("with vm.userspaceMsr, WRMSR of an unknown MSR exits with KVM_EXIT_X86_WRMSR carrying EDX:EAX", () => {
  // mov ecx,0x1234; mov eax,0x55; mov edx,0x66; wrmsr; hlt
  const { vm, vcpu } = realModeGuest([
    0x66, 0xb9, 0x34, 0x12, 0x00, 0x00, 0x66, 0xb8, 0x55, 0x00, 0x00, 0x00, 0x66, 0xba, 0x66, 0x00, 0x00, 0x00, 0x0f, 0x30, HLT,
  ]);
  vm.userspaceMsr = true;
  const run = runExpect(vcpu, KvmExit.X86_WRMSR);
  assertEquals([run.msr.index, run.msr.data], [0x1234, 0x66_0000_0055]);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, CODE + 0x15);
});

test("an EPT violation on a read becomes KVM_EXIT_MMIO, and the value userspace fills reaches the register", () => {
  // mov ax,0x2000; mov ds,ax; mov ax,[0]; inc ax; mov [2],ax; hlt   (0x20000 has no memslot)
  const { vcpu } = realModeGuest([0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xa1, 0x00, 0x00, 0x40, 0xa3, 0x02, 0x00, HLT]);
  let run = runExpect(vcpu, KvmExit.MMIO, "read");
  assertEquals([run.mmio.physAddr, run.mmio.len, run.mmio.isWrite], [0x20000, 2, false]);
  assertEquals(vcpu.vmcsRead(VmcsField.EXIT_REASON), ExitReason.EPT_VIOLATION);
  assertEquals(vcpu.vmcsRead(VmcsField.GUEST_PHYSICAL_ADDRESS), 0x20000);
  assertEquals(vcpu.getRegs().rip, CODE + 5, "RIP at the MOV until the access completes");
  run.mmio.data.set([0x34, 0x12]);

  run = runExpect(vcpu, KvmExit.MMIO, "write");
  assertEquals([run.mmio.physAddr, run.mmio.len, run.mmio.isWrite], [0x20002, 2, true]);
  assertEquals([...run.mmio.data.slice(0, 2)], [0x35, 0x12]);
  assertEquals(vcpu.getRegs().rax & 0xffff, 0x1235);

  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, CODE + 13);
  assertEquals(vcpu.instructions, 6);
});

test("an EPT violation's exit qualification says read or write, with a valid linear address", () => {
  // mov ax,0x2000; mov ds,ax; mov ax,[0]; mov [2],ax; hlt
  const { vcpu } = realModeGuest([0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xa1, 0x00, 0x00, 0xa3, 0x02, 0x00, HLT]);
  runExpect(vcpu, KvmExit.MMIO);
  // SDM table 28-7: bit 0 read, bit 1 write, bit 7 linear address valid, bit 8 access to the translation
  assertEquals(vcpu.vmcsRead(VmcsField.EXIT_QUALIFICATION), 0x181);
  assertEquals(vcpu.vmcsRead(VmcsField.GUEST_LINEAR_ADDRESS), 0x20000);
  runExpect(vcpu, KvmExit.MMIO);
  assertEquals(vcpu.vmcsRead(VmcsField.EXIT_QUALIFICATION), 0x182);
});

test("an MMIO read after a completed MMIO write in the same block gets userspace's value", () => {
  // mov ax,0x2000; mov ds,ax; mov word [0],0xbeef; mov ax,[2]; hlt
  const { vcpu } = realModeGuest([0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xc7, 0x06, 0x00, 0x00, 0xef, 0xbe, 0xa1, 0x02, 0x00, HLT]);
  assertEquals(runExpect(vcpu, KvmExit.MMIO).mmio.isWrite, true);
  const run = runExpect(vcpu, KvmExit.MMIO);
  assertEquals([run.mmio.physAddr, run.mmio.isWrite], [0x20002, false]);
  run.mmio.data.set([0x78, 0x56]);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax & 0xffff, 0x5678); // today: 0xbeef, the value the write carried
});

test("a 32-bit MMIO write carries four bytes, little-endian", () => {
  // mov dword [0x10000000],0xdeadbeef; hlt
  const { vcpu } = protectedModeGuest([0xc7, 0x05, 0x00, 0x00, 0x00, 0x10, 0xef, 0xbe, 0xad, 0xde, HLT]);
  const run = runExpect(vcpu, KvmExit.MMIO);
  assertEquals([run.mmio.physAddr, run.mmio.len, run.mmio.isWrite], [0x1000_0000, 4, true]);
  assertEquals([...run.mmio.data.slice(0, 4)], [0xef, 0xbe, 0xad, 0xde]);
  runExpect(vcpu, KvmExit.HLT);
});

test("a triple fault exits with KVM_EXIT_SHUTDOWN, and KVM_RUN keeps returning it until the state is set", () => {
  // ud2 with IDTR.limit = 0: #UD, then #GP on delivery, then nothing left in real mode (SDM 20.1.4)
  const { vcpu } = realModeGuest([0x0f, 0x0b, HLT]);
  const s = vcpu.getSregs();
  s.idt.limit = 0;
  vcpu.setSregs(s);
  const run = runExpect(vcpu, KvmExit.SHUTDOWN);
  assertEquals(vcpu.vmcsRead(VmcsField.EXIT_REASON), ExitReason.TRIPLE_FAULT);
  assertEquals(run.shutdown.vectors, [6, 13]);
  assertEquals(run.shutdown.rip, CODE);
  assertEquals(run.shutdown.bytes.slice(0, 2), [0x0f, 0x0b]);
  runExpect(vcpu, KvmExit.SHUTDOWN, "again");
  vcpu.setRegs({ rip: CODE + 2 });
  runExpect(vcpu, KvmExit.HLT, "after KVM_SET_REGS");
});

test("EXCEPTION_BITMAP bit 6 turns #UD into KVM_EXIT_EXCEPTION with RIP at the faulting instruction", () => {
  // nop; ud2
  const { vcpu } = realModeGuest([0x90, 0x0f, 0x0b]);
  vcpu.vmcsWrite(VmcsField.EXCEPTION_BITMAP, 1 << 6);
  const run = runExpect(vcpu, KvmExit.EXCEPTION);
  assertEquals([run.ex.exception, run.ex.errorCode], [6, 0]);
  assertEquals(vcpu.vmcsRead(VmcsField.EXIT_REASON), ExitReason.EXCEPTION_NMI);
  assertEquals(vcpu.vmcsRead(VmcsField.VM_EXIT_INTR_INFO), (IntrInfo.VALID | (IntrInfo.TYPE_HW_EXCEPTION << 8) | 6) >>> 0);
  assertEquals(vcpu.getRegs().rip, CODE + 1);
});

test("EXCEPTION_BITMAP bit 3 turns INT3 into KVM_EXIT_DEBUG at the INT3", () => {
  // nop; int3; hlt
  const { vcpu } = realModeGuest([0x90, 0xcc, HLT]);
  vcpu.vmcsWrite(VmcsField.EXCEPTION_BITMAP, 1 << 3);
  const run = runExpect(vcpu, KvmExit.DEBUG);
  assertEquals([run.debug.exception, run.debug.pc], [3, CODE + 1]);
  assertEquals(vcpu.vmcsRead(VmcsField.VM_EXIT_INTR_INFO), (IntrInfo.VALID | (IntrInfo.TYPE_SOFT_EXCEPTION << 8) | 3) >>> 0);
  assertEquals(vcpu.vmcsRead(VmcsField.VM_EXIT_INSTRUCTION_LEN), 1);
  // A debugger steps over the breakpoint by moving RIP past it.
  vcpu.setRegs({ rip: CODE + 2 });
  runExpect(vcpu, KvmExit.HLT);
});

test("an exception in the bitmap with an error code reports it: #GP(selector) in protected mode", () => {
  // mov ax,0x1b; mov ds,ax; hlt   (GDT entry 3 is zeroed memory: not a data segment)
  const { vcpu } = protectedModeGuest([0x66, 0xb8, 0x1b, 0x00, 0x8e, 0xd8, HLT]);
  vcpu.vmcsWrite(VmcsField.EXCEPTION_BITMAP, 1 << 13);
  const run = runExpect(vcpu, KvmExit.EXCEPTION);
  assertEquals([run.ex.exception, run.ex.errorCode], [13, 0x18]);
  assert(vcpu.vmcsRead(VmcsField.VM_EXIT_INTR_INFO) & IntrInfo.ERROR_CODE_VALID);
  assertEquals(vcpu.getRegs().rip, CODE + 4);
});

test("vcpu counts VM exits by basic reason and KVM_RUN returns by KVM exit reason", () => {
  // cpuid; out 0x80,al; out 0x80,al; hlt
  const { vcpu } = realModeGuest([0x0f, 0xa2, 0xe6, 0x80, 0xe6, 0x80, HLT]);
  runExpect(vcpu, KvmExit.IO);
  runExpect(vcpu, KvmExit.IO);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals([...vcpu.userExitCounts].sort((a, b) => a[0] - b[0]), [[KvmExit.IO, 2], [KvmExit.HLT, 1]]);
  assertEquals(
    [ExitReason.CPUID, ExitReason.IO_INSTRUCTION, ExitReason.HLT].map((r) => vcpu.vmxExitCounts[r]),
    [1, 2, 1],
  );
});

test("a host deadline ends KVM_RUN with KVM_EXIT_INTR through an external-interrupt exit", () => {
  const { vcpu } = realModeGuest(SPIN);
  vcpu.setDeadline(performance.now() - 1);
  runExpect(vcpu, KvmExit.INTR);
  assertEquals(vcpu.vmcsRead(VmcsField.EXIT_REASON), ExitReason.EXTERNAL_INTERRUPT);
  // Within one clock check of the run loop (4096 blocks); under the JIT possibly before the first
  // instruction, since the runner also checks the clock right after compiling.
  assert(vcpu.instructions <= 8192, `stopped after ${vcpu.instructions}`);
  vcpu.setDeadline(null);
  vcpu.setBudget(10);
  const before = vcpu.instructions;
  runExpect(vcpu, KvmExit.BUDGET);
  assertEquals(vcpu.instructions, before + 10, "the guest resumes where it was interrupted");
});

test("immediate_exit returns KVM_EXIT_INTR at once, after completing the pending IN", () => {
  // in al,0x60; hlt
  const { vcpu } = realModeGuest([0xe4, 0x60, HLT]);
  const run = runExpect(vcpu, KvmExit.IO);
  run.data[0] = 0x42;
  run.immediateExit = true;
  runExpect(vcpu, KvmExit.INTR);
  assertEquals(vcpu.getRegs().rax & 0xff, 0x42);
  assertEquals(vcpu.getRegs().rip, CODE + 2);
  assertEquals(run.immediateExit, false);
  runExpect(vcpu, KvmExit.HLT);
});

test("KVM_INTERRUPT delivers the vector through the IVT once IF=1", () => {
  // sti; out 0x80,al; hlt     handler at 0x1100: mov al,0x42; out 0x81,al; iret
  const { vm, vcpu } = realModeGuest([0xfb, 0xe6, 0x80, HLT]);
  vm.writeGuest(0x20 * 4, new Uint8Array([0x00, 0x11, 0x00, 0x00]));
  vm.writeGuest(0x1100, new Uint8Array([0xb0, 0x42, 0xe6, 0x81, 0xcf]));
  let run = runExpect(vcpu, KvmExit.IO);
  assertEquals(run.io.port, 0x80);
  assertEquals(run.ifFlag, true);
  vcpu.interrupt(0x20);
  run = runExpect(vcpu, KvmExit.IO);
  assertEquals([run.io.port, run.data[0]], [0x81, 0x42]);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, CODE + 4, "IRET returned past the OUT");
  assertEquals(vcpu.instructions, 6);
});

test("KVM_INTERRUPT waits while IF=0 and is taken when the interrupt window opens", () => {
  // out 0x80,al; sti; nop; out 0x80,al; hlt     handler at 0x1100: out 0x81,al; iret
  const { vm, vcpu } = realModeGuest([0xe6, 0x80, 0xfb, 0x90, 0xe6, 0x80, HLT]);
  vm.writeGuest(0x20 * 4, new Uint8Array([0x00, 0x11, 0x00, 0x00]));
  vm.writeGuest(0x1100, new Uint8Array([0xe6, 0x81, 0xcf]));
  let run = runExpect(vcpu, KvmExit.IO);
  assertEquals(run.readyForInterruptInjection, false, "IF=0");
  vcpu.interrupt(0x20);
  run = runExpect(vcpu, KvmExit.IO);
  assertEquals(run.io.port, 0x81, "delivered after STI and the NOP in its shadow, before the second OUT");
  assertEquals(run.ifFlag, false, "the handler runs with IF=0");
  assertEquals(vcpu.vmxExitCounts[ExitReason.INTERRUPT_WINDOW], 1);
  run = runExpect(vcpu, KvmExit.IO);
  assertEquals(run.io.port, 0x80);
  assertEquals([run.ifFlag, run.readyForInterruptInjection], [true, true]);
  runExpect(vcpu, KvmExit.HLT);
});

// ---------------------------------------------------------------------------------------------
// The instruction budget (VMX preemption timer)
// ---------------------------------------------------------------------------------------------

// l: inc ax; jmp l
const SPIN = [0x40, 0xeb, 0xfd];

test("setBudget(n) stops after exactly n retired instructions with KVM_EXIT_BUDGET", () => {
  for (const n of [0, 1, 2, 7, 100, 1001]) {
    const { vcpu } = realModeGuest(SPIN, { regs: { rax: 0 } });
    vcpu.setBudget(n);
    runExpect(vcpu, KvmExit.BUDGET, `budget ${n}`);
    assertEquals(vcpu.instructions, n);
    assertEquals(vcpu.getRegs().rax, Math.ceil(n / 2), `INC count for budget ${n}`);
    assertEquals(vcpu.vmcsRead(VmcsField.EXIT_REASON), ExitReason.PREEMPTION_TIMER);
    assertEquals(vcpu.budget, 0);
    assert(vcpu.vmcsRead(VmcsField.PIN_BASED_VM_EXEC_CONTROL) & PinBased.PREEMPTION_TIMER);
  }
});

test("a spent budget keeps returning KVM_EXIT_BUDGET; a new one continues from there", () => {
  const { vcpu } = realModeGuest(SPIN);
  vcpu.setBudget(5);
  runExpect(vcpu, KvmExit.BUDGET);
  runExpect(vcpu, KvmExit.BUDGET);
  assertEquals(vcpu.instructions, 5);
  vcpu.setBudget(10);
  assertEquals(vcpu.budget, 10);
  runExpect(vcpu, KvmExit.BUDGET);
  assertEquals(vcpu.instructions, 15);
  vcpu.setBudget(null);
  assertEquals(vcpu.budget, Infinity);
});

test("the budget counts instructions KVM emulates: OUTs completed in userspace and in the kernel", () => {
  // l: out 0x80,al; out 0xe9,al; jmp l
  const { vm, vcpu } = realModeGuest([0xe6, 0x80, 0xe6, 0xe9, 0xeb, 0xfa]);
  vm.attachKernelDevice(new DebugCon(() => {}));
  vcpu.setBudget(10);
  let ioExits = 0;
  for (;;) {
    const run = vcpu.run();
    if (run.exitReason !== KvmExit.IO) {
      assertEquals(run.exitReason, KvmExit.BUDGET);
      break;
    }
    ioExits++;
  }
  assertEquals(vcpu.instructions, 10);
  assertEquals(ioExits, 4, "OUTs to 0x80 at instructions 1, 4, 7, 10");
});

test("the budget counts each REP STOSB iteration and stops mid-instruction", () => {
  // rep stosb; hlt   (CX = 10, ES:DI = 0:0x3000)
  const { vm, vcpu } = realModeGuest([0xf3, 0xaa, HLT], { regs: { rcx: 10, rdi: 0x3000, rax: 0x77 } });
  vcpu.setBudget(4);
  runExpect(vcpu, KvmExit.BUDGET);
  assertEquals(vcpu.instructions, 4);
  const r = vcpu.getRegs();
  assertEquals([r.rcx, r.rdi, r.rip], [6, 0x3004, CODE]);
  assertEquals([...vm.readGuest(0x3000, 5)], [0x77, 0x77, 0x77, 0x77, 0]);
  vcpu.setBudget(null);
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.instructions, 11);
});

// ---------------------------------------------------------------------------------------------
// The handler table, synthetic exits, and hooks
// ---------------------------------------------------------------------------------------------

test("a VM exit with no handler becomes KVM_EXIT_INTERNAL_ERROR, never a silent skip", () => {
  const { vcpu } = realModeGuest([HLT]);
  assertEquals(kvmVmxExitHandlers[ExitReason.XSETBV], undefined);
  vcpu.vmcs.exitReason = ExitReason.XSETBV; // a synthetic exit, as the processor would record it
  assertEquals(vcpu.vm.module.ops.handleExit(vcpu), 0);
  assertEquals(vcpu.kvmRun.exitReason, KvmExit.INTERNAL_ERROR);
  assertEquals(vcpu.kvmRun.internal.suberror, KvmInternalError.UNEXPECTED_EXIT_REASON);
  assertEquals(vcpu.kvmRun.internal.data, [ExitReason.XSETBV]);
});

test("every exit the processor raises has a handler", () => {
  for (const r of ["EXCEPTION_NMI", "EXTERNAL_INTERRUPT", "TRIPLE_FAULT", "CPUID", "HLT", "RDTSC", "VMCALL", "IO_INSTRUCTION", "MSR_READ", "MSR_WRITE", "EPT_VIOLATION", "PREEMPTION_TIMER", "INVD", "WBINVD"] as const) {
    assert(kvmVmxExitHandlers[ExitReason[r]] !== undefined, r);
  }
});

test("handleIo can be called with a synthetic IO exit", () => {
  const { vcpu } = realModeGuest([0xe6, 0x70, HLT], { regs: { rax: 0xab } });
  vcpu.vmcs.exitReason = ExitReason.IO_INSTRUCTION;
  vcpu.vmcs.exitQualification = (0x70 << 16) | IO_QUAL.IMM; // out 0x70,al
  vcpu.vmcs.exitInstructionLen = 2;
  assertEquals(kvmVmxExitHandlers[ExitReason.IO_INSTRUCTION](vcpu), 0);
  const run = vcpu.kvmRun;
  assertEquals(run.exitReason, KvmExit.IO);
  assertEquals({ ...run.io }, { direction: KVM_EXIT_IO_OUT, size: 1, port: 0x70, count: 1, dataOffset: 0 });
  assertEquals(run.data[0], 0xab);
  // The next KVM_RUN completes it: RIP moves past the two bytes, then the guest halts.
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rip, CODE + 3);
});

test("a VMX exit hook that handles CPUID itself and returns \"resume\" replaces KVM's handler", () => {
  // cpuid; hlt
  const { vcpu } = realModeGuest([0x0f, 0xa2, HLT], { regs: { rax: 0 } });
  const seen: number[] = [];
  vcpu.onVmxExit(ExitReason.CPUID, (v, reason) => {
    seen.push(reason);
    v.setRegs({ rax: 0xfeed, rbx: 0, rcx: 0, rdx: 0 });
    v.skipEmulatedInstruction();
    return "resume";
  });
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(seen, [ExitReason.CPUID]);
  assertEquals(vcpu.getRegs().rax, 0xfeed);
  assertEquals(vcpu.instructions, 2);
});

test("a VMX exit hook that returns \"default\" watches, and KVM's handler still runs", () => {
  const { vm, vcpu } = realModeGuest([0x0f, 0xa2, HLT], { regs: { rax: 0x4000_0001 } });
  vm.setCpuid([{ function: 0x4000_0001, index: 0, eax: 0x99, ebx: 0, ecx: 0, edx: 0 }]);
  let rip = -1;
  vcpu.onVmxExit(ExitReason.CPUID, (v) => {
    rip = v.vmcsRead(VmcsField.GUEST_RIP);
    return "default";
  });
  runExpect(vcpu, KvmExit.HLT);
  assertEquals(rip, CODE);
  assertEquals(vcpu.getRegs().rax, 0x99);
  vcpu.onVmxExit(ExitReason.CPUID, undefined);
});

test("a hook on a reason without a handler can resume the guest; \"default\" still gives INTERNAL_ERROR", () => {
  const { vcpu } = realModeGuest([HLT]);
  vcpu.vmcs.exitReason = ExitReason.XSETBV;
  vcpu.onVmxExit(ExitReason.XSETBV, () => "resume");
  assertEquals(vcpu.vm.module.ops.handleExit(vcpu), 1);
  vcpu.onVmxExit(ExitReason.XSETBV, () => "default");
  assertEquals(vcpu.vm.module.ops.handleExit(vcpu), 0);
  assertEquals(vcpu.kvmRun.exitReason, KvmExit.INTERNAL_ERROR);
});

test("onVmxExit refuses a reason outside 0..63", () => {
  const { vcpu } = realModeGuest([HLT]);
  assertThrows(() => vcpu.onVmxExit(64, () => "resume"), RangeError, "Invalid VMX exit reason: 64");
});
