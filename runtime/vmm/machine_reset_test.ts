import { test } from "node:test";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { Machine, MachineError, type RunResult } from "./machine.ts";
import { ExitReason } from "../cpu/vmcs.ts";

/**
 * A real-mode guest at 0x1000 that leaves state everywhere: RAM written by REP STOS over eight
 * pages, a plain store, a push, REP INSB from a hooked port, registers and segment registers, the
 * UART's scratch register, the PIC's mask, a PIT channel, the POST code, a debug-console byte, a
 * hypercall (whose hook writes guest memory), then HLT.
 */
const DIRTY_REAL = [
  0xb8, 0x00, 0x20, // mov ax,0x2000
  0x8e, 0xc0, // mov es,ax
  0x31, 0xff, // xor di,di
  0xb9, 0x00, 0x80, // mov cx,0x8000
  0xb0, 0xab, // mov al,0xab
  0xf3, 0xaa, // rep stosb            (32 KiB at 0x20000)
  0xc7, 0x06, 0x00, 0x50, 0x34, 0x12, // mov word [0x5000],0x1234
  0xbc, 0x00, 0x90, // mov sp,0x9000
  0x50, // push ax
  0xba, 0x60, 0x00, // mov dx,0x60
  0xbf, 0x00, 0x80, // mov di,0x8000
  0xb9, 0x10, 0x00, // mov cx,16
  0xf3, 0x6c, // rep insb             (16 bytes at 0x28000 from the hook)
  0xba, 0xff, 0x03, // mov dx,0x3ff
  0xb0, 0x5a, // mov al,0x5a
  0xee, // out dx,al            (UART scratch register)
  0xb0, 0xfe, 0xe6, 0x21, // mov al,0xfe; out 0x21,al   (PIC mask)
  0xb0, 0x34, 0xe6, 0x43, 0xb0, 0x10, 0xe6, 0x40, 0xe6, 0x40, // PIT channel 0, mode 2, count 0x1010
  0xb0, 0x42, 0xe6, 0x80, // POST code 0x42
  0xb0, 0x78, 0xe6, 0xe9, // 'x' on the debug console
  0xb8, 0x07, 0x00, // mov ax,7
  0x0f, 0x01, 0xc1, // vmcall (hypercall 7)
  0xf4, // hlt
];

/** Reads what DIRTY_REAL leaves behind: the UART scratch register, the PIC mask, the words it wrote; prints them on 0xE9. */
const PROBE_REAL = [
  0xba, 0xff, 0x03, 0xec, 0xe6, 0xe9, // mov dx,0x3ff; in al,dx; out 0xe9,al
  0xe4, 0x21, 0xe6, 0xe9, // in al,0x21; out 0xe9,al
  0xa1, 0x00, 0x50, 0xe6, 0xe9, // mov ax,[0x5000]; out 0xe9,al
  0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xa0, 0x00, 0x00, 0xe6, 0xe9, // mov ax,0x2000; mov ds,ax; mov al,[0]; out 0xe9,al
  0xf4,
];

function ram(m: Machine): Uint8Array {
  const slot = m.vm.memslots()[0];
  return new Uint8Array(m.vm.memory.buffer, slot.userspaceAddr, m.memSize);
}
function areaBytes(m: Machine): Uint8Array {
  const slot = m.vm.memslots()[0];
  return new Uint8Array(m.vm.memory.buffer, slot.userspaceAddr + m.memSize);
}
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}
function comparable(r: RunResult): Omit<RunResult, "wallMs"> {
  const { wallMs: _, ...rest } = r;
  return rest;
}

