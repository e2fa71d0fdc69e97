/** Compiled memory accesses through a segment whose offsets do not start at 0 (expand-down, SDM 3.4.5.1). */
import { test } from "node:test";
import { assertEquals } from "../tests/assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { useEngine } from "../runtime/vmm/tiering.ts";

// mov eax, [ds:esi]; add eax, 1; mov [ds:esi+4], eax; dec ecx; jnz top; hlt
const code = new Uint8Array([0x8b, 0x06, 0x83, 0xc0, 0x01, 0x89, 0x46, 0x04, 0x49, 0x75, 0xf5, 0xf4]);

async function run(engine: "interp" | "jit", esi: number) {
  const m = new Machine({ mode: "protected", memSize: 4 << 20 });
  m.load(code, { format: "raw" });
  const s = m.vcpu.getSregs();
  // Expand-down, writable data (type 7): valid offsets are limit+1 .. 0xffffffff.
  m.vcpu.setSregs({ ...s, ds: { ...s.ds, type: 7, limit: 0x1fffff, g: 0 } });
  m.vcpu.setRegs({ rsi: esi, rcx: 50 });
  await useEngine(m, engine);
  const r = m.run({ budget: 10_000 });
  return { exit: r.exit.reason, instructions: r.instructions, regs: m.vcpu.getRegs(), mem: [...m.vm.readGuest(0x200000, 16)] };
}

test("an expand-down data segment gives the same results and faults under jit as interpreted", async () => {
  for (const esi of [0x200000, 0x200004, 0x1ffffe, 0x100]) {
    assertEquals(await run("jit", esi), await run("interp", esi), `esi 0x${esi.toString(16)}`);
  }
});
