/**
 * A fault while starting INT n (found by the QEMU oracle, tests/oracle/qemu.ts): it is delivered
 * as itself, not as a double fault (only a hardware exception can be the first event of a #DF,
 * SDM 6.15 table 6-5), and it reports the EIP of the INT instruction (SDM 6.12.1.1), under every
 * engine. The IDT is empty, so INT n raises #GP(n*8+2); the #GP exits through the exception bitmap.
 */
import { test } from "node:test";
import { assertEquals } from "./assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";
import { VmcsField } from "../runtime/cpu/vmcs.ts";

for (const engine of ["interp", "jit", "auto"] as const) {
  for (const n of [0x0d, 0x20, 0x08]) {
    test(`INT 0x${n.toString(16)} (${engine}) through an empty IDT raises #GP(0x${(n * 8 + 2).toString(16)}) at the INT`, async () => {
      if (engine !== "interp") await loadJit();
      const m = new Machine({ mode: "protected", engine, jit: { threshold: 1 } });
      m.load(new Uint8Array([0x90, 0xcd, n, 0xf4]), { format: "raw", loadAddr: 0x100000 }); // nop; int n; hlt
      const s = m.vcpu.getSregs();
      s.idt = { base: 0x1000, limit: 0 };
      m.vcpu.setSregs(s);
      m.vcpu.vmcsWrite(VmcsField.EXCEPTION_BITMAP, 1 << 13);
      const r = m.run({ budget: 100 });
      assertEquals(r.exit, { reason: "exception", exception: 13, errorCode: n * 8 + 2 });
      assertEquals(m.vcpu.getRegs().rip, 0x100001);
    });
  }
}