/** Dirty a machine every way a run and a script can. */
function dirty(m: Machine): void {
  m.load(new Uint8Array(DIRTY_REAL), { format: "raw" });
  m.vcpu.setRegs({ rbx: 0x1111, rsi: 0x2222, rbp: 0x3333 });
  m.onIo({ port: 0x60, name: "kbd", handler: () => 0x11 });
  m.onHypercall(7, (_a, ctx) => {
    ctx.write(0x7000, new Uint8Array([1, 2, 3]));
    return 99;
  }, "hc7");
  const exits: string[] = [];
  m.onExit("hlt", (e) => void exits.push(e.reason), "hlt-log");
  m.onMmio({ base: 0xf0000000, size: 4096, name: "mmio", read: () => 5 });
  m.onVmxExit(ExitReason.CPUID, () => "default");
  m.vm.setTrace(true);
  m.vm.memoryView(0x7800, 4).fill(9);
  m.feedSerial("queued input");
  const r = m.run({ budget: 100_000 });
  assertEquals(r.exit.reason, "hlt");
  assertEquals(exits, ["hlt"]);
  assertEquals(m.console, "x");
  assert(m.portCounts()["0x60"]?.in === 16, "INSB counted");
  assertEquals(ram(m)[0x20000], 0xab);
  assertEquals(ram(m)[0x28000], 0x11);
  assertEquals(ram(m)[0x7000], 1);
}

test("Machine.reset() needs a machine created with reusable: true", () => {
  const m = new Machine({ mode: "real" });
  assertEquals(m.resettable, false);
  assertThrows(() => m.reset(), MachineError, "reusable");
});

test("Machine.reset() after a run that touched everything: RAM, vCPU state and every count are as on a new machine", () => {
  const fresh = new Machine({ mode: "real", reusable: true });
  const m = new Machine({ mode: "real", reusable: true });
  dirty(m);
  m.reset();
  const d = firstDiff(ram(m), ram(fresh));
  assertEquals(d, -1, `guest RAM differs from a new machine's at 0x${d.toString(16)}`);
  assert(sameBytes(areaBytes(m), areaBytes(fresh)), "the vCPU's state area is as on a new machine");
  assertEquals(m.vcpu.getRegs(), fresh.vcpu.getRegs());
  assertEquals(m.vcpu.getSregs(), fresh.vcpu.getSregs());
  assertEquals(m.vcpu.instructions, 0);
  assertEquals(m.portCounts(), {});
  assertEquals(m.console, "");
  assertEquals(m.image, null);
  assertEquals(m.vm.tracer, null);
  assertEquals([...m.vcpu.vmxExitCounts], [...fresh.vcpu.vmxExitCounts]);
  assertEquals([...m.vcpu.userExitCounts], [...fresh.vcpu.userExitCounts]);
  assertEquals([...m.vcpu.msrs], [...fresh.vcpu.msrs]);
  assertEquals(m.vcpu.vmxExitHooks.filter(Boolean).length, 0, "VMX exit hooks are gone");
  assertEquals(m.vm.pioBus.devices().map((d) => d.name), fresh.vm.pioBus.devices().map((d) => d.name));
  assertEquals(m.userBus.devices().map((d) => d.name), fresh.userBus.devices().map((d) => d.name));
});

test("Machine.reset(): the devices and hooks of the last run are gone (a probe guest reads what a new machine reads)", () => {
  const probe = (m: Machine) => {
    m.load(new Uint8Array(PROBE_REAL), { format: "raw", loadAddr: 0x1000 });
    const r = m.run({ budget: 1000 });
    return { r: comparable(r), console: [...m.takeConsole()], regs: m.vcpu.getRegs(), counts: m.portCounts() };
  };
  const m = new Machine({ mode: "real", reusable: true });
  dirty(m);
  m.reset();
  const expected = probe(new Machine({ mode: "real", reusable: true }));
  assertEquals(expected.console, [0, 0, 0, 0], "a new machine: UART scratch 0, PIC mask 0, RAM zero (the dirty run left 0x5a, 0xfe, 0x34, 0xab)");
  assertEquals(probe(m), expected);
  // Hooks of the last run: port 0x60 is unclaimed again, hypercall 7 unknown.
  const hooksGone = (x: Machine) => {
    x.load(new Uint8Array([0xe4, 0x60, 0xb8, 0x07, 0x00, 0x0f, 0x01, 0xc1, 0xf4]), { format: "raw" }); // in al,0x60; mov ax,7; vmcall; hlt
    const r = x.run({ budget: 100 });
    return { r: comparable(r), rax: x.vcpu.getRegs().rax };
  };
  m.reset();
  dirty(m);
  m.reset();
  const got = hooksGone(m);
  assertEquals(got.r.userspaceExits, { io: 1, hypercall: 1, hlt: 1 });
  assert(got.rax !== 99, "the old hypercall hook did not run");
  assertEquals(got, hooksGone(new Machine({ mode: "real", reusable: true })));
});

