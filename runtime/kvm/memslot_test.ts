/**
 * Memslots (KVM_SET_USER_MEMORY_REGION): what the kernel refuses, and what the guest sees —
 * RAM inside slots, KVM_EXIT_MMIO outside them and for writes to read-only slots.
 */
import { test } from "node:test";
import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { Kvm, KVM_MEM_READONLY, KvmError, KvmExit } from "../mod.ts";
import { KVM_MEM_LOG_DIRTY_PAGES } from "./kvm_main.ts";
import { CODE, realModeGuest } from "./_testing.ts";

const HLT = 0xf4;
const kvm = await Kvm.open();

function memslotError(fn: () => unknown, msg: string): void {
  const e = assertThrows(fn, KvmError, msg);
  assertEquals((e as KvmError).kind, "memslot");
}

test("a memslot overlapping another is refused", () => {
  const vm = kvm.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x10000, memorySize: 0x10000 });
  memslotError(() => vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x8000, memorySize: 0x10000 }), "Memslot 1 at 0x8000 overlaps memslot 0 at 0x10000");
  memslotError(() => vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x1f000, memorySize: 0x1000 }), "overlaps memslot 0");
  memslotError(() => vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0, memorySize: 0x100000 }), "overlaps memslot 0");
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x20000, memorySize: 0x1000 }); // adjacent is fine
  assertEquals(vm.memslots().map((s) => s.slot), [0, 1]);
});

test("a memslot that is not page aligned is refused", () => {
  const vm = kvm.createVm();
  memslotError(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x10800, memorySize: 0x1000 }), "must be page aligned");
  memslotError(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x10000, memorySize: 0x800 }), "must be page aligned");
  assertEquals(vm.memslots(), []);
});

test("a memslot number out of range or a slot past 4 GiB is refused", () => {
  const vm = kvm.createVm();
  memslotError(() => vm.setUserMemoryRegion({ slot: -1, guestPhysAddr: 0, memorySize: 0x1000 }), "Invalid memslot number: -1");
  memslotError(() => vm.setUserMemoryRegion({ slot: 1.5, guestPhysAddr: 0, memorySize: 0x1000 }), "Invalid memslot number");
  memslotError(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0xffff_f000, memorySize: 0x2000 }), "outside the 4 GiB");
});

test("a memslot cannot be resized in place, but can be deleted and created again", () => {
  const vm = kvm.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x1000 });
  memslotError(() => vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x2000 }), "Cannot resize memslot 0");
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0 });
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x2000 });
  assertEquals(vm.memslots()[0].memorySize, 0x2000);
});

test("moving a memslot keeps its contents", () => {
  const vm = kvm.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x10000, memorySize: 0x1000 });
  vm.writeGuest(0x10010, new Uint8Array([1, 2, 3]));
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x30000, memorySize: 0x1000 });
  assertEquals([...vm.readGuest(0x30010, 3)], [1, 2, 3]);
  assertEquals([...vm.readGuest(0x10010, 1)], [0xff], "the old range has no memslot");
});

test("two memslots may map the same host memory", () => {
  const vm = kvm.createVm();
  const host = vm.mmap(0x1000);
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x10000, memorySize: 0x1000, userspaceAddr: host });
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x40000, memorySize: 0x1000, userspaceAddr: host });
  vm.writeGuest(0x10020, new Uint8Array([0x5a]));
  assertEquals(vm.readGuest(0x40020, 1)[0], 0x5a);
  memslotError(() => vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: 0x50000, memorySize: 0x1000, userspaceAddr: 0x7fff_0000 }), "is not mapped memory");
});

test("a guest write to a KVM_MEM_READONLY slot exits with KVM_EXIT_MMIO; reads see the memory", () => {
  // mov ax,0x2000; mov ds,ax; mov byte [0x10],0x55; mov al,[0x10]; hlt
  const { vm, vcpu } = realModeGuest([0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xc6, 0x06, 0x10, 0x00, 0x55, 0xa0, 0x10, 0x00, HLT]);
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x20000, memorySize: 0x1000, flags: KVM_MEM_READONLY });
  vm.writeGuest(0x20010, new Uint8Array([0x77])); // the VMM can still write it, as through its mapping
  const run = vcpu.run();
  assertEquals(run.exitReason, KvmExit.MMIO);
  assertEquals([run.mmio.physAddr, run.mmio.len, run.mmio.isWrite, run.mmio.data[0]], [0x20010, 1, true, 0x55]);
  assertEquals(vcpu.getRegs().rip, CODE + 5);
  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax & 0xff, 0x77, "the read came from the slot");
  assertEquals(vm.readGuest(0x20010, 1)[0], 0x77, "the write did not reach the slot");
  assertEquals(vm.memslots()[1].flags, KVM_MEM_READONLY);
});

