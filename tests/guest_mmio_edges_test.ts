/**
 * What a guest does with memory that has no memslot, on paths outside ordinary loads and stores,
 * ends as an architectural event or an exit, never as a host exception: string IO whose memory
 * operand is MMIO (KVM's emulator does the MMIO access as an exit of its own), and an event
 * delivered through tables outside RAM (KVM's internal error DELIVERY_EV). Every engine.
 */
import { test } from "node:test";
import { assertEquals } from "./assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";

const ENGINES = ["interp", "jit", "auto"] as const;
const MMIO = 0x1000000; // the first byte past 16 MiB of RAM

async function machine(engine: (typeof ENGINES)[number], code: number[]) {
  if (engine !== "interp") await loadJit();
  const m = new Machine({ mode: "protected", engine, jit: { threshold: 1 } });
  m.load(new Uint8Array(code), { format: "raw" });
  return m;
}

for (const engine of ENGINES) {
  test(`rep insb from RAM into MMIO (${engine}): two elements stored, two written to the device, the port read four times`, async () => {
    // mov edi,0xfffffe; mov ecx,4; mov dx,0x300; rep insb; hlt
    const m = await machine(engine, [0xbf, 0xfe, 0xff, 0xff, 0x00, 0xb9, 4, 0, 0, 0, 0x66, 0xba, 0x00, 0x03, 0xf3, 0x6c, 0xf4]);
    let next = 0x41;
    m.onIo({ port: 0x300, direction: "in", handler: () => next++ });
    const writes: [number, number, number][] = [];
    m.onMmio({ base: MMIO, size: 0x1000, write: (addr, size, value) => { writes.push([addr, size, value]); } });
    const r = m.run({ budget: 1000 });
    assertEquals(r.exit.reason, "hlt");
    assertEquals([...m.vm.readGuest(0xfffffe, 2)], [0x41, 0x42]);
    assertEquals(writes, [[MMIO, 1, 0x43], [MMIO + 1, 1, 0x44]]);
    assertEquals(next, 0x45, "the port was read once per element");
    const regs = m.vcpu.getRegs();
    assertEquals([regs.rdi, regs.rcx, regs.rip], [MMIO + 2, 0, 0x100011]);
    assertEquals(r.instructions, 3 + 4 + 1);
  });

  test(`rep outsb from RAM and MMIO (${engine}): the device's bytes reach the port in order`, async () => {
    // mov esi,0xfffffe; mov ecx,4; mov dx,0x300; rep outsb; hlt
    const m = await machine(engine, [0xbe, 0xfe, 0xff, 0xff, 0x00, 0xb9, 4, 0, 0, 0, 0x66, 0xba, 0x00, 0x03, 0xf3, 0x6e, 0xf4]);
    m.vm.writeGuest(0xfffffe, new Uint8Array([0x11, 0x22]));
    const out: number[] = [];
    m.onIo({ port: 0x300, direction: "out", handler: (io) => { out.push(io.value!); } });
    const reads: number[] = [];
    m.onMmio({ base: MMIO, size: 0x1000, read: (addr) => { reads.push(addr); return 0x33 + (addr - MMIO) * 0x11; } });
    const r = m.run({ budget: 1000 });
    assertEquals(r.exit.reason, "hlt");
    assertEquals(out, [0x11, 0x22, 0x33, 0x44]);
    assertEquals(reads, [MMIO, MMIO + 1]);
    const regs = m.vcpu.getRegs();
    assertEquals([regs.rsi, regs.rcx], [MMIO + 2, 0]);
    assertEquals(r.instructions, 3 + 4 + 1);
  });

  test(`insb and outsb into MMIO with no hook (${engine}): an MMIO exit, not a host exception`, async () => {
    for (const [code, isWrite] of [[[0xbf, 0, 0, 0, 2, 0x6c, 0xf4], true], [[0xbe, 0, 0, 0, 2, 0x6e, 0xf4], false]] as const) {
      const m = await machine(engine, [...code]);
      const r = m.run({ budget: 1000 });
      assertEquals(r.exit.reason, "mmio");
      if (r.exit.reason === "mmio") {
        assertEquals(r.exit.physAddr, 0x2000000);
        assertEquals(r.exit.isWrite, isWrite);
      }
    }
  });

  test(`paging on with CR3 outside RAM (${engine}): KVM's internal error for MMIO during event delivery`, async () => {
    // mov eax,0xfee00000; mov cr3,eax; mov eax,0x80000011; mov cr0,eax; jmp $
    const m = await machine(engine, [0xb8, 0x00, 0x00, 0xe0, 0xfe, 0x0f, 0x22, 0xd8, 0xb8, 0x11, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xeb, 0xfe]);
    const r = m.run({ budget: 1000 });
    assertEquals(r.exit.reason, "internal_error");
    if (r.exit.reason === "internal_error") assertEquals(r.exit.suberror, 3);
  });
}