test("Machine.reset(): the same guest gives the same result on a reused machine as on a new one, run after run", () => {
  const fresh = new Machine({ mode: "real", reusable: true });
  const guest = () => {
    return (m: Machine) => {
      m.load(new Uint8Array(DIRTY_REAL), { format: "raw" });
      m.onIo({ port: 0x60, handler: () => 0x11 });
      m.onHypercall(7, () => 1);
      const r = m.run({ budget: 100_000 });
      return { r: comparable(r), console: m.console, regs: m.vcpu.getRegs(), sregs: m.vcpu.getSregs(), counts: m.portCounts() };
    };
  };
  const expected = guest()(fresh);
  const m = new Machine({ mode: "real", reusable: true });
  for (let i = 0; i < 3; i++) {
    assertEquals(guest()(m), expected, `run ${i + 1}`);
    m.reset();
  }
});

test("Machine.reset() in paged mode: page-table accessed and dirty bits, REP STOS through paging and the page directory are as new", () => {
  // mov edi,0x500000; mov ecx,0x1000; mov eax,0xdeadbeef; rep stosd; mov dword [0xe00000],0x11223344; hlt
  const code = [0xbf, 0x00, 0x00, 0x50, 0x00, 0xb9, 0x00, 0x10, 0x00, 0x00, 0xb8, 0xef, 0xbe, 0xad, 0xde, 0xf3, 0xab,
    0xc7, 0x05, 0x00, 0x00, 0xe0, 0x00, 0x44, 0x33, 0x22, 0x11, 0xf4];
  const fresh = new Machine({ mode: "paged", reusable: true });
  const m = new Machine({ mode: "paged", reusable: true });
  const run = (x: Machine) => {
    x.load(new Uint8Array(code), { format: "raw" });
    return comparable(x.run({ budget: 100_000 }));
  };
  const expected = run(new Machine({ mode: "paged", reusable: true }));
  assertEquals(expected.exit.reason, "hlt");
  assertEquals(run(m), expected);
  assertEquals(ram(m)[0x500000], 0xef);
  m.reset();
  const d = firstDiff(ram(m), ram(fresh));
  assertEquals(d, -1, `guest RAM differs from a new machine's at 0x${d.toString(16)}`);
  assertEquals(m.vcpu.getSregs(), fresh.vcpu.getSregs());
  assertEquals(run(m), expected);
});

test("Machine.reset() zeroes RAM written through writeGuest and memory views, and big writes (whole-RAM path)", () => {
  const m = new Machine({ mode: "protected", memSize: 1 << 20, reusable: true });
  m.vm.writeGuest(0x3000, new Uint8Array(10).fill(7));
  m.vm.memoryView(0x9000, 8192).fill(3);
  m.reset();
  assert(ram(m).every((b) => b === 0), "RAM is zero");
  // More than an eighth of RAM written: reset clears all of it at once.
  m.vm.memoryView(0, 1 << 19).fill(1);
  m.reset();
  assert(ram(m).every((b) => b === 0), "RAM is zero after a big write");
});

test("Machine.reset() refuses a machine whose memory layout changed (a ROM was mapped)", () => {
  const m = new Machine({ mode: "real", reusable: true });
  const rom = new Uint8Array(65536);
  rom.set([0xf4], 0xfff0); // hlt at the reset vector
  m.load(rom, { format: "rom" });
  assertEquals(m.resettable, false);
  assertThrows(() => m.reset(), MachineError, "memory layout");
});