test("a guest write outside every memslot is KVM_EXIT_MMIO and reaches no RAM", () => {
  // mov ax,0x3000; mov es,ax; mov word [es:0x10],0xbeef; mov ax,[0x2010]; hlt
  // (the one memslot covers 0..0x10000: 0x30010 is beyond it, 0x2010 is RAM)
  const { vm, vcpu } = realModeGuest([0xb8, 0x00, 0x30, 0x8e, 0xc0, 0x26, 0xc7, 0x06, 0x10, 0x00, 0xef, 0xbe, 0xa1, 0x10, 0x20, HLT]);
  vm.writeGuest(0x2010, new Uint8Array([0x34, 0x12]));
  const run = vcpu.run();
  assertEquals(run.exitReason, KvmExit.MMIO);
  assertEquals([run.mmio.physAddr, run.mmio.len, run.mmio.isWrite], [0x30010, 2, true]);
  assertEquals([...run.mmio.data.slice(0, 2)], [0xef, 0xbe]);
  assertEquals(vcpu.run().exitReason, KvmExit.HLT, "the read at 0x2010 is RAM");
  assertEquals(vcpu.getRegs().rax & 0xffff, 0x1234);
  assertEquals([...vm.readGuest(0x30010, 2)], [0xff, 0xff], "no memslot: reads as all ones to the VMM");
});

test("a guest read outside every memslot is KVM_EXIT_MMIO and gets what userspace fills", () => {
  // mov ax,0x3000; mov es,ax; mov ax,[0x2010]; mov bx,[es:0x20]; hlt
  const { vm, vcpu } = realModeGuest([0xb8, 0x00, 0x30, 0x8e, 0xc0, 0xa1, 0x10, 0x20, 0x26, 0x8b, 0x1e, 0x20, 0x00, HLT]);
  vm.writeGuest(0x2010, new Uint8Array([0x34, 0x12]));
  const run = vcpu.run();
  assertEquals(run.exitReason, KvmExit.MMIO);
  assertEquals([run.mmio.physAddr, run.mmio.len, run.mmio.isWrite], [0x30020, 2, false]);
  run.mmio.data.set([0x78, 0x56]);
  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  const r = vcpu.getRegs();
  assertEquals([r.rax & 0xffff, r.rbx & 0xffff], [0x1234, 0x5678]);
  assertEquals(vcpu.instructions, 5);
});

test("a deleted memslot's range becomes MMIO for a guest already running", () => {
  // mov al,[0x2000]; out 0x80,al; mov al,[0x2000]; hlt
  const { vm, vcpu } = realModeGuest([0xa0, 0x00, 0x20, 0xe6, 0x80, 0xa0, 0x00, 0x20, HLT], { memSize: 0x2000 });
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x2000, memorySize: 0x1000 });
  vm.writeGuest(0x2000, new Uint8Array([0x42]));
  let run = vcpu.run();
  assertEquals([run.exitReason, run.data[0]], [KvmExit.IO, 0x42]);
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x2000, memorySize: 0 });
  run = vcpu.run();
  assertEquals([run.exitReason, run.mmio.physAddr, run.mmio.isWrite], [KvmExit.MMIO, 0x2000, false]);
  run.mmio.data[0] = 0x99;
  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax & 0xff, 0x99);
});

test("an access straddling two memslots reads both", () => {
  // mov ax,[0x1fff]; hlt   (0x1fff in slot 0, 0x2000 in slot 1, different host pages)
  const { vm, vcpu } = realModeGuest([0xa1, 0xff, 0x1f, HLT], { memSize: 0x2000 });
  vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: 0x2000, memorySize: 0x1000 });
  vm.writeGuest(0x1fff, new Uint8Array([0xcd, 0xab]));
  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  assertEquals(vcpu.getRegs().rax & 0xffff, 0xabcd);
  assertThrows(() => vm.memoryView(0x1fff, 2), KvmError, "not covered by one memslot");
});

test("KVM_GET_DIRTY_LOG reports the pages the guest and userspace wrote, and clears", () => {
  const kvm = Kvm.openSync();
  const vm = kvm.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x10000, flags: KVM_MEM_LOG_DIRTY_PAGES });
  // mov byte [0x5000],1 ; mov al,[0x6000] ; hlt   (real mode: page 5 written, page 6 only read)
  vm.writeGuest(0x1000, new Uint8Array([0xc6, 0x06, 0x00, 0x50, 0x01, 0xa0, 0x00, 0x60, 0xf4]));
  const vcpu = vm.createVcpu(0);
  const s = vcpu.getSregs();
  s.cs.base = 0;
  s.cs.selector = 0;
  vcpu.setSregs(s);
  vcpu.setRegs({ rip: 0x1000 });
  assertEquals(vm.getDirtyLog(0)[0], 1 << 1); // writeGuest of the code at page 1
  assertEquals(vcpu.run().exitReason, KvmExit.HLT);
  const log = vm.getDirtyLog(0);
  assertEquals((log[0] >> 5) & 1, 1);
  assertEquals(vm.getDirtyLog(0).every((b) => b === 0), true);
  vm.writeGuest(0xf000, new Uint8Array([1]));
  assertEquals(vm.getDirtyLog(0)[1], 0x80);
  assertThrows(() => vm.getDirtyLog(7), KvmError, "No memslot 7");
});

test("KVM_GET_DIRTY_LOG is refused on a slot without KVM_MEM_LOG_DIRTY_PAGES", () => {
  const vm = Kvm.openSync().createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0x1000 });
  assertThrows(() => vm.getDirtyLog(0), KvmError, "does not log dirty pages");
});
